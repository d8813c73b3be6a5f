#include "core/profile/profile.h"

#include <toml++/toml.h>
#include <algorithm>
#include <cmath>
#include <sstream>

namespace core::profile {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

// Frame budget for one live stream at 30 frames per second.
constexpr double kFrameBudgetMs = 1000.0 / 30.0;
// MoveNet Thunder (256 px, wider) costs about this many Lightning frames; measured on CPU with the proxy's shapes.
constexpr double kThunderOverLightning = 3.0;

// GPU tiers by memory: (minimum GiB, class name, pose batch, streams per GPU). The pose model itself needs well
// under 1 GB; memory bounds how many streams' frames, decoded surfaces and queues one card holds at once.
struct GpuTier {
  double min_gib;
  const char* name;
  int batch;
  int streams;
};
constexpr GpuTier kGpuTiers[] = {{70, "gpu-70gb+", 64, 32}, {40, "gpu-40gb+", 64, 24}, {20, "gpu-20gb+", 32, 16},
                                 {14, "gpu-14gb+", 32, 12}, {7, "gpu-7gb+", 16, 8},    {0, "gpu-small", 8, 4}};

std::string gib(uint64_t bytes) {
  std::ostringstream out;
  out.precision(3);
  out << static_cast<double>(bytes) / static_cast<double>(kGiB) << " GiB";
  return out.str();
}

}  // namespace

MachineProfile derive_profile(const MachineFacts& facts, const Measurements& measured, std::string generated_at) {
  MachineProfile profile;
  profile.generated_at = std::move(generated_at);
  profile.facts = facts;
  profile.measured = measured;
  const int cores = std::max(1, facts.cpu.usable_cores > 0 ? facts.cpu.usable_cores : facts.cpu.logical_cores);
  profile.pose.threads = cores;

  const bool has_gpu = !facts.gpus.gpus.empty();
  if (has_gpu && facts.libtorch_cuda) {
    const sys::GpuInfo& gpu = facts.gpus.gpus.front();
    const double memory_gib = static_cast<double>(gpu.memory_total_bytes) / static_cast<double>(kGiB);
    const GpuTier* tier = &kGpuTiers[std::size(kGpuTiers) - 1];
    for (const auto& candidate : kGpuTiers) {
      if (memory_gib >= candidate.min_gib) {
        tier = &candidate;
        break;
      }
    }
    profile.hardware_class = tier->name;
    profile.pose.device = "cuda";
    profile.pose.model = "movenet-thunder";
    // Tensor cores run fp16 from compute capability 7.0 (Volta) on; older cards gain little from it.
    const bool fp16 = gpu.compute_capability_major >= 7;
    profile.pose.precision = fp16 ? "fp16" : "fp32";
    profile.pose.batch_size = tier->batch;
    profile.pose.streams_per_device = tier->streams;
    profile.reasons.push_back("pose: " + gpu.name + " (" + gib(gpu.memory_total_bytes) + ", compute " +
                              std::to_string(gpu.compute_capability_major) + "." +
                              std::to_string(gpu.compute_capability_minor) + ") -> the most accurate single-pose " +
                              "model, " + profile.pose.precision + ", batch " + std::to_string(tier->batch) + ", " +
                              std::to_string(tier->streams) + " streams (table " + tier->name + ")");

    // Keep room for the CUDA context, cuDNN/cuBLAS workspaces and the display: 5%, at least 1 GiB.
    const uint64_t reserve = std::max<uint64_t>(kGiB, gpu.memory_total_bytes / 20);
    profile.vram.device = "cuda";
    profile.vram.budget_bytes = gpu.memory_total_bytes > reserve ? gpu.memory_total_bytes - reserve : 0;
    profile.reasons.push_back("vram: budget " + gib(profile.vram.budget_bytes) + " = total " +
                              gib(gpu.memory_total_bytes) + " less a reserve of " + gib(reserve) +
                              " for the CUDA context and workspaces");
    if (measured.h2d_pinned_gb_per_s > 0) {
      std::ostringstream line;
      line.precision(3);
      line << "vram: host-to-device " << measured.h2d_pinned_gb_per_s << " GB/s pinned, "
           << measured.h2d_pageable_gb_per_s << " GB/s pageable (offload and weight streaming plan with these)";
      profile.reasons.push_back(line.str());
    }
    return profile;
  }

  profile.hardware_class = "cpu";
  profile.pose.device = "cpu";
  profile.pose.precision = "fp32";  // CPU fp16 convolutions are slower than fp32 in LibTorch
  // Frames of 4 streams in one call: 16 analysed frames/s per 1080p stream instead of 10 on 2 cores (Lightning,
  // docs/benchmarks.md), for about 35 ms more latency. One stream never waits for a batch to fill.
  profile.pose.batch_size = 4;
  profile.vram.device = "cpu";
  if (has_gpu) {
    profile.reasons.push_back("pose: " + facts.gpus.gpus.front().name +
                              " present but this LibTorch has no CUDA: running on the CPU");
  }
  if (measured.pose_proxy_ms > 0) {
    const double thunder_ms = measured.pose_proxy_ms * kThunderOverLightning;
    const bool thunder = thunder_ms <= kFrameBudgetMs / 2;
    profile.pose.model = thunder ? "movenet-thunder" : "movenet-lightning";
    const double model_ms = thunder ? thunder_ms : measured.pose_proxy_ms;
    profile.pose.streams_per_device = std::clamp(static_cast<int>(std::floor(kFrameBudgetMs / model_ms)), 1, 16);
    std::ostringstream line;
    line.precision(3);
    line << "pose: measured " << measured.pose_proxy_ms << " ms per Lightning-sized frame on " << cores << " cores -> "
         << profile.pose.model << ", " << profile.pose.streams_per_device << " stream(s) at 30 fps";
    profile.reasons.push_back(line.str());
  } else {
    // Without a measurement, assume a small CPU: the fast model and one stream.
    profile.pose.model = "movenet-lightning";
    profile.pose.streams_per_device = 1;
    profile.reasons.emplace_back("pose: not measured -> movenet-lightning, 1 stream (safe default)");
  }
  profile.reasons.emplace_back("vram: no CUDA device -> estimates only; no budget set");
  return profile;
}

std::string to_toml(const MachineProfile& profile) {
  toml::table pose{{"device", profile.pose.device},
                   {"model", profile.pose.model},
                   {"precision", profile.pose.precision},
                   {"batch_size", profile.pose.batch_size},
                   {"streams_per_device", profile.pose.streams_per_device},
                   {"threads", profile.pose.threads}};
  toml::table vram{{"device", profile.vram.device}};
  if (profile.vram.budget_bytes > 0) vram.insert("budget", static_cast<int64_t>(profile.vram.budget_bytes));

  toml::array gpus;
  for (const auto& gpu : profile.facts.gpus.gpus) {
    gpus.push_back(gpu.name + ", " + gib(gpu.memory_total_bytes) + ", compute " +
                   std::to_string(gpu.compute_capability_major) + "." + std::to_string(gpu.compute_capability_minor));
  }
  toml::table machine{{"hardware_class", profile.hardware_class},
                      {"cpu", profile.facts.cpu.model},
                      {"cpu_cores", profile.facts.cpu.usable_cores},
                      {"avx2", profile.facts.cpu.avx2},
                      {"avx512f", profile.facts.cpu.avx512f},
                      {"ram_bytes", static_cast<int64_t>(profile.facts.memory.total_bytes)},
                      {"gpus", gpus},
                      {"nvidia_driver", profile.facts.gpus.driver_version},
                      {"libtorch_cuda", profile.facts.libtorch_cuda}};
  // Measurements carry three decimals: more digits would only be noise.
  const auto rounded = [](double value) { return std::round(value * 1000.0) / 1000.0; };
  toml::table measured{{"pose_proxy_ms", rounded(profile.measured.pose_proxy_ms)},
                       {"pose_proxy_device", profile.measured.pose_proxy_device},
                       {"h2d_pinned_gb_per_s", rounded(profile.measured.h2d_pinned_gb_per_s)},
                       {"h2d_pageable_gb_per_s", rounded(profile.measured.h2d_pageable_gb_per_s)}};

  std::ostringstream out;
  out << "# Machine profile written by `doctor` at " << profile.generated_at << ".\n"
      << "# [pose] and [vram] are defaults for the tools; flags, environment and --config override them.\n"
      << "# Regenerate with `make validate`. Keys: docs/machine-profile.md\n#\n";
  for (const auto& reason : profile.reasons) out << "# " << reason << "\n";
  out << "\n"
      << toml::table{{"pose", pose}} << "\n\n"
      << toml::table{{"vram", vram}} << "\n\n"
      << toml::table{{"machine", machine}} << "\n\n"
      << toml::table{{"measured", measured}} << "\n";
  return out.str();
}

}  // namespace core::profile
