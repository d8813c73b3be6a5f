#pragma once
// The largest batch that fits a memory budget. The estimator proposes, real steps decide: the first trial runs
// at the estimator's answer, its measured peak corrects the estimator's per-sample slope, and at most a short
// bisection follows. Typically one to three trial steps instead of the blind doubling-and-halving of other finders.
//
// The search (find_max_batch) is pure: it sees the estimator and the trial step as functions, so tests replay it
// with recorded peaks. find_max_batch_on_device wires it to real steps on a device.
//
// Thread-safety: the search holds no state; find_max_batch_on_device owns the device while it runs.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "vram/zoo/spec.h"

namespace vram::batch {

struct Trial {
  int64_t batch = 0;
  bool fits = false;
  int64_t predicted_bytes = 0;
  int64_t measured_bytes = 0;  // the step's peak allocation; 0 when it ran out of memory
};

struct SearchOptions {
  int64_t budget_bytes = 0;  // the step's peak allocation must stay at or under this
  int64_t max_batch = 1 << 16;
  int max_trials = 8;    // gives up with the best batch confirmed so far
  bool confirm = false;  // run batch + 1 too when the measured slope already says it cannot fit
};

struct SearchResult {
  int64_t batch = 0;            // largest batch confirmed to fit (0: not even batch 1)
  int64_t measured_bytes = 0;   // its peak
  int64_t predicted_bytes = 0;  // the estimator's peak for it
  int64_t fixed_bytes = 0;      // what does not grow with the batch (parameters, optimizer state)
  std::vector<Trial> trials;    // in the order they ran
  bool exact = false;           // batch + 1 was seen not to fit, or was predicted not to with a measured slope
};

// Predicted peak bytes at a batch size (the estimator), and one real step: its peak bytes, or kOutOfMemory.
using PredictFn = std::function<int64_t(int64_t batch)>;
using TrialFn = std::function<core::Result<int64_t>(int64_t batch)>;

core::Result<SearchResult> find_max_batch(const PredictFn& predict, const TrialFn& trial, const SearchOptions& options);

struct DeviceSearchOptions {
  zoo::Workload workload;  // its batch is ignored; seq stays fixed
  std::string device = "cuda";
  int64_t budget_bytes = 0;  // 0: the whole device
  int max_trials = 8;
  bool confirm = false;  // see SearchOptions
  uint64_t seed = 0;
  std::function<void(const std::string& what, double fraction)> progress;
};

struct DeviceSearchResult {
  SearchResult search;
  int64_t budget_bytes = 0;
  int64_t capacity_bytes = 0;
  int64_t tokens_per_step = 0;  // batch x seq for language models, batch for vision
  std::string device;
};

// Caps the process's allocator at the budget (so an 80 GB card stands in for a 16 GB one), runs a warm-up
// step at batch 1 (creates the optimizer state, which does not grow with the batch), then searches. Out of
// memory inside a trial is recovered from: the trial's tensors and cached blocks are released before the next.
core::Result<DeviceSearchResult> find_max_batch_on_device(const DeviceSearchOptions& options);

}  // namespace vram::batch
