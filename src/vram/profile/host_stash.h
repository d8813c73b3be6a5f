#pragma once
// Where offloaded checkpoint inputs wait for backward: one host buffer per slot (pinned on CUDA), kept from step to
// step so no step allocates host memory. On CUDA, copies run on a side stream: out to the host as soon as the
// input exists, and back to the device ahead of backward (prefetch), overlapping the compute on the main stream.
// On the CPU the same calls copy between host tensors, which keeps the code path testable without a GPU.
//
// Private to the vram modules. Thread-safety: put() runs on the step's thread, prefetch() and take() on autograd's;
// a slot is used by one of them at a time (forward before backward), so no lock is needed per slot.

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace vram::profile {

class HostStash {
 public:
  static std::unique_ptr<HostStash> create(const at::Device& device);
  virtual ~HostStash() = default;

  // Copies `tensor` out to host slot `slot` (asynchronously on CUDA); the device memory may be reused by the
  // caching allocator only once the copy has read it.
  virtual void put(size_t slot, const at::Tensor& tensor) = 0;
  // Starts bringing slot `slot` back to the device; does nothing if it is already on its way or unknown.
  virtual void prefetch(size_t slot) = 0;
  // The slot's tensor on the device, ready for use on the current stream.
  virtual at::Tensor take(size_t slot) = 0;
  // Host bytes the stash holds (pinned on CUDA).
  virtual int64_t host_bytes() const = 0;
};

}  // namespace vram::profile
