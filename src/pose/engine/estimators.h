#pragma once
// Private to pose::engine: one estimator per model family (movenet.cpp, blazepose.cpp), created by engine.cpp.

#include <memory>

#include "pose/engine/engine.h"
#include "pose/graph/graph.h"

namespace pose::engine {

// Where to cut a graph whose ends hard-wire batch 1: nodes to feed and node outputs to stop at (see
// graph::GraphOptions::inputs and outputs). The cut graph takes any batch size.
struct BatchableCut {
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
};

// Verifies (when asked) and loads one graph of the model folder on the options' device and precision, whole or
// cut.
core::Result<std::unique_ptr<graph::Graph>> load_graph(const EstimatorOptions& options, const std::string& name,
                                                       const BatchableCut& cut = {});
c10::Device torch_device(Device device);

core::Result<std::unique_ptr<Estimator>> create_movenet(const EstimatorOptions& options);
core::Result<std::unique_ptr<Estimator>> create_movenet_multipose(const EstimatorOptions& options);
core::Result<std::unique_ptr<Estimator>> create_blazepose(const EstimatorOptions& options);

// Single-pose MoveNet's decoding, batched: the four head tensors of the cut graph -> [B, 17, (y, x, score)]
// normalised to the input, the same numbers the uncut graph computes for one frame.
at::Tensor decode_movenet_heads(const at::Tensor& heatmaps, const at::Tensor& centre, const at::Tensor& regression,
                                const at::Tensor& offsets);

// Box around the keypoints scoring at least `min_score`; the whole frame's ROI when none does.
Box keypoint_box(const std::array<Keypoint, kCocoKeypointCount>& keypoints, float min_score);

// Runs `body`, turning LibTorch exceptions into errors that name the model: nothing throws out of the engine.
template <class Body>
auto guard_torch(const std::string& model, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& error) {
    const std::string what = error.what_without_backtrace();
    const bool oom = what.find("out of memory") != std::string::npos;
    return core::make_error(oom ? core::ErrorCode::kOutOfMemory : core::ErrorCode::kInternal,
                            model + ": inference failed: " + what);
  }
}

}  // namespace pose::engine
