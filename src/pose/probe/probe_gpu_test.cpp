// Runs on a CUDA device; skips on machines without one.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "pose/probe/probe.h"

namespace pose::probe {
namespace {

TEST(ProbeGpu, MeasuresOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ProbeOptions options;
  options.cuda = true;
  auto result = measure_proxy_latency(options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_GT(result->median_ms, 0.0);
}

}  // namespace
}  // namespace pose::probe
