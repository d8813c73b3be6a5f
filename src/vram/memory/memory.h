#pragma once
// Memory as LibTorch's allocators see it, for one device: bytes in live tensors (allocated), bytes the caching
// allocator holds from the driver (reserved), their peaks, and how often allocation had to free cached blocks and
// retry. On CUDA these are the caching allocator's own statistics; on the CPU a counting allocator wrapped around
// LibTorch's CPU allocator measures every tensor allocation exactly (there is no cache, so reserved = allocated).
//
// Thread-safety: a Meter may be read from any thread (backward hooks run on autograd's threads).

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"

namespace vram::memory {

struct Snapshot {
  int64_t allocated_bytes = 0;       // in live tensors now
  int64_t reserved_bytes = 0;        // held from the driver (CUDA caching allocator); = allocated on the CPU
  int64_t peak_allocated_bytes = 0;  // since the last reset_peak()
  int64_t peak_reserved_bytes = 0;
  int64_t alloc_retries = 0;  // CUDA: allocations that failed, emptied the cache and retried (a sign of pressure)
  int64_t ooms = 0;           // CUDA: out-of-memory errors raised
};

class Meter {
 public:
  // "cpu", "cuda" or "cuda:N". The CPU meter counts only tensors allocated after the first Meter for the CPU was
  // created in this process; create it before building the model. Fails with kUnavailable for a missing device.
  static core::Result<std::unique_ptr<Meter>> create(const std::string& device);
  virtual ~Meter() = default;

  virtual Snapshot read() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached, unused blocks to the driver (CUDA); nothing on the CPU.
  virtual void release_cached() = 0;
  // Bytes the device has in all (CUDA), or 0 where there is no fixed capacity (CPU).
  virtual int64_t capacity_bytes() const = 0;
  // Caps what this process may allocate on the device, so a big card can stand in for a smaller one (CUDA: the
  // caching allocator's per-process memory fraction, which bounds reserved bytes; CPU: the counting allocator
  // bounds allocated bytes). Allocations beyond it fail as out-of-memory. 0 removes the cap; so does destruction.
  virtual core::Status limit_bytes(int64_t bytes) = 0;
  virtual const std::string& device() const = 0;
};

// What decides how a step allocates beyond the model's own tensors: the LibTorch version (its autograd formulas
// and attention kernels) and the GPU generation (cuBLAS workspace sizes).
struct Runtime {
  int libtorch_major = 0;
  int cuda_capability_major = 0;  // 0: no CUDA device behind `device`
};
Runtime runtime(const std::string& device);

// True when the error text is LibTorch's out-of-memory (CUDA or CPU allocator).
bool is_out_of_memory(const std::string& what);

}  // namespace vram::memory
