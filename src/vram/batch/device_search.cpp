// The batch search wired to real steps on a device: the estimator predicts, the Runner measures.
#include <algorithm>
#include <cmath>
#include <limits>

#include "vram/batch/batch.h"
#include "vram/estimate/estimate.h"
#include "vram/memory/memory.h"
#include "vram/profile/runner.h"

namespace vram::batch {

core::Result<DeviceSearchResult> find_max_batch_on_device(const DeviceSearchOptions& options) {
  const auto progress = [&](const std::string& what, double fraction) {
    if (options.progress) options.progress(what, fraction);
  };
  auto meter = memory::Meter::create(options.device);
  if (!meter) return meter.error();
  DeviceSearchResult result;
  result.device = options.device;
  result.capacity_bytes = (*meter)->capacity_bytes();
  result.budget_bytes = options.budget_bytes > 0 ? options.budget_bytes : result.capacity_bytes;
  if (result.budget_bytes <= 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "give a budget in bytes: " + options.device + " has no fixed capacity");
  }
  if (result.capacity_bytes > 0 && result.budget_bytes > result.capacity_bytes) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "the budget exceeds the device's memory");
  }
  if (auto limited = (*meter)->limit_bytes(result.budget_bytes); !limited) return limited.error();

  const auto runtime = memory::runtime(options.device);
  const estimate::Backend backend =
      estimate::backend_for(options.device != "cpu", runtime.libtorch_major, runtime.cuda_capability_major);
  zoo::Workload workload = options.workload;
  const auto predict = [&](int64_t batch) {
    zoo::Workload sized = workload;
    sized.batch = batch;
    auto predicted = estimate::estimate(sized, backend);
    return predicted ? predicted->peak_bytes : std::numeric_limits<int64_t>::max();
  };
  if (predict(0) > result.budget_bytes) {
    return core::make_error(core::ErrorCode::kOutOfMemory,
                            "parameters and optimizer state alone need " + std::to_string(predict(0) >> 20) +
                                " MiB, over the budget of " + std::to_string(result.budget_bytes >> 20) + " MiB");
  }

  progress("building " + workload.model.name, 0.0);
  profile::RunnerOptions runner_options;
  runner_options.workload = workload;
  runner_options.device = options.device;
  runner_options.seed = options.seed;
  auto runner = profile::Runner::create(runner_options);
  if (!runner) return runner.error();
  progress("warm-up step at batch 1", 0.1);
  if (auto warm = (*runner)->step(1, workload.seq); !warm) {
    if (warm.error().code == core::ErrorCode::kOutOfMemory) {
      result.tokens_per_step = 0;
      (*meter)->release_cached();
      return result;  // batch 0: not even one sample fits
    }
    return warm.error();
  }

  const auto trial = [&](int64_t batch) -> core::Result<int64_t> {
    progress("trial step at batch " + std::to_string(batch), 0.2);
    (*runner)->synchronize();
    (*meter)->reset_peak();
    auto status = (*runner)->step(batch, workload.seq);
    (*runner)->synchronize();
    const int64_t peak = (*meter)->read().peak_allocated_bytes;
    // Cached blocks of a failed or finished trial would fragment the next one's view of the budget.
    (*meter)->release_cached();
    if (!status) return status.error();
    return peak;
  };
  SearchOptions search_options;
  search_options.budget_bytes = result.budget_bytes;
  search_options.max_trials = options.max_trials;
  search_options.confirm = options.confirm;
  auto search = find_max_batch(predict, trial, search_options);
  if (!search) return search.error();
  result.search = std::move(search.value());
  result.tokens_per_step = result.search.batch * (workload.model.is_language_model() ? workload.seq : 1);
  progress("done", 1.0);
  return result;
}

}  // namespace vram::batch
