// Runs on a CUDA device; skips on machines without one.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "vram/transfer/transfer.h"

namespace vram::transfer {
namespace {

TEST(TransferGpu, PinnedCopiesAreFastAndMeasured) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto result = measure_bandwidth({64ull << 20, 3});
  ASSERT_TRUE(result.ok()) << result.error().message;
  // PCIe 3 x16 or better moves well over 5 GB/s from pinned memory; a figure under 1 means a broken measurement.
  EXPECT_GT(result->pinned_gb_per_s, 1.0);
  EXPECT_GT(result->pageable_gb_per_s, 0.1);
  EXPECT_GT(result->device_to_host_pinned_gb_per_s, 1.0);
}

}  // namespace
}  // namespace vram::transfer
