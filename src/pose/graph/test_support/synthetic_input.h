#pragma once
// Test and benchmark support (not part of pose::graph's API): the seven pose graphs as tools/tfjs-reference runs
// them, and the reference runner's deterministic synthetic RGB image, reproduced bit for bit (its README gives
// the formula; the SHA-256 of these bytes is in every reference file).

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace pose::graph::test_support {

// From uint8 v to the model's input tensor, computed in double and rounded once, as reference.mjs does.
enum class Normalization {
  kRawInt32,     // MoveNet: int32 v; the graph normalises itself
  kZeroOne,      // BlazePose landmarks: float32 v / 255
  kMinusOneOne,  // BlazePose detector: float32 v / 127.5 - 1
};

struct ReferenceModel {
  std::string_view name;  // file stem in the human-models folder and in the reference output names
  int size;               // square input side the reference feeds
  Normalization normalization;
};

inline constexpr std::array kReferenceModels{
    ReferenceModel{"movenet-lightning", 192, Normalization::kRawInt32},
    ReferenceModel{"movenet-thunder", 256, Normalization::kRawInt32},
    ReferenceModel{"movenet-multipose", 256, Normalization::kRawInt32},
    ReferenceModel{"blazepose-detector", 224, Normalization::kMinusOneOne},
    ReferenceModel{"blazepose-lite", 256, Normalization::kZeroOne},
    ReferenceModel{"blazepose-full", 256, Normalization::kZeroOne},
    ReferenceModel{"blazepose-heavy", 256, Normalization::kZeroOne},
};

// R = horizontal ramp, G = vertical ramp (both rounded half up, integer arithmetic), B = 16x16 checkerboard.
inline std::vector<uint8_t> synthetic_rgb(int height, int width) {
  const auto ramp = [](int i, int n) { return n > 1 ? (510 * i + (n - 1)) / (2 * (n - 1)) : 0; };
  std::vector<uint8_t> rgb(static_cast<size_t>(height) * static_cast<size_t>(width) * 3);
  size_t offset = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      rgb[offset++] = static_cast<uint8_t>(ramp(x, width));
      rgb[offset++] = static_cast<uint8_t>(ramp(y, height));
      rgb[offset++] = static_cast<uint8_t>((x / 16 + y / 16) % 2 ? 224 : 32);
    }
  }
  return rgb;
}

// NHWC [1, height, width, 3] tensor the model expects.
inline at::Tensor model_input(const std::vector<uint8_t>& rgb, int height, int width, Normalization normalization) {
  const at::Tensor bytes =
      at::from_blob(const_cast<uint8_t*>(rgb.data()), {1, height, width, 3}, at::TensorOptions().dtype(at::kByte));
  switch (normalization) {
    case Normalization::kRawInt32: return bytes.to(at::kInt);
    case Normalization::kZeroOne: return (bytes.to(at::kDouble) / 255.0).to(at::kFloat);
    case Normalization::kMinusOneOne: return (bytes.to(at::kDouble) / 127.5 - 1.0).to(at::kFloat);
  }
  return {};
}

}  // namespace pose::graph::test_support
