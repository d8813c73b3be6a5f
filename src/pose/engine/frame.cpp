#include "pose/engine/frame.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace pose::engine {

namespace {

// Checks the image and returns its row length and stride in bytes.
core::Result<std::pair<int64_t, int64_t>> checked_rows(const Image& image) {
  const int channels = image.format == PixelFormat::kGray ? 1 : 3;
  if (image.data == nullptr) return core::make_error(core::ErrorCode::kInvalidArgument, "image has no pixel data");
  if (image.width < 1 || image.height < 1 || image.width > kMaxImageSide || image.height > kMaxImageSide) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "image size " + std::to_string(image.width) + "x" +
                                                                   std::to_string(image.height) + " is outside 1.." +
                                                                   std::to_string(kMaxImageSide) + " pixels per side");
  }
  const int64_t row = static_cast<int64_t>(image.width) * channels;
  const int64_t stride = image.stride_bytes == 0 ? row : image.stride_bytes;
  if (stride < row) {
    return core::make_error(
        core::ErrorCode::kInvalidArgument,
        "image stride " + std::to_string(stride) + " is shorter than a row of " + std::to_string(row) + " bytes");
  }
  return std::make_pair(row, stride);
}

// HWC uint8 pixels (already on the device) -> RGB float [1, 3, H, W].
at::Tensor to_rgb_float(const at::Tensor& pixels, const Image& image) {
  at::Tensor frame = pixels.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  switch (image.format) {
    case PixelFormat::kRgb: break;
    case PixelFormat::kBgr: frame = frame.flip({1}); break;
    case PixelFormat::kGray: frame = frame.expand({1, 3, image.height, image.width}); break;
  }
  return frame.contiguous();
}

}  // namespace

core::Result<at::Tensor> frame_tensor(const Image& image, c10::Device device) {
  auto rows = checked_rows(image);
  if (!rows) return rows.error();
  const int64_t channels = image.format == PixelFormat::kGray ? 1 : 3;
  // A view of the caller's pixels (no copy), then one copy to the device.
  const at::Tensor pixels = at::from_blob(const_cast<uint8_t*>(image.data),  // NOLINT: read-only view
                                          {image.height, image.width, channels}, {rows->second, channels, 1},
                                          at::TensorOptions().dtype(at::kByte));
  return to_rgb_float(pixels.to(device), image);
}

core::Result<at::Tensor> FrameUploader::upload(const Image& image) {
  if (device_.is_cpu()) return frame_tensor(image, device_);
  auto rows = checked_rows(image);
  if (!rows) return rows.error();
  const auto [row, stride] = *rows;
  const int64_t bytes = row * image.height;
  if (next_slot_ == pinned_.size()) pinned_.emplace_back();
  at::Tensor& buffer = pinned_[next_slot_++];
  if (!buffer.defined() || buffer.numel() < bytes) {
    buffer = at::empty({bytes}, at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  }
  auto* out = buffer.data_ptr<uint8_t>();
  for (int y = 0; y < image.height; ++y) {
    std::memcpy(out + y * row, image.data + y * stride, static_cast<size_t>(row));
  }
  const int64_t channels = image.format == PixelFormat::kGray ? 1 : 3;
  const at::Tensor pixels = buffer.narrow(0, 0, bytes).view({image.height, image.width, channels});
  return to_rgb_float(pixels.to(device_, /*non_blocking=*/true), image);
}

at::Tensor crop(const at::Tensor& frame, const Roi& roi, int width_out, int height_out) {
  const auto height = static_cast<float>(frame.size(2));
  const auto width = static_cast<float>(frame.size(3));
  const float c = std::cos(roi.rotation), s = std::sin(roi.rotation);
  // affine_grid maps output coordinates u, v in [-1, 1] to input ones; with align_corners=false the input's
  // [-1, 1] spans pixel edges, so source continuous coordinates x = (x_n + 1) * W / 2.
  const float theta_values[6] = {c * roi.width / width,  -s * roi.height / width, 2 * roi.center_x / width - 1,
                                 s * roi.width / height, c * roi.height / height, 2 * roi.center_y / height - 1};
  const at::Tensor theta =
      at::from_blob(const_cast<float*>(theta_values), {1, 2, 3}, at::TensorOptions().dtype(at::kFloat))  // NOLINT
          .to(frame.device());
  const at::Tensor grid = at::affine_grid_generator(theta, {1, 3, height_out, width_out}, /*align_corners=*/false);
  // interpolation 0 = bilinear, padding 0 = zeros.
  return at::grid_sampler(frame, grid, 0, 0, /*align_corners=*/false);
}

Roi letterbox_roi(int width, int height) {
  const auto side = static_cast<float>(std::max(width, height));
  return {static_cast<float>(width) / 2, static_cast<float>(height) / 2, side, side, 0.0f};
}

std::pair<float, float> to_source(const Roi& roi, float u, float v) {
  const float dx = (u - 0.5f) * roi.width, dy = (v - 0.5f) * roi.height;
  const float c = std::cos(roi.rotation), s = std::sin(roi.rotation);
  return {roi.center_x + c * dx - s * dy, roi.center_y + s * dx + c * dy};
}

}  // namespace pose::engine
