#include "pose/probe/probe.h"

#include <gtest/gtest.h>

#include <torch/cuda.h>

namespace pose::probe {
namespace {

TEST(Probe, MeasuresAPositiveLatencyOnCpu) {
  ProbeOptions options;
  options.warmup_runs = 1;
  options.timed_runs = 3;
  auto result = measure_proxy_latency(options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_GT(result->median_ms, 0.0);
  // MobileNetV2 at 192x192 is about 0.2 GMAC: 0.4 GFLOP counted as multiply + add.
  EXPECT_NEAR(result->gflop_per_frame, 0.45, 0.15);
}

TEST(Probe, CudaRequestWithoutCudaIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA present: covered by the gpu test";
  ProbeOptions options;
  options.cuda = true;
  auto result = measure_proxy_latency(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, core::ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace pose::probe
