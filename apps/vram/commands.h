#pragma once
// `vram profile | estimate | batch`: the workload options they share, the commands, and the same work as JSON
// request -> JSON result for `vram serve`'s API. One workload description serves both the flags and the JSON:
//   {"model": "llama-7b", "mode": "train", "dtype": "bf16", "optimizer": "adamw", "lora": "r16:q,k,v,o",
//    "batch": 1, "seq": 2048, "device": "cuda", "budget": "16GB"}

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/metrics/metrics.h"
#include "core/result.h"

namespace vram_cli {

// Options of the workload commands, appended to main's table.
std::vector<core::config::Option> workload_options();

int profile_command(const core::config::Config& config);
int estimate_command(const core::config::Config& config);
int batch_command(const core::config::Config& config);
// vram fit: the planner's plan for a budget, applied and measured (--dry-run: the plan alone).
int fit_command(const core::config::Config& config);
// vram bench: fit at each of --budgets, one JSON line per budget: the memory/throughput curve.
int bench_command(const core::config::Config& config);

// The allocator statistics of jobs run in this process, as Prometheus gauges (labels device, task):
// vram_allocator_allocated_bytes, vram_allocator_reserved_bytes, vram_allocator_peak_allocated_bytes.
class AllocatorMetrics {
 public:
  static core::Result<AllocatorMetrics> create(core::metrics::Registry& registry);
  void record(const std::string& device, const std::string& task, int64_t allocated_bytes, int64_t reserved_bytes,
              int64_t peak_allocated_bytes);

 private:
  core::metrics::Family<core::metrics::Gauge>* allocated_ = nullptr;
  core::metrics::Family<core::metrics::Gauge>* reserved_ = nullptr;
  core::metrics::Family<core::metrics::Gauge>* peak_ = nullptr;
};

// For the API. Fields missing from the request take defaults (those of the option table); unknown fields and
// wrong types are refused with kInvalidArgument naming the field. Jobs record their allocator statistics.
core::Result<nlohmann::json> estimate_request(const nlohmann::json& request);
core::Result<nlohmann::json> profile_request(const nlohmann::json& request, AllocatorMetrics* metrics,
                                             const std::function<void(double)>& progress);
core::Result<nlohmann::json> batch_request(const nlohmann::json& request, AllocatorMetrics* metrics,
                                           const std::function<void(double)>& progress);
// The planner's plan for the request's budget, applied and measured: `vram fit --json`'s document.
core::Result<nlohmann::json> fit_request(const nlohmann::json& request, AllocatorMetrics* metrics,
                                         const std::function<void(double)>& progress);

}  // namespace vram_cli
