#include "core/profile/profile.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/config/config.h"

namespace core::profile {
namespace {

MachineFacts cpu_laptop() {
  MachineFacts facts;
  facts.cpu.model = "AMD EPYC";
  facts.cpu.logical_cores = 2;
  facts.cpu.usable_cores = 2;
  facts.memory.total_bytes = 24ull << 30;
  return facts;
}

MachineFacts gpu_box(const std::string& name, uint64_t memory_bytes, int major) {
  MachineFacts facts = cpu_laptop();
  sys::GpuInfo gpu;
  gpu.name = name;
  gpu.memory_total_bytes = memory_bytes;
  gpu.compute_capability_major = major;
  facts.gpus.driver_loaded = true;
  facts.gpus.gpus.push_back(gpu);
  facts.libtorch_cuda = true;
  return facts;
}

TEST(Profile, SlowCpuGetsLightningAndFewStreams) {
  Measurements measured;
  measured.pose_proxy_ms = 12.0;
  const auto profile = derive_profile(cpu_laptop(), measured, "t");
  EXPECT_EQ(profile.hardware_class, "cpu");
  EXPECT_EQ(profile.pose.device, "cpu");
  EXPECT_EQ(profile.pose.model, "movenet-lightning");
  EXPECT_EQ(profile.pose.precision, "fp32");
  EXPECT_EQ(profile.pose.streams_per_device, 2);  // floor(33.3 / 12)
  EXPECT_EQ(profile.pose.threads, 2);
  EXPECT_EQ(profile.vram.budget_bytes, 0u);
}

TEST(Profile, FastCpuAffordsThunder) {
  Measurements measured;
  measured.pose_proxy_ms = 2.0;  // Thunder estimated at 6 ms: within half the 30 fps budget
  const auto profile = derive_profile(cpu_laptop(), measured, "t");
  EXPECT_EQ(profile.pose.model, "movenet-thunder");
  EXPECT_EQ(profile.pose.streams_per_device, 5);
}

TEST(Profile, UnmeasuredCpuIsConservative) {
  const auto profile = derive_profile(cpu_laptop(), {}, "t");
  EXPECT_EQ(profile.pose.model, "movenet-lightning");
  EXPECT_EQ(profile.pose.streams_per_device, 1);
}

TEST(Profile, GpuTiersByMemory) {
  const auto rtx = derive_profile(gpu_box("NVIDIA GeForce RTX 4060", 8ull << 30, 8), {}, "t");
  EXPECT_EQ(rtx.hardware_class, "gpu-7gb+");
  EXPECT_EQ(rtx.pose.device, "cuda");
  EXPECT_EQ(rtx.pose.precision, "fp16");
  EXPECT_EQ(rtx.pose.batch_size, 16);
  EXPECT_EQ(rtx.vram.budget_bytes, (8ull << 30) - (1ull << 30));

  const auto h100 = derive_profile(gpu_box("NVIDIA H100 80GB HBM3", 81559ull << 20, 9), {}, "t");
  EXPECT_EQ(h100.hardware_class, "gpu-70gb+");
  EXPECT_EQ(h100.pose.batch_size, 64);
  EXPECT_EQ(h100.pose.streams_per_device, 32);
  EXPECT_EQ(h100.vram.budget_bytes, (81559ull << 20) - (81559ull << 20) / 20);

  const auto pascal = derive_profile(gpu_box("Tesla P4", 8ull << 30, 6), {}, "t");
  EXPECT_EQ(pascal.pose.precision, "fp32");
}

TEST(Profile, GpuWithoutCudaLibTorchFallsBackToCpu) {
  MachineFacts facts = gpu_box("NVIDIA GeForce RTX 3080", 10ull << 30, 8);
  facts.libtorch_cuda = false;
  const auto profile = derive_profile(facts, {}, "t");
  EXPECT_EQ(profile.pose.device, "cpu");
  EXPECT_NE(profile.reasons.front().find("has no CUDA"), std::string::npos);
}

// The profile is read by the tools as a config layer: its keys must be the tools' keys, and flags win.
TEST(Profile, ToolsReadItAndFlagsOverrideIt) {
  const auto profile = derive_profile(gpu_box("NVIDIA H100 80GB HBM3", 80ull << 30, 9), {}, "2026-11-26T00:00:00Z");
  const auto path = std::filesystem::path(::testing::TempDir()) / "machine-profile.toml";
  std::ofstream(path) << to_toml(profile);

  using config::Option;
  using config::OptionKind;
  const std::vector<Option> table = {
      {"profile", "profile", "", path.string(), "profile", OptionKind::kConfigFile},
      {"pose.model", "model", "", "movenet-lightning", "", OptionKind::kString},
      {"pose.precision", "precision", "", "fp32", "", OptionKind::kString},
      {"pose.batch_size", "batch-size", "", "1", "", OptionKind::kInt},
      {"pose.streams_per_device", "", "", "1", "", OptionKind::kInt},
      {"pose.device", "", "", "cpu", "", OptionKind::kString},
      {"pose.threads", "", "", "0", "", OptionKind::kInt},
      {"vram.device", "", "", "cpu", "", OptionKind::kString},
      {"vram.budget", "budget", "", "0", "", OptionKind::kBytes},
  };
  config::Sources sources;
  sources.args = {"--batch-size", "8"};
  sources.getenv = [](const std::string&) { return std::nullopt; };
  auto resolved = config::Config::resolve(table, sources);
  ASSERT_TRUE(resolved.ok()) << resolved.error().message << "\n" << to_toml(profile);
  EXPECT_EQ(resolved->text("pose.model"), "movenet-thunder");
  EXPECT_EQ(resolved->text("pose.precision"), "fp16");
  EXPECT_EQ(resolved->integer("pose.batch_size"), 8);
  EXPECT_EQ(resolved->integer("pose.streams_per_device"), 32);
  EXPECT_EQ(resolved->bytes("vram.budget"), profile.vram.budget_bytes);
  EXPECT_EQ(resolved->origin("pose.model"), "file " + path.string());
}

}  // namespace
}  // namespace core::profile
