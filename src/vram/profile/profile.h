#pragma once
// Where a step's memory goes, measured: per stage (parameters, gradients, optimizer state, activations kept for
// backward, the transient peak inside its forward and its backward, time), the allocator's totals, and a timeline
// of the step with its peak attributed to parts of the model. On CUDA the numbers are the caching allocator's;
// on the CPU a counting allocator measures every tensor (vram/memory/memory.h).
//
// Thread-safety: profile_step() owns the device while it runs; the results are plain values.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "vram/memory/memory.h"
#include "vram/zoo/spec.h"

namespace vram::profile {

struct StageMemory {
  std::string name;  // "layers.3.attention"
  std::string kind;  // "attention"
  int64_t parameter_bytes = 0;
  int64_t trainable_bytes = 0;      // parameters that train (gradients and optimizer state follow these)
  int64_t gradient_bytes = 0;       // after backward
  int64_t optimizer_bytes = 0;      // optimizer state of this stage's parameters
  int64_t activation_bytes = 0;     // still allocated after its forward: saved for backward (+ output - input)
  int64_t forward_peak_bytes = 0;   // transient above the allocation at its start, during its forward
  int64_t backward_peak_bytes = 0;  // the same during its backward; 0 when backward never reached it
  double forward_ms = 0.0;
  double backward_ms = 0.0;
};

// One interval of the step: a stage's forward or backward, the loss, or the optimizer.
struct TimelineInterval {
  std::string phase;  // "forward", "loss", "backward", "optimizer"
  std::string stage;  // stage name; "loss" and "optimizer" for those phases
  double begin_ms = 0.0;
  double end_ms = 0.0;
  int64_t begin_bytes = 0;  // allocated at its start
  int64_t peak_bytes = 0;   // highest allocation inside it
  int64_t end_bytes = 0;
};

// The step's peak split into what was alive at that moment.
struct PeakBreakdown {
  std::string phase;
  std::string stage;
  int64_t peak_bytes = 0;
  int64_t parameter_bytes = 0;
  int64_t optimizer_bytes = 0;
  int64_t gradient_bytes = 0;
  int64_t input_bytes = 0;       // the batch
  int64_t activation_bytes = 0;  // kept by stages whose backward had not yet finished
  int64_t transient_bytes = 0;   // above the allocation at the start of the peak interval
  int64_t unattributed_bytes = 0;
  double attributed_fraction = 0.0;                                  // 1 - |unattributed| / peak
  std::vector<std::pair<std::string, int64_t>> largest_activations;  // up to 5 stages, largest first
};

struct Profile {
  zoo::Workload workload;
  std::string device;
  std::vector<StageMemory> stages;
  std::vector<TimelineInterval> timeline;
  PeakBreakdown peak;
  memory::Snapshot allocator;  // at the end of the profiled step; its peaks are the step's
  int64_t baseline_bytes = 0;  // allocated as the step starts: parameters, optimizer state, inputs
  int64_t capacity_bytes = 0;  // the device's memory (CUDA) or 0
  double step_ms = 0.0;        // median over the timed steps (without the profiler's synchronisation)
  double items_per_s = 0.0;    // tokens per second for language models, samples per second for vision
  std::string items;           // "tokens" or "samples"
};

struct ProfileOptions {
  zoo::Workload workload;
  std::string device = "cpu";
  int warmup_steps = 1;  // before the profiled step: creates optimizer state, cuBLAS handles, cuDNN plans
  int timed_steps = 3;   // after it, unobserved, for step time
  uint64_t seed = 0;
  // Called as work advances: what is running and the fraction done (0..1).
  std::function<void(const std::string& what, double fraction)> progress;
};

// Builds the model, runs warm-up, one observed step and the timed steps. kOutOfMemory when the workload does not
// fit, with the failing phase in the message.
core::Result<Profile> profile_step(const ProfileOptions& options);

// Renderings: an aligned text table (largest stages first, totals, the peak breakdown), JSON, and one
// self-contained HTML page with an SVG timeline a person opens in a browser.
std::string to_table(const Profile& profile);
std::string to_json(const Profile& profile);
std::string to_html(const Profile& profile);

}  // namespace vram::profile
