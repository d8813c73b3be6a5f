#pragma once
// Frozen weights streamed from host memory. Each unit (a checkpoint segment's stages) keeps its frozen parameters
// in one host buffer (pinned on CUDA); a few device buffers take turns holding the units in use. acquire() makes
// a unit's parameters views into its device buffer, release() empties them again, and prefetch() starts the next
// unit's copy on a side stream while the current one computes, so transfer overlaps compute.
//
// Between release() and the next acquire() a streamed parameter is an empty tensor: a stage run without its
// weights fails loudly rather than computing with stale ones. Trainable parameters (LoRA adapters) and parameters
// a stage only shares never move. When the stream is destroyed the parameters point at their host copies, so
// the model keeps its weights (on the CPU).
//
// On the CPU the host buffers are plain heap memory outside LibTorch's allocator and the copies are synchronous:
// the same path runs in CI, and LibTorch's CPU allocator (the device, for the counting meter) sees only the
// device buffers.
//
// Private to the vram modules. Thread-safety: every method may be called from the step's thread and from
// autograd's; a mutex guards the buffers.

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "core/result.h"
#include "vram/zoo/zoo.h"

namespace vram::profile {

class WeightStream {
 public:
  // Moves the frozen parameters of units[u] to host memory. `device_buffers` (at least 2) device buffers of the
  // largest unit's size are made now. The parameters may be on `device` or already on the host (a model built
  // with ModelOptions::frozen_to_host). Fails for fewer than 2 buffers, an empty unit or a parameter elsewhere.
  static core::Result<std::unique_ptr<WeightStream>> create(const at::Device& device,
                                                            const std::vector<std::vector<zoo::Stage*>>& units,
                                                            int64_t device_buffers);
  ~WeightStream();
  WeightStream(const WeightStream&) = delete;
  WeightStream& operator=(const WeightStream&) = delete;

  // The unit's weights on the device, ready for work queued on the current stream; its parameters point at them.
  // Copies now when no prefetch brought them.
  void acquire(size_t unit);
  // Starts copying a unit to a free device buffer; does nothing when it is there already or no buffer is free.
  void prefetch(size_t unit);
  // The current stream is done with the unit once its queued work ends; its buffer may be refilled after that.
  void release(size_t unit);

  size_t unit_count() const;
  int64_t host_bytes() const;    // the frozen weights, in host memory
  int64_t device_bytes() const;  // the device buffers
  int64_t copies() const;        // host-to-device copies so far (a unit found still in its buffer costs none)

 private:
  struct Impl;
  explicit WeightStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Bytes of a unit's frozen parameters as create() lays them out (each aligned to 256 bytes): what one device
// buffer must hold.
int64_t streamed_bytes(const std::vector<zoo::Stage*>& unit);

}  // namespace vram::profile
