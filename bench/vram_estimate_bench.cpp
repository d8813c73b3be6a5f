// The estimator against measured peaks: for each configuration, the predicted peak (vram::estimate) beside the
// peak of a real step (vram::profile on the device), their error, and where each puts the peak. The GPU table in
// docs/benchmarks.md comes from `vram_estimate_bench --device cuda` (scripts/gpu-vram runs it).
//
//   vram_estimate_bench [--device cuda|cpu] [--set gpu|cpu] [--only 1,4,7] [--list]
// Prints one JSON object per configuration, then a summary object.
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "vram/estimate/estimate.h"
#include "vram/memory/memory.h"
#include "vram/profile/profile.h"

namespace {

using vram::zoo::DType;
using vram::zoo::Mode;
using vram::zoo::Optimizer;

struct Config {
  std::string model;
  Mode mode;
  DType dtype;
  Optimizer optimizer;
  std::string lora;  // parse_lora syntax; "" for none
  int64_t batch;
  int64_t seq;
  std::string plan = "keep";
  int64_t loss_chunk = 0;
};

constexpr auto kTrain = Mode::kTrain;
constexpr auto kInfer = Mode::kInference;
constexpr auto kBf16 = DType::kBFloat16;
constexpr auto kFp16 = DType::kFloat16;
constexpr auto kFp32 = DType::kFloat32;
constexpr auto kAdamW = Optimizer::kAdamW;
constexpr auto kSgd = Optimizer::kSgd;
constexpr auto kMomentum = Optimizer::kSgdMomentum;

// The acceptance set: every family, precision, optimizer, LoRA and full fine-tuning, inference, and llama-7b LoRA
// from sequence 512 to 4096. Sized for an 80 GB card.
std::vector<Config> gpu_configs() {
  return {
      {"llama-7b", kInfer, kBf16, kAdamW, "", 1, 512},
      {"llama-7b", kInfer, kBf16, kAdamW, "", 1, 2048},
      {"llama-7b", kInfer, kBf16, kAdamW, "", 4, 2048},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 1, 512},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 1, 1024},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 1, 2048},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 1, 4096},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 2, 2048},
      {"llama-7b", kTrain, kBf16, kAdamW, "r64:q,k,v,o,gate,up,down", 1, 1024},
      {"llama-13b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 1, 1024},
      {"llama-1b", kTrain, kBf16, kAdamW, "", 1, 2048},
      {"llama-1b", kTrain, kFp32, kAdamW, "", 1, 1024},
      {"llama-1b", kTrain, kBf16, kSgd, "", 4, 1024},
      {"llama-1b", kTrain, kFp16, kAdamW, "r8:q,v", 8, 512},
      {"gpt2", kTrain, kFp32, kAdamW, "", 8, 1024},
      {"gpt2", kTrain, kBf16, kAdamW, "", 16, 1024},
      {"gpt2-medium", kTrain, kBf16, kAdamW, "", 8, 1024},
      {"gpt2", kInfer, kFp16, kAdamW, "", 32, 1024},
      {"gpt2", kTrain, kFp32, kMomentum, "r8:q,k,v,o,fc1,fc2", 8, 512},
      {"vit-b16", kTrain, kFp32, kAdamW, "", 64, 0},
      {"vit-b16", kTrain, kBf16, kAdamW, "", 128, 0},
      {"vit-b16", kInfer, kFp16, kAdamW, "", 256, 0},
      {"resnet50", kTrain, kFp32, kMomentum, "", 64, 0},
      {"resnet50", kTrain, kBf16, kAdamW, "", 128, 0},
      {"resnet50", kInfer, kFp16, kAdamW, "", 256, 0},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 1, 2048, "checkpoint"},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 8, 2048, "checkpoint"},
      {"gpt2", kTrain, kBf16, kAdamW, "", 16, 1024, "checkpoint"},
      {"resnet50", kTrain, kFp32, kMomentum, "", 64, 0, "checkpoint"},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 8, 2048, "offload"},
      {"llama-7b", kTrain, kBf16, kAdamW, "r16:q,k,v,o", 8, 2048, "offload", 2048},
  };
}

// The same shapes of test at CPU scale, for a look without a GPU.
std::vector<Config> cpu_configs() {
  return {
      {"llama-tiny", kTrain, kFp32, kAdamW, "", 2, 64},
      {"llama-tiny", kTrain, kFp32, kAdamW, "r4:q,k,v,o", 2, 64},
      {"llama-tiny", kInfer, kFp32, kAdamW, "", 2, 64},
      {"gpt2-tiny", kTrain, kFp32, kAdamW, "", 2, 64},
      {"gpt2-tiny", kTrain, kBf16, kSgd, "r4:q,v", 2, 64},
      {"vit-tiny", kTrain, kFp32, kAdamW, "", 4, 0},
      {"resnet-tiny", kTrain, kFp32, kMomentum, "", 4, 0},
      {"resnet-tiny", kInfer, kFp32, kAdamW, "", 4, 0},
      {"llama-tiny", kTrain, kFp32, kAdamW, "r4:q,k,v,o", 2, 64, "checkpoint"},
  };
}

std::string value_after(const std::vector<std::string>& args, const std::string& flag, const std::string& fallback) {
  const auto it = std::find(args.begin(), args.end(), flag);
  return it != args.end() && it + 1 != args.end() ? *(it + 1) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::string device = value_after(args, "--device", "cpu");
  const std::string set = value_after(args, "--set", device == "cpu" ? "cpu" : "gpu");
  const auto configs = set == "gpu" ? gpu_configs() : cpu_configs();
  std::vector<size_t> selected;
  for (const auto& item : bench::split_list(value_after(args, "--only", ""))) selected.push_back(std::stoul(item));
  if (selected.empty()) {
    for (size_t i = 1; i <= configs.size(); ++i) selected.push_back(i);
  }
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const auto runtime = vram::memory::runtime(device);
  const auto backend = vram::estimate::backend_for(device != "cpu", runtime.libtorch_major,
                                                   device == "cpu" ? 0 : runtime.cuda_capability_major);
  const bool list_only = std::find(args.begin(), args.end(), "--list") != args.end();

  std::vector<double> errors;
  int failures = 0;
  for (const size_t number : selected) {
    if (number < 1 || number > configs.size()) {
      std::cerr << "vram_estimate_bench: no configuration " << number << "\n";
      return 2;
    }
    const Config& config = configs[number - 1];
    vram::zoo::Workload workload;
    auto model = vram::zoo::find_model(config.model);
    auto lora = vram::zoo::parse_lora(config.lora);
    auto plan = model ? vram::zoo::parse_plan(config.plan, *model) : core::Result<vram::zoo::Plan>(model.error());
    if (!model || !lora || !plan) {
      std::cerr << "vram_estimate_bench: bad configuration " << number << "\n";
      return 2;
    }
    workload.model = *model;
    workload.mode = config.mode;
    workload.dtype = config.dtype;
    workload.optimizer = config.optimizer;
    workload.lora = *lora;
    workload.batch = config.batch;
    workload.seq = config.seq;
    workload.plan = *plan;
    workload.plan.loss_chunk_tokens = config.loss_chunk;
    nlohmann::json row = {{"config", number},
                          {"model", config.model},
                          {"mode", vram::zoo::to_string(config.mode)},
                          {"dtype", vram::zoo::to_string(config.dtype)},
                          {"optimizer", vram::zoo::to_string(config.optimizer)},
                          {"lora", config.lora},
                          {"batch", config.batch},
                          {"seq", config.seq},
                          {"plan", config.plan},
                          {"loss_chunk", config.loss_chunk},
                          {"device", device}};
    auto predicted = vram::estimate::estimate(workload, backend);
    if (!predicted) {
      row["error"] = predicted.error().message;
      std::cout << row.dump() << std::endl;
      ++failures;
      continue;
    }
    row["predicted_peak_bytes"] = predicted->peak_bytes;
    row["predicted_peak_at"] = predicted->peak_phase + " " + predicted->peak_stage;
    if (!list_only) {
      vram::profile::ProfileOptions options;
      options.workload = workload;
      options.device = device;
      options.timed_steps = 2;
      auto measured = vram::profile::profile_step(options);
      if (!measured) {
        row["error"] = measured.error().message;
        ++failures;
      } else {
        const double error_pct = 100.0 * static_cast<double>(predicted->peak_bytes - measured->peak.peak_bytes) /
                                 static_cast<double>(measured->peak.peak_bytes);
        errors.push_back(error_pct);
        row["measured_peak_bytes"] = measured->peak.peak_bytes;
        row["measured_peak_at"] = measured->peak.phase + " " + measured->peak.stage;
        row["error_pct"] = std::round(error_pct * 100.0) / 100.0;
        row["attributed_fraction"] = measured->peak.attributed_fraction;
        row["step_ms"] = measured->step_ms;
        row["items_per_s"] = measured->items_per_s;
        // Where the two disagree, stage by stage: activation bytes kept, predicted minus measured.
        nlohmann::json stages = nlohmann::json::array();
        for (size_t i = 0; i < measured->stages.size() && i < predicted->stages.size(); ++i) {
          const auto& m = measured->stages[i];
          const auto& p = predicted->stages[i];
          stages.push_back({m.name, p.activation_bytes - m.activation_bytes,
                            p.forward_transient_bytes - m.forward_peak_bytes,
                            p.backward_transient_bytes - m.backward_peak_bytes});
        }
        row["stage_diffs_act_fwd_bwd"] = stages;
      }
    }
    std::cout << row.dump() << std::endl;
  }
  if (!list_only) {
    double worst = 0.0;
    int within5 = 0;
    for (const double e : errors) {
      worst = std::max(worst, std::fabs(e));
      within5 += std::fabs(e) <= 5.0 ? 1 : 0;
    }
    std::cout << nlohmann::json{{"summary", true},
                                {"configs", errors.size()},
                                {"within_5pct", within5},
                                {"worst_abs_error_pct", worst},
                                {"failures", failures}}
                     .dump()
              << std::endl;
  }
  return failures == 0 ? 0 : 1;
}
