#include "core/libtorch/libtorch.h"

#include <gtest/gtest.h>

namespace core::libtorch {
namespace {

TEST(LibTorch, ReportsVersionBlasAndThreads) {
  set_threads(2);
  const LibTorchInfo info = libtorch_info();
  EXPECT_FALSE(info.version.empty());
  EXPECT_EQ(info.threads, 2);
  EXPECT_FALSE(info.blas.empty());
  EXPECT_FALSE(info.parallel_backend.empty());
  if (!info.cuda_built) {
    EXPECT_FALSE(info.cuda_available);
    EXPECT_TRUE(info.cuda_version.empty());
  }
}

TEST(LibTorch, ZeroThreadsMeansEveryUsableCore) {
  set_threads(0);
  EXPECT_GE(libtorch_info().threads, 1);
}

}  // namespace
}  // namespace core::libtorch
