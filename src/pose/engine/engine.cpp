#include "pose/engine/engine.h"

#include <torch/cuda.h>

#include <algorithm>

#include "pose/engine/estimators.h"
#include "pose/models/models.h"

namespace pose::engine {
namespace {

struct Family {
  const char* model;
  core::Result<std::unique_ptr<Estimator>> (*create)(const EstimatorOptions&);
};
constexpr Family kFamilies[] = {
    {"movenet-lightning", create_movenet},
    {"movenet-thunder", create_movenet},
    {"movenet-multipose", create_movenet_multipose},
    {"blazepose-lite", create_blazepose},
    {"blazepose-full", create_blazepose},
    {"blazepose-heavy", create_blazepose},
};

}  // namespace

std::vector<std::string> estimator_models() {
  std::vector<std::string> names;
  for (const auto& family : kFamilies) names.emplace_back(family.model);
  return names;
}

c10::Device torch_device(Device device) { return device == Device::kCuda ? c10::Device(c10::kCUDA, 0) : c10::kCPU; }

core::Result<std::unique_ptr<Estimator>> Estimator::create(const EstimatorOptions& options) {
  const auto family = std::find_if(std::begin(kFamilies), std::end(kFamilies),
                                   [&](const Family& f) { return options.model == f.model; });
  if (family == std::end(kFamilies)) {
    std::string known;
    for (const auto& name : estimator_models()) known += (known.empty() ? "" : ", ") + name;
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "unknown pose model '" + options.model + "'; known: " + known);
  }
  if (options.device == Device::kCuda && !torch::cuda::is_available()) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            "--device cuda: no CUDA device visible to LibTorch (CPU build, or no driver)");
  }
  if (options.precision == Precision::kFloat16 && options.device != Device::kCuda) {
    return core::make_error(core::ErrorCode::kUnsupported, "fp16 runs on CUDA only; use fp32 on the CPU");
  }
  return family->create(options);
}

core::Result<void> Estimator::warm_up(int /*max_batch*/) { return {}; }

core::Result<std::vector<std::vector<Person>>> Estimator::estimate_batch(std::span<const Image> images) {
  std::vector<std::vector<Person>> results;
  for (const Image& image : images) {
    auto people = estimate(image);
    if (!people) return people.error();
    results.push_back(std::move(*people));
  }
  return results;
}

core::Result<std::unique_ptr<graph::Graph>> load_graph(const EstimatorOptions& options, const std::string& name,
                                                       const BatchableCut& cut) {
  const auto dir = options.model_dir.empty() ? models::default_model_dir() : options.model_dir;
  if (options.verify_checksums) {
    const auto check = models::verify_model(dir, name);
    if (!check.ok) return core::make_error(core::ErrorCode::kCorrupt, check.problem);
  }
  graph::GraphOptions graph_options;
  graph_options.device = torch_device(options.device);
  graph_options.compute =
      options.precision == Precision::kFloat16 ? graph::ComputeType::kFloat16 : graph::ComputeType::kFloat32;
  graph_options.logger = options.logger;
  graph_options.inputs = cut.inputs;
  graph_options.outputs = cut.outputs;
  graph_options.any_batch = !cut.inputs.empty();
  return graph::Graph::load(dir / (name + ".json"), graph_options);
}

Box keypoint_box(const std::array<Keypoint, kCocoKeypointCount>& keypoints, float min_score) {
  float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
  for (const auto& k : keypoints) {
    if (k.score < min_score) continue;
    x0 = std::min(x0, k.x);
    y0 = std::min(y0, k.y);
    x1 = std::max(x1, k.x);
    y1 = std::max(y1, k.y);
  }
  if (x1 < x0) return {};
  return {x0, y0, x1 - x0, y1 - y0};
}

}  // namespace pose::engine
