#include "checks.h"

#include <gtest/gtest.h>

namespace doctor {
namespace {

Facts healthy_cpu_machine() {
  Facts facts;
  facts.os = core::sys::OsInfo{"Debian GNU/Linux 12 (bookworm)", "debian", "12", "6.1.0"};
  core::sys::CpuInfo cpu;
  cpu.model = "AMD EPYC";
  cpu.logical_cores = cpu.physical_cores = cpu.usable_cores = 2;
  cpu.avx2 = true;
  facts.cpu = cpu;
  facts.memory = core::sys::MemoryInfo{24ull << 30, 20ull << 30};
  facts.disk = core::sys::DiskInfo{"/work", 250ull << 30, 80ull << 30};
  facts.gpus.reason = "no NVIDIA driver on this machine";
  facts.libtorch.version = "1.13.1";
  facts.libtorch.blas = "open";
  facts.libtorch.blas_loaded = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3";
  facts.libtorch.threads = 2;
  facts.video = VideoIo{"4.6.0", true, true};
  pose::models::ModelCheck model;
  model.model = "movenet-lightning";
  model.ok = true;
  model.files.resize(2);
  facts.models.push_back(model);
  return facts;
}

const Check* find(const std::vector<Check>& checks, const std::string& group, const std::string& name) {
  for (const auto& check : checks)
    if (check.group == group && check.name == name) return &check;
  return nullptr;
}

TEST(Checks, HealthyCpuMachinePassesWithGpuAsInfo) {
  const auto checks = evaluate(healthy_cpu_machine());
  EXPECT_EQ(exit_code(checks), 0);
  const Check* gpu = find(checks, "gpu", "nvidia");
  ASSERT_NE(gpu, nullptr);
  EXPECT_EQ(gpu->status, Status::kInfo);
  EXPECT_NE(gpu->detail.find("run on the CPU"), std::string::npos);
}

TEST(Checks, BadModelFailsWithTheFix) {
  Facts facts = healthy_cpu_machine();
  facts.models[0].ok = false;
  facts.models[0].problem = "/m/movenet-lightning.bin has SHA-256 ..., expected ...";
  const auto checks = evaluate(facts);
  EXPECT_EQ(exit_code(checks), 1);
  const Check* model = find(checks, "models", "movenet-lightning");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->status, Status::kFail);
  EXPECT_EQ(model->fix, "make setup");
}

TEST(Checks, ReferenceBlasFailsAndNamesThePackage) {
  Facts facts = healthy_cpu_machine();
  facts.libtorch.blas_loaded = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";
  facts.libtorch.blas_is_reference = true;
  const auto checks = evaluate(facts);
  EXPECT_EQ(exit_code(checks), 1);
  EXPECT_NE(find(checks, "libtorch", "blas")->fix.find("libopenblas0-openmp"), std::string::npos);
}

TEST(Checks, GpuWithCpuLibTorchWarns) {
  Facts facts = healthy_cpu_machine();
  core::sys::GpuInfo gpu;
  gpu.name = "NVIDIA GeForce RTX 4060";
  gpu.memory_total_bytes = 8ull << 30;
  gpu.compute_capability_major = 8;
  facts.gpus.driver_loaded = true;
  facts.gpus.gpus.push_back(gpu);
  const auto checks = evaluate(facts);
  EXPECT_EQ(exit_code(checks), 0);
  EXPECT_EQ(find(checks, "gpu", "gpu 0")->status, Status::kOk);
  EXPECT_EQ(find(checks, "libtorch", "cuda")->status, Status::kWarn);
}

TEST(Checks, NoFfmpegFailsAndTinyDiskFails) {
  Facts facts = healthy_cpu_machine();
  facts.video->ffmpeg = false;
  facts.disk->free_bytes = 100ull << 20;
  const auto checks = evaluate(facts);
  EXPECT_EQ(find(checks, "video", "ffmpeg")->status, Status::kFail);
  EXPECT_EQ(find(checks, "system", "disk")->status, Status::kFail);
}

TEST(Checks, TableShowsFixLinesAndNoColourWhenAsked) {
  Facts facts = healthy_cpu_machine();
  facts.models[0].ok = false;
  facts.models[0].problem = "missing";
  const std::string table = render_table(evaluate(facts), false);
  EXPECT_NE(table.find("FAIL  models movenet-lightning"), std::string::npos) << table;
  EXPECT_NE(table.find("fix: make setup"), std::string::npos);
  EXPECT_EQ(table.find("\033["), std::string::npos);
}

}  // namespace
}  // namespace doctor
