#pragma once
// The planner: for a workload and a memory budget, the way to run it that is predicted fastest with its predicted
// peak under the budget. It chooses which transformer layers (or ResNet blocks) to checkpoint, whether their inputs
// wait in host memory, whether frozen weights stream from host memory, whether the head and loss run in pieces,
// and how many micro-batches the batch is split into. Memory comes from the estimator (vram/estimate); time from
// a cost model of the step fed with costs measured on the device at start: the rate a transformer layer's forward
// reaches at the workload's shapes, and the host-device copy bandwidths. Copies overlap compute segment by segment;
// a copy longer than the compute it hides under costs the difference.
//
// Precision is not a choice: a lower one changes the loss, and every plan here gives the unoptimized step's loss
// and gradients.
//
// choose() is pure; fit() measures the costs, applies the chosen plan on the device under the budget (the
// allocator capped there) and reports predicted against measured.
//
// Thread-safety: choose() and predict_step_seconds() are pure; fit() owns the device while it runs.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "vram/estimate/estimate.h"
#include "vram/zoo/spec.h"

namespace vram::plan {

// What the device does per second. All three must be positive.
struct Costs {
  double flops_per_second = 0.0;                 // a transformer layer's forward at the workload's shapes
  double backward_flops_per_second = 0.0;        // its backward (0: as the forward)
  double host_to_device_bytes_per_second = 0.0;  // pinned memory
  double device_to_host_bytes_per_second = 0.0;  // pinned memory
};

// Costs assumed where none can be measured: an H100/H200 running LibTorch 2 in bf16 (what our runs there
// measured), or this CPU's order of magnitude.
Costs assumed_costs(bool cuda);

// Floating-point operations of each stage's forward, in the zoo's order, for the whole batch, and the fraction
// of its weights that train (their gradients cost another forward's worth in backward).
struct StageCost {
  double flops = 0.0;
  double trainable_fraction = 0.0;
};
std::vector<StageCost> stage_costs_of(const zoo::Workload& workload);

// Predicted seconds of one step under the workload's plan: forward, backward (input gradients, and weight
// gradients for what trains), the recomputation of checkpoint segments, and copies that outlast the compute they
// overlap. Micro-batches repeat the streamed copies once each.
double predict_step_seconds(const zoo::Workload& workload, const Costs& costs);

struct Candidate {
  zoo::Plan plan;
  int64_t predicted_peak_bytes = 0;
  double predicted_step_seconds = 0.0;
  double predicted_items_per_second = 0.0;  // tokens (language models) or samples per second
  bool fits = false;                        // predicted peak within the budget less the headroom
};

struct PlannerOptions {
  int64_t budget_bytes = 0;
  // Kept free for what the estimator does not see (allocator rounding and fragmentation, a larger cuBLAS
  // workspace): a plan fits when its predicted peak is at most budget * (1 - headroom).
  double headroom = 0.05;
  estimate::Backend backend;
  Costs costs;
};

struct Choice {
  Candidate best;
  std::vector<Candidate> candidates;  // every plan considered: the choice, then those that fit, fastest first
  int64_t floor_bytes = 0;            // the least any plan needs
  std::string floor_plan;             // that plan, in words
};

// kInvalidArgument for a bad workload or options; kOutOfMemory when no plan fits, naming the floor: "llama-7b
// ... needs at least 2.1 GiB (offload + stream weights + ...); the budget is 1.0 GiB".
core::Result<Choice> choose(const zoo::Workload& workload, const PlannerOptions& options);

struct FitOptions {
  zoo::Workload workload;  // its plan is ignored: the planner chooses one
  std::string device = "cuda";
  int64_t budget_bytes = 0;
  double headroom = 0.05;
  int timed_steps = 3;   // after one warm-up step; the step time is their median
  int max_attempts = 3;  // plans tried when one runs out of memory after all, each predicted 10% smaller
  uint64_t seed = 0;
  const Costs* costs = nullptr;  // measured already (a curve over budgets measures once); null: measure now
  std::function<void(const std::string& what, double fraction)> progress;
};

struct Attempt {
  zoo::Plan plan;
  std::string outcome;  // "ok", or why it failed ("out of memory at ...")
};

struct FitResult {
  Choice choice;
  Costs costs;     // as measured (or passed in)
  zoo::Plan plan;  // the plan that ran
  int64_t predicted_peak_bytes = 0;
  double predicted_items_per_second = 0.0;
  int64_t measured_peak_bytes = 0;  // the allocator's peak over the timed steps
  double measured_step_seconds = 0.0;
  double measured_items_per_second = 0.0;
  int64_t items_per_step = 0;  // tokens or samples
  int64_t host_bytes = 0;      // pinned host memory the plan holds (offloaded inputs, streamed weights)
  std::vector<Attempt> attempts;
};

// Measures the costs (unless given), chooses, caps the device's allocator at the budget, builds the model under
// the chosen plan and runs it; a plan that runs out of memory after all gives way to the next. kOutOfMemory when
// no plan fits; kUnavailable for a missing device.
core::Result<FitResult> fit(const FitOptions& options);

// The costs of this workload on the device: one transformer layer's forward timed at the workload's shapes, and
// the copy bandwidths.
core::Result<Costs> measure_costs(const zoo::Workload& workload, const std::string& device);

}  // namespace vram::plan
