// Runs against the real NVIDIA driver; skips on machines without one.
#include <gtest/gtest.h>

#include "core/sys/sys.h"

namespace core::sys {
namespace {

TEST(NvmlReal, ListsEveryGpuWithMemoryAndCapability) {
  auto nvml = Nvml::open();
  if (!nvml) GTEST_SKIP() << nvml.error().message;
  EXPECT_FALSE((*nvml)->driver_version().empty());
  EXPECT_FALSE((*nvml)->cuda_driver_version().empty());
  auto gpus = (*nvml)->gpus();
  ASSERT_TRUE(gpus.ok()) << gpus.error().message;
  ASSERT_FALSE(gpus->empty());
  for (const auto& gpu : *gpus) {
    EXPECT_FALSE(gpu.name.empty());
    EXPECT_GT(gpu.memory_total_bytes, 1ull << 30);
    EXPECT_LE(gpu.memory_free_bytes, gpu.memory_total_bytes);
    EXPECT_GE(gpu.compute_capability_major, 5);
  }
}

}  // namespace
}  // namespace core::sys
