// Conformance of pose::graph with the TFJS reference runtime (tfjs-wasm 4.22, tools/tfjs-reference): every output
// of the seven pose graphs on the reference's synthetic image. The reference JSONs are made by the CTest fixture
// pose_graph_tfjs_reference (node, offline) into WB_TFJS_REFERENCE_DIR.

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string_view>
#include <vector>

#include "core/hash/sha256.h"

#ifdef WB_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif
#include "pose/graph/graph.h"
#include "pose/graph/model_json.h"
#include "pose/graph/plan.h"
#include "pose/graph/test_support/synthetic_input.h"
#include "pose/graph/weights.h"
#include "pose/models/models.h"

namespace pose::graph {
namespace {

using test_support::ReferenceModel;

constexpr double kRelativeTolerance = 1e-3;
// Keypoints of MoveNet must decode to the same pixel within this distance, at the model's input size.
constexpr double kKeypointTolerancePx = 0.5;

std::filesystem::path reference_dir() {
  if (const char* dir = std::getenv("WB_TFJS_REFERENCE_DIR"); dir != nullptr && *dir != '\0') return dir;
  return WB_TFJS_REFERENCE_DIR;
}

struct Comparison {
  double max_error = 0;  // max over elements of |a - b| / max(|b|, floor)
  size_t worst_index = 0;
  size_t over_tolerance = 0;  // elements with an error above kRelativeTolerance
  double max_abs_error = 0;
  double floor = 0;
};

// Relative error per element, |a - b| / max(|b|, s), with a per-tensor floor s on the denominator so values near
// zero are judged against the tensor's typical magnitude instead of themselves: float32 rounding in a dot product
// is relative to the terms summed, not to the (possibly cancelled) result. s is the median |reference|, which
// tracks the typical value even where a tensor mixes scales (the detector's logit column reaches -5.6e5 while its
// box columns are pixel offsets, so max|ref| * 1e-2 would allow errors of 5 px there), and at least 1e-4 of the
// largest value, so saturated sigmoid maps (mostly ~1e-12) are compared to ~1e-7 absolute, not to themselves.
Comparison compare(const std::vector<float>& actual, const std::vector<float>& expected) {
  std::vector<double> magnitudes;
  double largest = 0;
  for (const float value : expected) {
    magnitudes.push_back(std::abs(static_cast<double>(value)));
    largest = std::max(largest, magnitudes.back());
  }
  std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(magnitudes.size() / 2),
                   magnitudes.end());
  Comparison result;
  result.floor = std::max({magnitudes[magnitudes.size() / 2], 1e-4 * largest, 1e-30});
  for (size_t i = 0; i < expected.size(); ++i) {
    const double b = expected[i];
    const double difference = std::abs(static_cast<double>(actual[i]) - b);
    const double error = difference / std::max(std::abs(b), result.floor);
    result.max_abs_error = std::max(result.max_abs_error, std::isnan(difference) ? INFINITY : difference);
    if (!(error <= kRelativeTolerance)) ++result.over_tolerance;
    if (!(error <= result.max_error)) {  // also catches NaN
      result.max_error = std::isnan(error) ? INFINITY : error;
      result.worst_index = i;
    }
  }
  return result;
}

// BlazePose's segmentation maps are ill-conditioned in float32 at a few pixels: the sigmoid's input reaches |87|
// and a few logits come out of a long chain of cancelling sums. tfjs-wasm's own SIMD and plain builds disagree on
// 71 (full) and 402 (heavy) of these pixels by more than the rule above (up to 5e-2), and against a float64
// evaluation of the graph tfjs-wasm is off by up to 1.5e-3 (heavy) where pose::graph is off by 1.7e-4; on the real
// photos every model's map shows the same (tfjs-wasm 1.8e-3..1.5e-2 from float64, pose::graph 1.7e-3..1.1e-2). No
// float32 implementation can follow tfjs-wasm's rounding there, so these maps, which are probabilities, are held to
// an absolute bound in probability units, and still to the strict rule on all but 2% of their pixels.
struct IllConditioned {
  std::string_view model;
  std::string_view output;
};
constexpr std::array kIllConditioned{IllConditioned{"blazepose-lite", "activation_segmentation"},
                                     IllConditioned{"blazepose-full", "activation_segmentation"},
                                     IllConditioned{"blazepose-heavy", "activation_segmentation"}};
constexpr double kProbabilityTolerance = 5e-3;
constexpr double kMaxOverToleranceFraction = 0.02;

bool is_ill_conditioned(std::string_view model, std::string_view output) {
  return std::any_of(kIllConditioned.begin(), kIllConditioned.end(),
                     [&](const IllConditioned& entry) { return entry.model == model && entry.output == output; });
}

std::vector<float> flat_floats(const at::Tensor& tensor) {
  const at::Tensor host = tensor.to(at::kCPU).to(at::kFloat).contiguous();
  return {host.data_ptr<float>(), host.data_ptr<float>() + host.numel()};
}

std::vector<float> reference_values(const nlohmann::json& output) {
  std::vector<float> values;
  for (const auto& value : output.at("values")) {
    values.push_back(value.is_string() ? std::strtof(value.get<std::string>().c_str(), nullptr)
                                       : static_cast<float>(value.get<double>()));
  }
  return values;
}

// The same graph evaluated in float64 with pose::graph's kernels: when an output misses the strict rule, the log
// shows how far tfjs-wasm and pose::graph each are from it, which tells float32 conditioning from a kernel bug
// (a bug moves pose::graph away from tfjs-wasm while tfjs-wasm stays close to float64).
std::vector<at::Tensor> run_float64(const std::filesystem::path& path, const Graph& graph, const at::Tensor& input) {
  auto model = parse_model_json(path);
  auto weights = model ? load_weights(*model) : core::Result<WeightMap>(model.error());
  if (!weights) return {};
  PlanRequest request;
  for (const auto& info : graph.inputs()) request.inputs.push_back(info.node.substr(0, info.node.find(':')));
  for (const auto& info : graph.outputs()) request.outputs.push_back(info.node);
  request.float_options = at::TensorOptions().dtype(at::kDouble);
  auto plan = Plan::build(*model, std::move(*weights), request);
  if (!plan) return {};
  auto outputs = plan->execute({input.is_floating_point() ? input.to(at::kDouble) : input});
  return outputs ? *outputs : std::vector<at::Tensor>{};
}

// MoveNet writes (y, x, score) triples normalised to [0, 1]; single-pose is [1,1,17,3], multi-pose [1,6,56] with
// 17 triples first in each row.
void expect_keypoints_match(const std::vector<float>& actual, const std::vector<float>& expected, size_t row_length,
                            int input_size) {
  double worst_px = 0;
  for (size_t row = 0; row + row_length <= expected.size(); row += row_length) {
    for (size_t k = 0; k < 17; ++k) {
      for (size_t axis = 0; axis < 2; ++axis) {
        const size_t i = row + 3 * k + axis;
        worst_px = std::max(worst_px, std::abs(static_cast<double>(actual[i]) - expected[i]) * input_size);
      }
    }
  }
  std::cout << "  keypoints: max distance " << worst_px << " px at input scale\n";
  EXPECT_LE(worst_px, kKeypointTolerancePx);
}

// WB_GRAPH_DEVICE=cuda runs the same check on the GPU (float32 with TF32 off, as the reference is float32), against
// references made on the CPU and carried there: the GPU machine has no node.
GraphOptions device_options() {
  GraphOptions options;
  const char* device = std::getenv("WB_GRAPH_DEVICE");
  if (device != nullptr && std::string_view(device) == "cuda") {
    options.device = c10::Device(c10::kCUDA, 0);
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  return options;
}

class Conformance : public ::testing::TestWithParam<ReferenceModel> {};

// Runs `model` on `rgb` (its input size, RGB bytes) and checks every output against the reference runner's JSON.
void expect_matches_reference(const ReferenceModel& model, const std::vector<uint8_t>& rgb,
                              const nlohmann::json& reference) {
  ASSERT_EQ(core::hash::sha256_hex(rgb), reference.at("input").at("rgbSha256").get<std::string>())
      << "the input bytes differ from the reference runner's";
  const auto model_path = models::default_model_dir() / (std::string(model.name) + ".json");
  auto graph = Graph::load(model_path, device_options());
  ASSERT_TRUE(graph) << graph.error().message;
  const at::Tensor input = test_support::model_input(rgb, model.size, model.size, model.normalization);
  auto outputs = (*graph)->run({&input, 1});
  ASSERT_TRUE(outputs) << outputs.error().message;

  const auto& expected_outputs = reference.at("outputs");
  ASSERT_EQ(outputs->size(), expected_outputs.size());
  std::vector<at::Tensor> float64_outputs;  // computed on first need
  for (size_t i = 0; i < outputs->size(); ++i) {
    const auto& expected = expected_outputs[i];
    const std::string name = expected.at("name").get<std::string>();
    ASSERT_EQ((*graph)->outputs()[i].name, name);
    const at::Tensor& actual = (*outputs)[i];
    EXPECT_EQ(actual.sizes().vec(), expected.at("shape").get<std::vector<int64_t>>()) << name;
    const std::vector<float> actual_values = flat_floats(actual);
    const std::vector<float> expected_values = reference_values(expected);
    ASSERT_EQ(actual_values.size(), expected_values.size()) << name;
    const Comparison result = compare(actual_values, expected_values);
    std::cout << "[" << model.name << "] " << name << ": max relative error " << result.max_error << " (floor "
              << result.floor << "; worst at " << result.worst_index << ": got " << actual_values[result.worst_index]
              << ", want " << expected_values[result.worst_index] << "), max abs error " << result.max_abs_error << ", "
              << result.over_tolerance << "/" << expected_values.size() << " over " << kRelativeTolerance << "\n";
    if (result.max_error > kRelativeTolerance) {
      if (float64_outputs.empty()) float64_outputs = run_float64(model_path, **graph, input);
      if (float64_outputs.size() == outputs->size()) {
        const std::vector<float> exact = flat_floats(float64_outputs[i]);
        std::cout << "  against float64: tfjs-wasm " << compare(expected_values, exact).max_error << ", pose::graph "
                  << compare(actual_values, exact).max_error << "\n";
      }
    }
    if (is_ill_conditioned(model.name, name)) {
      EXPECT_LE(result.max_abs_error, kProbabilityTolerance) << model.name << " output " << name;
      EXPECT_LE(static_cast<double>(result.over_tolerance),
                kMaxOverToleranceFraction * static_cast<double>(expected_values.size()))
          << model.name << " output " << name;
    } else {
      EXPECT_LE(result.max_error, kRelativeTolerance) << model.name << " output " << name;
    }
    if (model.name.starts_with("movenet")) {
      const size_t row_length = static_cast<size_t>(actual.size(-1) == 3 ? 17 * 3 : actual.size(-1));
      expect_keypoints_match(actual_values, expected_values, row_length, model.size);
    }
  }
}

nlohmann::json read_reference(const std::filesystem::path& path) {
  std::ifstream file(path);
  if (!file) return nullptr;
  return nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
}

TEST_P(Conformance, EveryOutputMatchesTfjsWasm) {
  const ReferenceModel& model = GetParam();
  const auto reference_path = reference_dir() / (std::string(model.name) + "__synthetic.json");
  const auto reference = read_reference(reference_path);
  ASSERT_TRUE(reference.is_object()) << reference_path << " is missing: run `ctest -R pose_graph` (its fixture "
                                     << "makes it) or node tools/tfjs-reference/reference.mjs --out "
                                     << reference_dir();
  expect_matches_reference(model, test_support::synthetic_rgb(model.size, model.size), reference);
}

#ifdef WB_HAVE_OPENCV
// Real COCO photos (../shared/testdata/coco, read there, never copied into the repository): letterboxed to the
// model's input here, written as raw RGB into the build folder, run by tfjs-wasm (node) and by pose::graph.
std::vector<uint8_t> letterboxed_rgb(const std::string& photo, int size) {
  const cv::Mat bgr = cv::imread(std::string(WB_SHARED_DIR) + "/testdata/coco/images/" + photo, cv::IMREAD_COLOR);
  if (bgr.empty()) return {};
  const double scale = static_cast<double>(size) / std::max(bgr.cols, bgr.rows);
  cv::Mat resized, rgb;
  cv::resize(bgr, resized, cv::Size(), scale, scale, cv::INTER_LINEAR);
  cv::Mat square(size, size, CV_8UC3, cv::Scalar(0, 0, 0));
  resized.copyTo(square(cv::Rect((size - resized.cols) / 2, (size - resized.rows) / 2, resized.cols, resized.rows)));
  cv::cvtColor(square, rgb, cv::COLOR_BGR2RGB);
  return {rgb.data, rgb.data + rgb.total() * 3};
}

class PhotoConformance : public ::testing::TestWithParam<ReferenceModel> {};

TEST_P(PhotoConformance, EveryOutputMatchesTfjsWasmOnRealPhotos) {
  const ReferenceModel& model = GetParam();
  const auto dir = reference_dir() / "photos";
  std::filesystem::create_directories(dir);
  for (const char* photo : {"000000067180.jpg", "000000009483.jpg", "000000014888.jpg"}) {
    const std::vector<uint8_t> rgb = letterboxed_rgb(photo, model.size);
    ASSERT_FALSE(rgb.empty()) << photo << " is missing from ../shared/testdata/coco/images";
    const std::string label = std::filesystem::path(photo).stem().string();
    const auto raw = dir / (std::string(model.name) + "__" + label + ".rgb");
    std::ofstream(raw, std::ios::binary)
        .write(reinterpret_cast<const char*>(rgb.data()),  // NOLINT
               static_cast<std::streamsize>(rgb.size()));
    const std::string size = std::to_string(model.size);
    const std::string command = std::string(WB_NODE) + " " + WB_SOURCE_DIR + "/tools/tfjs-reference/reference.mjs" +
                                " --model " + std::string(model.name) + " --input " + raw.string() + " --shape " +
                                size + "," + size + ",3 --label " + label + " --out " + dir.string() + " > /dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    const auto reference = read_reference(dir / (std::string(model.name) + "__" + label + ".json"));
    ASSERT_TRUE(reference.is_object()) << "the reference runner wrote no output for " << photo;
    SCOPED_TRACE(photo);
    expect_matches_reference(model, rgb, reference);
  }
}

INSTANTIATE_TEST_SUITE_P(PoseModels, PhotoConformance, ::testing::ValuesIn(test_support::kReferenceModels),
                         [](const ::testing::TestParamInfo<ReferenceModel>& param) {
                           std::string name(param.param.name);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });
#endif

INSTANTIATE_TEST_SUITE_P(PoseModels, Conformance, ::testing::ValuesIn(test_support::kReferenceModels),
                         [](const ::testing::TestParamInfo<ReferenceModel>& param) {
                           std::string name(param.param.name);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace pose::graph
