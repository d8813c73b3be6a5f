#include "vram/profile/host_stash.h"

#include <map>
#include <mutex>

#ifdef WB_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vram::profile {
namespace {

// Host buffers by slot, reused while the shape and dtype stay; grown when they change.
class Buffers {
 public:
  at::Tensor& host_for(size_t slot, const at::Tensor& like, bool pinned) {
    at::Tensor& buffer = host_[slot];
    if (!buffer.defined() || buffer.sizes() != like.sizes() || buffer.scalar_type() != like.scalar_type()) {
      buffer = at::empty(like.sizes(), at::TensorOptions().dtype(like.scalar_type()).pinned_memory(pinned));
    }
    return buffer;
  }
  at::Tensor host(size_t slot) const {
    const auto it = host_.find(slot);
    return it == host_.end() ? at::Tensor() : it->second;
  }
  int64_t bytes() const {
    int64_t total = 0;
    for (const auto& [slot, buffer] : host_) total += static_cast<int64_t>(buffer.nbytes());
    return total;
  }

 private:
  std::map<size_t, at::Tensor> host_;
};

class CpuStash final : public HostStash {
 public:
  void put(size_t slot, const at::Tensor& tensor) override {
    std::lock_guard<std::mutex> lock(mutex_);
    buffers_.host_for(slot, tensor, false).copy_(tensor);
  }
  void prefetch(size_t /*slot*/) override {}
  at::Tensor take(size_t slot) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return buffers_.host(slot).clone();
  }
  int64_t host_bytes() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return buffers_.bytes();
  }

 private:
  mutable std::mutex mutex_;  // guards the map; slots themselves are not shared
  Buffers buffers_;
};

#ifdef WB_TORCH_CUDA
class CudaStash final : public HostStash {
 public:
  explicit CudaStash(const at::Device& device)
      : device_(device), side_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index())) {}

  void put(size_t slot, const at::Tensor& tensor) override {
    std::lock_guard<std::mutex> lock(mutex_);
    const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(device_.index());
    Slot& s = slots_[slot];
    // The side stream copies only after the main stream has made the tensor.
    at::cuda::CUDAEvent made;
    made.record(main);
    made.block(side_);
    at::Tensor& host = buffers_.host_for(slot, tensor, true);
    {
      c10::cuda::CUDAStreamGuard guard(side_);
      host.copy_(tensor, /*non_blocking=*/true);
    }
    // The caching allocator must not hand this memory out again before the copy has read it.
    tensor.record_stream(side_.unwrap());
    s.out = std::make_unique<at::cuda::CUDAEvent>();
    s.out->record(side_);
    s.device = at::Tensor();
  }

  void prefetch(size_t slot) override {
    std::lock_guard<std::mutex> lock(mutex_);
    prefetch_locked(slot);
  }

  at::Tensor take(size_t slot) override {
    std::lock_guard<std::mutex> lock(mutex_);
    prefetch_locked(slot);
    Slot& s = slots_.at(slot);
    const c10::cuda::CUDAStream main = c10::cuda::getCurrentCUDAStream(device_.index());
    s.back->block(main);
    at::Tensor tensor = std::move(s.device);
    // Made on the side stream, used and freed on the main one.
    tensor.record_stream(main.unwrap());
    s.device = at::Tensor();
    return tensor;
  }

  int64_t host_bytes() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return buffers_.bytes();
  }

 private:
  struct Slot {
    std::unique_ptr<at::cuda::CUDAEvent> out;   // the copy to the host has finished
    std::unique_ptr<at::cuda::CUDAEvent> back;  // the copy back to the device has finished
    at::Tensor device;                          // on its way back, or back
  };

  void prefetch_locked(size_t slot) {
    const auto it = slots_.find(slot);
    if (it == slots_.end() || it->second.device.defined()) return;
    Slot& s = it->second;
    const at::Tensor host = buffers_.host(slot);
    c10::cuda::CUDAStreamGuard guard(side_);
    s.out->block(side_);
    s.device = at::empty(host.sizes(), host.options().device(device_).pinned_memory(false));
    s.device.copy_(host, /*non_blocking=*/true);
    s.back = std::make_unique<at::cuda::CUDAEvent>();
    s.back->record(side_);
  }

  at::Device device_;
  c10::cuda::CUDAStream side_;
  mutable std::mutex mutex_;  // put() and take() run on different threads (the step's and autograd's)
  Buffers buffers_;
  std::map<size_t, Slot> slots_;
};
#endif

}  // namespace

std::unique_ptr<HostStash> HostStash::create(const at::Device& device) {
#ifdef WB_TORCH_CUDA
  if (device.is_cuda()) {
    return std::make_unique<CudaStash>(
        at::Device(at::kCUDA, device.has_index() ? device.index() : c10::cuda::current_device()));
  }
#else
  (void)device;
#endif
  return std::make_unique<CpuStash>();
}

}  // namespace vram::profile
