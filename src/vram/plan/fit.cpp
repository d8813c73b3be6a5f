// The planner on a device: costs measured, the chosen plan applied under the budget, predicted against measured.
#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "vram/memory/memory.h"
#include "vram/plan/plan.h"
#include "vram/profile/runner.h"
#include "vram/transfer/transfer.h"
#include "vram/zoo/zoo.h"

namespace vram::plan {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

void synchronize(const std::string& device) {
  if (device != "cpu") torch::cuda::synchronize();
}

// Seconds of `work`, median of three after one warm-up run.
template <typename Work>
double time_it(const std::string& device, Work&& work) {
  work();
  std::vector<double> seconds;
  for (int i = 0; i < 3; ++i) {
    synchronize(device);
    const auto start = Clock::now();
    work();
    synchronize(device);
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return median(seconds);
}

// Host copies on the CPU, where there is no link to measure: a memory copy's rate.
double host_copy_bytes_per_second() {
  const at::Tensor from = at::ones({int64_t{64} << 20}, at::kByte);
  at::Tensor to = at::empty_like(from);
  const double seconds = time_it("cpu", [&] { to.copy_(from); });
  return static_cast<double>(from.nbytes()) / seconds;
}

// The model's first transformer layer (attention and MLP), or the whole of a ResNet, on a model of one layer, at
// the workload's shapes capped at 4096 tokens: the rate its forward reaches, and for training the rate of its
// backward (input gradients, and weight gradients for what trains), each the median of three after a warm-up.
struct Rates {
  double forward = 0.0;
  double backward = 0.0;
};

core::Result<Rates> measure_rates(const zoo::Workload& workload, const std::string& device) {
  zoo::Workload probe = workload;
  const bool transformer = workload.model.family != zoo::Family::kResNet;
  if (transformer) probe.model.layers = 1;
  const int64_t rows_per_sample = workload.model.is_language_model() ? workload.seq : 1;
  probe.batch =
      std::clamp<int64_t>(4096 / std::max<int64_t>(rows_per_sample, 1), 1, std::max<int64_t>(workload.batch, 1));
  zoo::ModelOptions options;
  options.spec = probe.model;
  options.dtype = workload.dtype;
  options.lora = workload.lora;
  options.device = device;
  auto model = zoo::Model::create(options);
  if (!model) return model.error();
  const auto batch = (*model)->make_batch(probe.batch, probe.seq, 1);
  // The first stage turns ids or images into hidden states; the layer's two stages follow it.
  at::Tensor hidden;
  {
    at::NoGradGuard no_grad;
    hidden = transformer ? (*model)->stage(0).forward(batch.input) : batch.input;
  }
  std::vector<size_t> timed = {1, 2};
  if (!transformer) {
    timed.clear();
    for (size_t i = 0; i < (*model)->stage_count(); ++i) timed.push_back(i);
  }
  const auto run = [&](const at::Tensor& input) {
    at::Tensor x = input;
    for (const size_t i : timed) x = (*model)->stage(i).forward(x);
    return x;
  };
  const auto costs = stage_costs_of(probe);
  double forward_work = 0.0;
  double backward_work = 0.0;
  for (const size_t i : timed) {
    forward_work += costs.at(i).flops;
    backward_work += costs.at(i).flops * (1.0 + costs.at(i).trainable_fraction);
  }
  Rates rates;
  {
    at::NoGradGuard no_grad;
    rates.forward = forward_work / time_it(device, [&] { run(hidden); });
  }
  rates.backward = rates.forward;
  if (workload.mode != zoo::Mode::kTrain) return rates;
  // Backward alone: a forward with autograd first, untimed, then its backward timed.
  const at::Tensor input = hidden.detach().requires_grad_(true);
  std::vector<double> seconds;
  for (int i = 0; i < 4; ++i) {
    const at::Tensor output = run(input);
    const at::Tensor gradient = at::ones_like(output);
    synchronize(device);
    const auto start = Clock::now();
    output.backward(gradient);
    synchronize(device);
    if (i > 0) seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  rates.backward = backward_work / median(seconds);
  return rates;
}

bool is_oom(const core::Error& error) { return error.code == core::ErrorCode::kOutOfMemory; }

}  // namespace

core::Result<Costs> measure_costs(const zoo::Workload& workload, const std::string& device) {
  Costs costs;
  try {
    auto rates = measure_rates(workload, device);
    if (!rates) return rates.error();
    costs.flops_per_second = rates->forward;
    costs.backward_flops_per_second = rates->backward;
    if (device == "cpu") {
      costs.host_to_device_bytes_per_second = host_copy_bytes_per_second();
      costs.device_to_host_bytes_per_second = costs.host_to_device_bytes_per_second;
    } else {
      auto bandwidth = transfer::measure_bandwidth({});
      if (!bandwidth) return bandwidth.error();
      costs.host_to_device_bytes_per_second = bandwidth->pinned_gb_per_s * 1e9;
      costs.device_to_host_bytes_per_second = bandwidth->device_to_host_pinned_gb_per_s * 1e9;
    }
  } catch (const c10::Error& error) {
    const std::string what = error.what_without_backtrace();
    return core::make_error(memory::is_out_of_memory(what) ? core::ErrorCode::kOutOfMemory : core::ErrorCode::kInternal,
                            "measuring the device's costs: " + what);
  }
  return costs;
}

core::Result<FitResult> fit(const FitOptions& options) {
  const auto progress = [&](const std::string& what, double fraction) {
    if (options.progress) options.progress(what, fraction);
  };
  auto meter = memory::Meter::create(options.device);
  if (!meter) return meter.error();
  const int64_t capacity = (*meter)->capacity_bytes();
  if (options.budget_bytes <= 0) return core::make_error(core::ErrorCode::kInvalidArgument, "give a budget");
  if (capacity > 0 && options.budget_bytes > capacity) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "the budget exceeds the device's memory");
  }
  FitResult result;
  if (options.costs) {
    result.costs = *options.costs;
  } else {
    progress("measuring the device's costs", 0.0);
    auto costs = measure_costs(options.workload, options.device);
    if (!costs) return costs.error();
    result.costs = *costs;
  }
  const auto runtime = memory::runtime(options.device);
  PlannerOptions planner;
  planner.budget_bytes = options.budget_bytes;
  planner.headroom = options.headroom;
  planner.backend =
      estimate::backend_for(options.device != "cpu", runtime.libtorch_major, runtime.cuda_capability_major);
  planner.costs = result.costs;
  auto choice = choose(options.workload, planner);
  if (!choice) return choice.error();
  result.choice = std::move(choice.value());

  // From here on the device is as small as the budget: building the model included.
  (*meter)->release_cached();
  if (auto limited = (*meter)->limit_bytes(options.budget_bytes); !limited) return limited.error();
  const auto& candidates = result.choice.candidates;
  // After an out-of-memory the estimate was low for this device (fragmentation above all: the cap bounds the
  // allocator's reserved bytes, the estimate counts allocated ones), so the next plan must be predicted at least
  // 10% smaller than the one that failed.
  int64_t ceiling = std::numeric_limits<int64_t>::max();
  for (size_t i = 0;
       i < candidates.size() && candidates[i].fits && static_cast<int>(result.attempts.size()) < options.max_attempts;
       ++i) {
    const Candidate& candidate = candidates[i];
    if (candidate.predicted_peak_bytes > ceiling) continue;
    const std::string name = zoo::describe(candidate.plan, options.workload.model);
    progress("building " + options.workload.model.name + " for " + name, 0.1);
    profile::RunnerOptions runner_options;
    runner_options.workload = options.workload;
    runner_options.workload.plan = candidate.plan;
    runner_options.device = options.device;
    runner_options.seed = options.seed;
    const auto give_way = [&](const core::Error& error) {
      result.attempts.push_back({candidate.plan, error.message});
      ceiling = candidate.predicted_peak_bytes * 9 / 10;
      (*meter)->release_cached();
    };
    auto runner = profile::Runner::create(runner_options);
    if (!runner) {
      if (!is_oom(runner.error())) return runner.error();
      give_way(runner.error());
      continue;
    }
    const int64_t batch = options.workload.batch;
    const int64_t seq = options.workload.seq;
    progress("warm-up step", 0.3);
    if (auto warm = (*runner)->step(batch, seq); !warm) {
      if (!is_oom(warm.error())) return warm.error();
      runner->reset();
      give_way(warm.error());
      continue;
    }
    (*runner)->synchronize();
    (*meter)->reset_peak();
    std::vector<double> seconds;
    core::Status failed;
    for (int step = 0; step < options.timed_steps && failed.ok(); ++step) {
      progress("timed step " + std::to_string(step + 1), 0.4 + 0.6 * step / options.timed_steps);
      const auto start = Clock::now();
      failed = (*runner)->step(batch, seq);
      (*runner)->synchronize();
      seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    if (!failed.ok()) {
      if (!is_oom(failed.error())) return failed.error();
      runner->reset();
      give_way(failed.error());
      continue;
    }
    result.plan = candidate.plan;
    result.predicted_peak_bytes = candidate.predicted_peak_bytes;
    result.predicted_items_per_second = candidate.predicted_items_per_second;
    result.measured_peak_bytes = (*meter)->read().peak_allocated_bytes;
    result.measured_step_seconds = median(seconds);
    result.items_per_step = batch * (options.workload.model.is_language_model() ? seq : 1);
    result.measured_items_per_second = static_cast<double>(result.items_per_step) / result.measured_step_seconds;
    result.host_bytes = (*runner)->planned().host_bytes();
    result.attempts.push_back({candidate.plan, "ok"});
    runner->reset();
    (*meter)->release_cached();
    progress("done", 1.0);
    return result;
  }
  std::string tried;
  for (const auto& attempt : result.attempts) {
    tried += "\n  " + zoo::describe(attempt.plan, options.workload.model) + ": " + attempt.outcome;
  }
  return core::make_error(core::ErrorCode::kOutOfMemory,
                          "no plan ran within the budget; tried:" + (tried.empty() ? std::string(" none") : tried));
}

}  // namespace vram::plan
