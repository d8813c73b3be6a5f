#include "vram/profile/weight_stream.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#ifdef WB_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vram::profile {
namespace {

constexpr int64_t kAlignment = 256;

int64_t aligned(int64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// The parameters a unit streams: frozen, owned by its stages, each once.
std::vector<at::Tensor> frozen_parameters(const std::vector<zoo::Stage*>& unit) {
  std::vector<at::Tensor> frozen;
  for (zoo::Stage* stage : unit) {
    for (const auto& parameter : stage->parameters()) {
      if (parameter.requires_grad()) continue;
      bool seen = false;
      for (const auto& other : frozen) seen = seen || other.is_same(parameter);
      if (!seen) frozen.push_back(parameter);
    }
  }
  return frozen;
}

// Host memory for a unit: pinned through LibTorch on CUDA; on the CPU plain heap memory that LibTorch's allocator
// (and so the counting meter) does not see.
at::Tensor host_buffer(int64_t bytes, bool cuda) {
  const auto options = at::TensorOptions().dtype(at::kByte);
  if (cuda) return at::empty({bytes}, options.pinned_memory(true));
  void* data = std::malloc(static_cast<size_t>(std::max<int64_t>(bytes, 1)));  // NOLINT: owned by the deleter
  if (data == nullptr) throw std::bad_alloc();
  return at::from_blob(
      data, {bytes}, [](void* p) { std::free(p); }, options);  // NOLINT
}

// `parameter` becomes a view of `bytes` at `offset` with its own dtype and shape.
void point_at(at::Tensor& parameter, const at::Tensor& bytes, int64_t offset, at::ScalarType dtype,
              at::IntArrayRef sizes) {
  int64_t length = static_cast<int64_t>(c10::elementSize(dtype));
  for (const int64_t size : sizes) length *= size;
  at::NoGradGuard no_grad;
  parameter.set_data(bytes.narrow(0, offset, length).view(dtype).view(sizes));
}

}  // namespace

struct WeightStream::Impl {
  struct Parameter {
    at::Tensor tensor;  // the module's own (same TensorImpl), so set_ reaches the module
    at::ScalarType dtype;
    std::vector<int64_t> sizes;
    int64_t offset = 0;  // bytes into the unit's buffers
  };
  struct Unit {
    std::vector<Parameter> parameters;
    at::Tensor host;  // bytes
    int64_t bytes = 0;
    int buffer = -1;  // the device buffer it is in or on its way to; -1: none
    bool acquired = false;
  };
  struct Buffer {
    at::Tensor device;  // bytes
    int unit = -1;
    uint64_t last_used = 0;
#ifdef WB_TORCH_CUDA
    std::unique_ptr<at::cuda::CUDAEvent> filled;    // the copy into it has finished (side stream)
    std::unique_ptr<at::cuda::CUDAEvent> released;  // the work that used it has finished (compute stream)
#endif
  };

  at::Device device{at::kCPU};
  std::vector<Unit> units;
  std::vector<Buffer> buffers;
  uint64_t clock = 0;
  int64_t copies = 0;
  mutable std::mutex mutex;
#ifdef WB_TORCH_CUDA
  std::optional<c10::cuda::CUDAStream> side;
#endif

  // Makes the unit's parameters empty tensors of their dtype on the device.
  void detach(Unit& unit) {
    at::NoGradGuard no_grad;
    for (auto& p : unit.parameters)
      p.tensor.set_data(at::empty({0}, at::TensorOptions().dtype(p.dtype).device(device)));
  }

  // A buffer nobody holds, least recently used first; -1 when every one is acquired.
  int free_buffer() const {
    int best = -1;
    for (size_t i = 0; i < buffers.size(); ++i) {
      const int unit = buffers[i].unit;
      if (unit >= 0 && units[static_cast<size_t>(unit)].acquired) continue;
      if (best < 0 || buffers[i].last_used < buffers[static_cast<size_t>(best)].last_used) best = static_cast<int>(i);
    }
    return best;
  }

  // Queues the unit's copy into a free buffer. Returns false when none is free.
  bool load(size_t index) {
    Unit& unit = units[index];
    if (unit.buffer >= 0) return true;
    const int b = free_buffer();
    if (b < 0) return false;
    Buffer& buffer = buffers[static_cast<size_t>(b)];
    if (buffer.unit >= 0) units[static_cast<size_t>(buffer.unit)].buffer = -1;
    buffer.unit = static_cast<int>(index);
    buffer.last_used = ++clock;
    unit.buffer = b;
    ++copies;
    const at::Tensor target = buffer.device.narrow(0, 0, unit.bytes);
#ifdef WB_TORCH_CUDA
    if (side) {
      c10::cuda::CUDAStreamGuard guard(*side);
      // Not before the work that used the buffer's previous unit has finished with it.
      if (buffer.released) buffer.released->block(*side);
      target.copy_(unit.host, /*non_blocking=*/true);
      buffer.filled = std::make_unique<at::cuda::CUDAEvent>();
      buffer.filled->record(*side);
      return true;
    }
#endif
    target.copy_(unit.host);
    return true;
  }
};

WeightStream::WeightStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WeightStream::~WeightStream() {
#ifdef WB_TORCH_CUDA
  if (impl_->side) impl_->side->synchronize();
#endif
  // The weights stay with the model, in host memory.
  at::NoGradGuard no_grad;
  for (auto& unit : impl_->units) {
    for (auto& p : unit.parameters) point_at(p.tensor, unit.host, p.offset, p.dtype, p.sizes);
  }
}

int64_t streamed_bytes(const std::vector<zoo::Stage*>& unit) {
  int64_t bytes = 0;
  for (const auto& parameter : frozen_parameters(unit)) bytes += aligned(static_cast<int64_t>(parameter.nbytes()));
  return bytes;
}

core::Result<std::unique_ptr<WeightStream>> WeightStream::create(const at::Device& device,
                                                                 const std::vector<std::vector<zoo::Stage*>>& units,
                                                                 int64_t device_buffers) {
  if (device_buffers < 2) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "weight streaming needs at least 2 device buffers (one in use, one filling)");
  }
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  const bool cuda = device.is_cuda();
#ifdef WB_TORCH_CUDA
  if (cuda) {
    const auto index = device.has_index() ? device.index() : c10::cuda::current_device();
    impl->device = at::Device(at::kCUDA, index);
    impl->side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
  }
#else
  if (cuda) return core::make_error(core::ErrorCode::kUnavailable, "this build's LibTorch has no CUDA");
#endif
  int64_t largest = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    Impl::Unit unit;
    for (auto& tensor : frozen_parameters(units[u])) {
      if (tensor.device() != impl->device && !tensor.device().is_cpu()) {
        return core::make_error(core::ErrorCode::kInvalidArgument,
                                "weight streaming: a parameter of unit " + std::to_string(u) + " is on " +
                                    tensor.device().str() + ", neither " + impl->device.str() + " nor the host");
      }
      unit.parameters.push_back({tensor, tensor.scalar_type(), tensor.sizes().vec(), unit.bytes});
      unit.bytes += aligned(static_cast<int64_t>(tensor.nbytes()));
    }
    if (unit.parameters.empty()) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "weight streaming: unit " + std::to_string(u) + " has no frozen parameter to stream");
    }
    // Into host memory, then the device copies go.
    unit.host = host_buffer(unit.bytes, cuda);
    for (auto& p : unit.parameters) {
      const int64_t length = static_cast<int64_t>(p.tensor.nbytes());
      unit.host.narrow(0, p.offset, length).copy_(p.tensor.contiguous().reshape({-1}).view(at::kByte));
    }
    impl->detach(unit);
    largest = std::max(largest, unit.bytes);
    impl->units.push_back(std::move(unit));
  }
  for (int64_t i = 0; i < device_buffers; ++i) {
    Impl::Buffer buffer;
    buffer.device = at::empty({largest}, at::TensorOptions().dtype(at::kByte).device(impl->device));
    impl->buffers.push_back(std::move(buffer));
  }
  return std::unique_ptr<WeightStream>(new WeightStream(std::move(impl)));
}

void WeightStream::acquire(size_t index) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto& unit = impl_->units.at(index);
  // The runner holds one unit at a time; a caller holding as many as there are buffers has a bug.
  TORCH_CHECK(impl_->load(index), "weight streaming: every device buffer is held; release a unit first");
  auto& buffer = impl_->buffers[static_cast<size_t>(unit.buffer)];
  buffer.last_used = ++impl_->clock;
#ifdef WB_TORCH_CUDA
  if (impl_->side && buffer.filled) buffer.filled->block(c10::cuda::getCurrentCUDAStream(impl_->device.index()));
#endif
  for (auto& p : unit.parameters) point_at(p.tensor, buffer.device, p.offset, p.dtype, p.sizes);
  unit.acquired = true;
}

void WeightStream::prefetch(size_t index) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (index < impl_->units.size()) impl_->load(index);
}

void WeightStream::release(size_t index) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto& unit = impl_->units.at(index);
  if (!unit.acquired) return;
  unit.acquired = false;
  impl_->detach(unit);
#ifdef WB_TORCH_CUDA
  if (impl_->side) {
    auto& buffer = impl_->buffers[static_cast<size_t>(unit.buffer)];
    buffer.released = std::make_unique<at::cuda::CUDAEvent>();
    buffer.released->record(c10::cuda::getCurrentCUDAStream(impl_->device.index()));
  }
#endif
}

size_t WeightStream::unit_count() const { return impl_->units.size(); }

int64_t WeightStream::host_bytes() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  int64_t bytes = 0;
  for (const auto& unit : impl_->units) bytes += unit.bytes;
  return bytes;
}

int64_t WeightStream::device_bytes() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  int64_t bytes = 0;
  for (const auto& buffer : impl_->buffers) bytes += static_cast<int64_t>(buffer.device.nbytes());
  return bytes;
}

int64_t WeightStream::copies() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->copies;
}

}  // namespace vram::profile
