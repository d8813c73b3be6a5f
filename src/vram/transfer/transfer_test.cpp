#include "vram/transfer/transfer.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

namespace vram::transfer {
namespace {

TEST(Transfer, WithoutCudaItSaysSo) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA present: covered by the gpu test";
  auto result = measure_bandwidth({});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, core::ErrorCode::kUnavailable);
  EXPECT_NE(result.error().message.find("no CUDA device"), std::string::npos);
}

}  // namespace
}  // namespace vram::transfer
