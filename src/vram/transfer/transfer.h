#pragma once
// Host-to-device copy bandwidth, measured: the cost model for activation offload and weight streaming, and a
// number the machine profile records. Pinned (page-locked) memory is what the offload paths use; pageable is
// what a naive copy gets.
//
// Thread-safety: call from the thread that owns the GPU.

#include <cstdint>

#include "core/result.h"

namespace vram::transfer {

struct BandwidthOptions {
  uint64_t bytes = 256ull << 20;  // per copy; large enough to hide launch latency
  int repeats = 5;
};

struct Bandwidth {
  double pinned_gb_per_s = 0.0;  // median over repeats, 10^9 bytes per second
  double pageable_gb_per_s = 0.0;
  double device_to_host_pinned_gb_per_s = 0.0;
};

// Fails with kUnavailable when LibTorch sees no CUDA device, kOutOfMemory when the buffers do not fit.
core::Result<Bandwidth> measure_bandwidth(const BandwidthOptions& options);

}  // namespace vram::transfer
