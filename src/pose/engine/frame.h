#pragma once
// Private to pose::engine: frames as tensors, and the crops every model's input is cut with.

#include <ATen/core/Tensor.h>

#include <utility>
#include <vector>

#include "core/result.h"
#include "pose/engine/engine.h"

namespace pose::engine {

// Largest side accepted: 16384 px covers 8K (7680 x 4320) with room to spare.
inline constexpr int kMaxImageSide = 16384;

// An oriented square or rectangle in source pixels; rotation in radians, clockwise on screen (y points down),
// as MediaPipe's NormalizedRect.
struct Roi {
  float center_x = 0, center_y = 0;
  float width = 0, height = 0;
  float rotation = 0;
};

// The frame as RGB float [1, 3, H, W] with values 0..255 on `device`. Errors for null data, a size outside
// 1..kMaxImageSide or a stride shorter than a row.
core::Result<at::Tensor> frame_tensor(const Image& image, c10::Device device);

// Uploads frames to a CUDA device through reused pinned buffers, so the copy is asynchronous and needs no page
// locking per frame; on the CPU it is frame_tensor. Slot i of a batch uses buffer i: call begin_batch() before
// the first frame of each batch. A buffer is rewritten only after the previous batch's results were read back
// (which waits for the stream), so an in-flight copy is never overwritten.
// Thread-safety: one per estimator, used by one thread.
class FrameUploader {
 public:
  explicit FrameUploader(c10::Device device) : device_(device) {}
  void begin_batch() { next_slot_ = 0; }
  core::Result<at::Tensor> upload(const Image& image);

 private:
  c10::Device device_;
  std::vector<at::Tensor> pinned_;
  size_t next_slot_ = 0;
};

// The ROI resampled bilinearly (pixel centres, as TF's half_pixel_centers) to [1, 3, height, width]; outside the
// frame is 0 (black), as the models' letterbox padding.
at::Tensor crop(const at::Tensor& frame, const Roi& roi, int width, int height);

// The ROI that letterboxes the whole frame into a square: centred, side = the longer side, no rotation.
Roi letterbox_roi(int width, int height);

// A point given in the crop's normalised coordinates (0..1 across the crop) mapped back to source pixels.
std::pair<float, float> to_source(const Roi& roi, float u, float v);

}  // namespace pose::engine
