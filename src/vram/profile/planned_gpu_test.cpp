// Runs on a CUDA device; skips on machines without one. Every technique, and planned combinations of them, give
// the unoptimized step's parameters on the GPU (side streams, pinned host memory and events included), and
// memory does not grow over 100 steps.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "vram/memory/memory.h"
#include "vram/profile/runner.h"

namespace vram::profile {
namespace {

RunnerOptions llama_lora(const std::string& plan) {
  RunnerOptions options;
  options.workload.model = zoo::find_model("llama-tiny").value();
  options.workload.dtype = zoo::DType::kFloat32;
  options.workload.lora = zoo::parse_lora("r4:q,k,v,o").value();
  options.workload.plan = zoo::parse_plan(plan, options.workload.model).value();
  options.device = "cuda";
  options.seed = 9;
  return options;
}

std::unique_ptr<Runner> create(const RunnerOptions& options) {
  auto runner = Runner::create(options);
  EXPECT_TRUE(runner.ok()) << runner.error().message;
  return runner.ok() ? std::move(runner.value()) : nullptr;
}

TEST(PlannedGpu, EveryTechniqueMatchesTheUnoptimizedStep) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  struct Case {
    std::string plan;
    bool stream = false;
    int64_t micro_batches = 1;
    int64_t loss_chunk = 0;
  };
  for (const Case& c : {Case{"checkpoint"}, Case{"offload"}, Case{"offload", true}, Case{"checkpoint-stages", true},
                        Case{"keep", false, 4}, Case{"offload", true, 2, 48}}) {
    SCOPED_TRACE(c.plan + (c.stream ? " + stream" : "") + " micro " + std::to_string(c.micro_batches) + " chunk " +
                 std::to_string(c.loss_chunk));
    auto plain = create(llama_lora("keep"));
    RunnerOptions options = llama_lora(c.plan);
    options.workload.plan.stream_weights = c.stream;
    options.workload.plan.micro_batches = c.micro_batches;
    options.workload.plan.loss_chunk_tokens = c.loss_chunk;
    auto planned = create(options);
    ASSERT_TRUE(plain && planned);
    for (int step = 0; step < 5; ++step) {
      const auto a = plain->step(4, 64);
      ASSERT_TRUE(a.ok()) << a.error().message;
      const auto b = planned->step(4, 64);
      ASSERT_TRUE(b.ok()) << b.error().message;
    }
    planned->synchronize();
    const auto a = plain->model().trainable_parameters();
    const auto b = planned->model().trainable_parameters();
    ASSERT_EQ(a.size(), b.size());
    // The GPU's attention backward sums in an order that may change between runs: equal to float32 rounding.
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_TRUE(at::allclose(a[i], b[i], 1e-4, 1e-6))
          << "parameter " << i << ": largest difference " << (a[i] - b[i]).abs().max().item<double>();
    }
  }
}

TEST(PlannedGpu, StreamedStepsDoNotGrowOver100Steps) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto meter = memory::Meter::create("cuda").value();
  RunnerOptions options = llama_lora("offload");
  options.workload.plan.stream_weights = true;
  options.workload.plan.micro_batches = 2;
  options.workload.plan.loss_chunk_tokens = 64;
  auto runner = create(options);
  ASSERT_TRUE(runner);
  ASSERT_TRUE(runner->step(4, 64).ok());
  runner->synchronize();
  const int64_t after_first = meter->read().allocated_bytes;
  for (int step = 1; step < 100; ++step) ASSERT_TRUE(runner->step(4, 64).ok());
  runner->synchronize();
  EXPECT_EQ(meter->read().allocated_bytes, after_first);
}

}  // namespace
}  // namespace vram::profile
