#include "vram/transfer/transfer.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace vram::transfer {
namespace {

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
  return values[values.size() / 2];
}

// Times `repeats` copies src -> dst after one warm-up, synchronising around each so the host clock measures the
// whole transfer.
double copy_gb_per_s(at::Tensor& dst, const at::Tensor& src, int repeats) {
  dst.copy_(src, /*non_blocking=*/true);
  torch::cuda::synchronize();
  std::vector<double> rates;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    dst.copy_(src, /*non_blocking=*/true);
    torch::cuda::synchronize();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(src.nbytes()) / seconds / 1e9);
  }
  return median(rates);
}

}  // namespace

core::Result<Bandwidth> measure_bandwidth(const BandwidthOptions& options) {
  if (!torch::cuda::is_available()) {
    return core::make_error(core::ErrorCode::kUnavailable, "no CUDA device visible to LibTorch");
  }
  try {
    const auto n = static_cast<int64_t>(options.bytes);
    const auto bytes = at::TensorOptions().dtype(at::kByte);
    at::Tensor pinned = at::empty({n}, bytes.pinned_memory(true)).fill_(1);
    at::Tensor pageable = at::empty({n}, bytes).fill_(2);
    at::Tensor device = at::empty({n}, bytes.device(at::kCUDA));
    Bandwidth result;
    result.pinned_gb_per_s = copy_gb_per_s(device, pinned, options.repeats);
    result.pageable_gb_per_s = copy_gb_per_s(device, pageable, options.repeats);
    result.device_to_host_pinned_gb_per_s = copy_gb_per_s(pinned, device, options.repeats);
    return result;
  } catch (const c10::Error& error) {
    const std::string what = error.what_without_backtrace();
    const bool oom = what.find("out of memory") != std::string::npos;
    return core::make_error(oom ? core::ErrorCode::kOutOfMemory : core::ErrorCode::kInternal,
                            "bandwidth measurement failed: " + what);
  }
}

}  // namespace vram::transfer
