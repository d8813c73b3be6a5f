#include "pose/graph/graph.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "pose/models/models.h"

namespace pose::graph {
namespace {

using nlohmann::json;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::filesystem::path test_dir() {
  auto dir = std::filesystem::path(::testing::TempDir()) /
             (std::string("graph_test_") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

at::Tensor zeros_input(int64_t size) { return at::zeros({1, size, size, 3}, at::TensorOptions().dtype(at::kInt)); }

// ---- the real models, and damaged copies of them ----

class DamagedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test_dir();
    for (const char* file : {"movenet-lightning.json", "movenet-lightning.bin"}) {
      std::filesystem::copy_file(models::default_model_dir() / file, dir_ / file);
    }
    json_ = dir_ / "movenet-lightning.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  json read_json() const { return json::parse(std::ifstream(json_)); }
  void write_json(const json& model) const { std::ofstream(json_) << model.dump(); }

  std::filesystem::path dir_;
  std::filesystem::path json_;
};

TEST(Graph, DescribesTheSignature) {
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", {});
  ASSERT_TRUE(graph) << graph.error().message;
  ASSERT_EQ((*graph)->inputs().size(), 1u);
  const TensorInfo& input = (*graph)->inputs()[0];
  EXPECT_EQ(input.name, "input:0");  // this model's signature key is the tensor name
  EXPECT_EQ(input.node, "input:0");
  EXPECT_EQ(input.dtype, at::kInt);
  EXPECT_EQ(input.shape, (std::vector<int64_t>{1, 192, 192, 3}));
  ASSERT_EQ((*graph)->outputs().size(), 1u);
  EXPECT_EQ((*graph)->outputs()[0].node, "Identity:0");
  EXPECT_EQ((*graph)->outputs()[0].shape, (std::vector<int64_t>{1, 1, 17, 3}));
}

TEST(Graph, BlazePoseOutputsAreSortedByFriendlyName) {
  auto graph = Graph::load(models::default_model_dir() / "blazepose-lite.json", {});
  ASSERT_TRUE(graph) << graph.error().message;
  std::vector<std::string> names;
  for (const auto& output : (*graph)->outputs()) names.push_back(output.name);
  EXPECT_EQ(names, (std::vector<std::string>{"activation_heatmap", "activation_segmentation", "ld_3d",
                                             "output_poseflag", "world_3d"}));
  // The placeholder takes any batch; the signature name is kept.
  EXPECT_EQ((*graph)->inputs()[0].name, "input_1");
  EXPECT_EQ((*graph)->inputs()[0].shape, (std::vector<int64_t>{-1, 256, 256, 3}));
}

TEST(Graph, RunsLightning) {
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", {});
  ASSERT_TRUE(graph) << graph.error().message;
  const at::Tensor input = zeros_input(192);
  auto outputs = (*graph)->run({&input, 1});
  ASSERT_TRUE(outputs) << outputs.error().message;
  ASSERT_EQ(outputs->size(), 1u);
  EXPECT_EQ((*outputs)[0].sizes().vec(), (std::vector<int64_t>{1, 1, 17, 3}));
  EXPECT_EQ((*outputs)[0].scalar_type(), at::kFloat);
  EXPECT_TRUE((*outputs)[0].ge(0).all().item<bool>() && (*outputs)[0].le(1).all().item<bool>());
}

TEST(Graph, MultiPoseTakesOtherSizes) {
  auto graph = Graph::load(models::default_model_dir() / "movenet-multipose.json", {});
  ASSERT_TRUE(graph) << graph.error().message;
  const at::Tensor input = at::zeros({1, 160, 224, 3}, at::TensorOptions().dtype(at::kInt));
  auto outputs = (*graph)->run({&input, 1});
  ASSERT_TRUE(outputs) << outputs.error().message;
  EXPECT_EQ((*outputs)[0].sizes().vec(), (std::vector<int64_t>{1, 6, 56}));
}

// Cutting single-pose MoveNet before its batch-1 decoding: the heatmap node is returned and what follows it
// is not run.
TEST(Graph, ReturnsRequestedIntermediateNodes) {
  GraphOptions options;
  options.outputs = {"StatefulPartitionedCall/Sigmoid", "StatefulPartitionedCall/kpt_offset_0/conv2d_7/BiasAdd:0"};
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", options);
  ASSERT_TRUE(graph) << graph.error().message;
  EXPECT_EQ((*graph)->outputs()[0].name, "StatefulPartitionedCall/Sigmoid");
  EXPECT_EQ((*graph)->outputs()[0].node, "StatefulPartitionedCall/Sigmoid:0");
  const at::Tensor input = zeros_input(192);
  auto outputs = (*graph)->run({&input, 1});
  ASSERT_TRUE(outputs) << outputs.error().message;
  EXPECT_EQ((*outputs)[0].sizes().vec(), (std::vector<int64_t>{1, 48, 48, 17}));
  EXPECT_EQ((*outputs)[1].sizes().vec(), (std::vector<int64_t>{1, 48, 48, 34}));
}

TEST(Graph, UnknownRequestedNodeIsAnError) {
  GraphOptions options;
  options.outputs = {"no/such/node"};
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", options);
  ASSERT_FALSE(graph);
  EXPECT_TRUE(contains(graph.error().message, "no/such/node")) << graph.error().message;
}

TEST(Graph, Float16NeedsCuda) {
  GraphOptions options;
  options.compute = ComputeType::kFloat16;
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", options);
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kUnsupported);
}

TEST(Graph, CudaWithoutADeviceIsUnavailable) {
  if (at::hasCUDA()) GTEST_SKIP() << "this machine has CUDA";
  GraphOptions options;
  options.device = c10::Device(c10::kCUDA);
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", options);
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kUnavailable);
}

TEST(Graph, LogsOneLinePerLoad) {
  std::vector<std::string> lines;
  std::mutex mutex;
  GraphOptions options;
  options.logger = core::Logger(
      [&](const core::LogRecord& record) {
        const std::lock_guard lock(mutex);
        lines.emplace_back(record.message);
      },
      core::LogLevel::kInfo);
  ASSERT_TRUE(Graph::load(models::default_model_dir() / "movenet-lightning.json", options));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(contains(lines[0], "movenet-lightning.json")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "folded")) << lines[0];
}

TEST(Graph, WrongInputShapeNamesBothShapes) {
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", {});
  ASSERT_TRUE(graph);
  const at::Tensor input = zeros_input(100);
  auto outputs = (*graph)->run({&input, 1});
  ASSERT_FALSE(outputs);
  EXPECT_EQ(outputs.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(outputs.error().message, "'input:0' must have shape [1,192,192,3]")) << outputs.error().message;
  EXPECT_TRUE(contains(outputs.error().message, "got [1,100,100,3]")) << outputs.error().message;
}

TEST(Graph, WrongInputDtypeNamesBothTypes) {
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", {});
  ASSERT_TRUE(graph);
  const at::Tensor input = at::zeros({1, 192, 192, 3});
  auto outputs = (*graph)->run({&input, 1});
  ASSERT_FALSE(outputs);
  EXPECT_TRUE(contains(outputs.error().message, "'input:0' must be int32, got float32")) << outputs.error().message;
}

TEST(Graph, WrongInputCount) {
  auto graph = Graph::load(models::default_model_dir() / "movenet-lightning.json", {});
  ASSERT_TRUE(graph);
  auto outputs = (*graph)->run({});
  ASSERT_FALSE(outputs);
  EXPECT_TRUE(contains(outputs.error().message, "expected 1 input")) << outputs.error().message;
}

TEST(Graph, MissingModelFileIsNotFound) {
  auto graph = Graph::load("/nonexistent/model.json", {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kNotFound);
  EXPECT_TRUE(contains(graph.error().message, "/nonexistent/model.json")) << graph.error().message;
}

TEST_F(DamagedModel, TruncatedJsonIsMalformed) {
  std::string text;
  {
    std::ifstream file(json_);
    text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  std::ofstream(json_) << text.substr(0, text.size() / 2);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(contains(graph.error().message, json_.string() + ": malformed model.json")) << graph.error().message;
}

TEST_F(DamagedModel, MissingTopologyIsMalformed) {
  json model = read_json();
  model.erase("modelTopology");
  write_json(model);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_TRUE(contains(graph.error().message, "malformed model.json at modelTopology")) << graph.error().message;
}

TEST_F(DamagedModel, MissingShardIsNamed) {
  std::filesystem::remove(dir_ / "movenet-lightning.bin");
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kNotFound);
  EXPECT_TRUE(contains(graph.error().message, (dir_ / "movenet-lightning.bin").string() + " is missing"))
      << graph.error().message;
}

TEST_F(DamagedModel, FeedingAnUnknownNodeNamesIt) {
  GraphOptions options;
  options.inputs = {"StatefulPartitionedCall/no_such_node"};
  auto graph = Graph::load(json_, options);
  ASSERT_FALSE(graph);
  EXPECT_TRUE(contains(graph.error().message, "input node 'StatefulPartitionedCall/no_such_node' is not in the graph"))
      << graph.error().message;
}

TEST_F(DamagedModel, TruncatedShardIsCorrupt) {
  const auto shard = dir_ / "movenet-lightning.bin";
  std::string bytes;
  {
    std::ifstream in(shard, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const size_t size = bytes.size();
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << bytes.substr(0, size - 100);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kCorrupt);
  EXPECT_TRUE(contains(graph.error().message, "movenet-lightning.bin hold " + std::to_string(size - 100) +
                                                  " bytes but the manifest expects " + std::to_string(size)))
      << graph.error().message;
}

TEST_F(DamagedModel, UnsupportedOpNamesTheOpAndTheNode) {
  json model = read_json();
  for (auto& node : model["modelTopology"]["node"]) {
    if (node["name"] == "StatefulPartitionedCall/Sigmoid") node["op"] = "Softplus";
  }
  write_json(model);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kUnsupported);
  EXPECT_TRUE(
      contains(graph.error().message, json_.string() + ": node 'StatefulPartitionedCall/Sigmoid' uses op 'Softplus'"))
      << graph.error().message;
}

TEST_F(DamagedModel, UnsupportedFusedActivationIsNamed) {
  json model = read_json();
  for (auto& node : model["modelTopology"]["node"]) {
    if (node["op"] == "_FusedConv2D") {
      node["attr"]["fused_ops"]["list"]["s"] = {"Qmlhc0FkZA==", "RWx1"};  // BiasAdd, Elu
      break;
    }
  }
  write_json(model);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kUnsupported);
  EXPECT_TRUE(contains(graph.error().message, "fused_ops [BiasAdd+Elu] are not supported")) << graph.error().message;
}

TEST_F(DamagedModel, DanglingInputNamesBothNodes) {
  json model = read_json();
  for (auto& node : model["modelTopology"]["node"]) {
    if (node["name"] == "StatefulPartitionedCall/Sigmoid") node["input"][0] = "ghost";
  }
  write_json(model);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_TRUE(contains(graph.error().message, "node 'StatefulPartitionedCall/Sigmoid' reads 'ghost'"))
      << graph.error().message;
}

TEST_F(DamagedModel, ConstWithoutWeightsIsCorrupt) {
  json model = read_json();
  model["modelTopology"]["node"].push_back({{"name", "orphan"}, {"op", "Const"}});
  for (auto& node : model["modelTopology"]["node"]) {
    if (node["name"] == "StatefulPartitionedCall/Sigmoid") {
      node["op"] = "AddV2";
      node["input"].push_back("orphan");
    }
  }
  write_json(model);
  auto graph = Graph::load(json_, {});
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.error().code, core::ErrorCode::kCorrupt);
  EXPECT_TRUE(contains(graph.error().message, "Const node 'orphan' has no entry in the weights manifest"))
      << graph.error().message;
}

// ---- small hand-written graphs for op semantics the pose models only partly exercise ----

std::string base64(std::string_view text) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    buffer = (buffer << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(buffer >> bits) & 0x3Fu]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (6 - bits)) & 0x3Fu]);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

json ints_attr(const std::vector<int64_t>& values) {
  json list = json::array();
  for (const int64_t value : values) list.push_back(std::to_string(value));
  return {{"list", {{"i", list}}}};
}
json int_attr(int64_t value) { return {{"i", std::to_string(value)}}; }
json string_attr(std::string_view value) { return {{"s", base64(value)}}; }
json type_attr(std::string_view type) { return {{"type", type}}; }

// Writes model.json and one weight shard into a folder.
class TinyModel {
 public:
  explicit TinyModel(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void placeholder(const std::string& name, std::string_view dtype, const std::vector<int64_t>& shape) {
    json dims = json::array();
    for (const int64_t dim : shape) dims.push_back({{"size", std::to_string(dim)}});
    nodes_.push_back({{"name", name},
                      {"op", "Placeholder"},
                      {"attr", {{"dtype", type_attr(dtype)}, {"shape", {{"shape", {{"dim", dims}}}}}}}});
  }

  // float32 or int32, stored as they are.
  void constant(const std::string& name, const at::Tensor& value) {
    const at::Tensor data = value.contiguous();
    append(name, data.sizes().vec(), data.scalar_type() == at::kInt ? "int32" : "float32", nullptr, data.data_ptr(),
           static_cast<size_t>(data.nbytes()));
  }

  void constant_float16(const std::string& name, const at::Tensor& value) {
    const at::Tensor data = value.to(at::kHalf).contiguous();
    const json quantization = {{"dtype", "float16"}, {"original_dtype", "float32"}};
    append(name, data.sizes().vec(), "float32", &quantization, data.data_ptr(), static_cast<size_t>(data.nbytes()));
  }

  void constant_uint8(const std::string& name, const std::vector<uint8_t>& values, double min, double scale) {
    const json quantization = {{"dtype", "uint8"}, {"min", min}, {"scale", scale}, {"original_dtype", "float32"}};
    append(name, {static_cast<int64_t>(values.size())}, "float32", &quantization, values.data(), values.size());
  }

  void node(const std::string& name, const std::string& op, const std::vector<std::string>& inputs,
            json attrs = json::object()) {
    nodes_.push_back({{"name", name}, {"op", op}, {"input", inputs}, {"attr", std::move(attrs)}});
  }

  std::filesystem::path write() const {
    const json model = {{"format", "graph-model"},
                        {"modelTopology", {{"node", nodes_}}},
                        {"weightsManifest", {{{"paths", {"tiny.bin"}}, {"weights", weights_}}}}};
    std::ofstream(dir_ / "tiny.json") << model.dump();
    std::ofstream(dir_ / "tiny.bin", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes_.data()), static_cast<std::streamsize>(bytes_.size()));
    return dir_ / "tiny.json";
  }

 private:
  void append(const std::string& name, const std::vector<int64_t>& shape, const std::string& dtype,
              const json* quantization, const void* data, size_t size) {
    nodes_.push_back({{"name", name}, {"op", "Const"}});
    json spec = {{"name", name}, {"shape", shape}, {"dtype", dtype}};
    if (quantization != nullptr) spec["quantization"] = *quantization;
    weights_.push_back(std::move(spec));
    const auto* bytes = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), bytes, bytes + size);
  }

  std::filesystem::path dir_;
  json nodes_ = json::array();
  json weights_ = json::array();
  std::vector<uint8_t> bytes_;
};

class TinyGraph : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_dir(); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Loads what `model` describes, returning the requested node outputs for the given inputs.
  std::vector<at::Tensor> run(const TinyModel& model, const std::vector<std::string>& outputs,
                              const std::vector<at::Tensor>& inputs) {
    GraphOptions options;
    options.outputs = outputs;
    auto graph = Graph::load(model.write(), options);
    EXPECT_TRUE(graph) << graph.error().message;
    if (!graph) return {};
    auto results = (*graph)->run(inputs);
    EXPECT_TRUE(results) << results.error().message;
    return results ? *results : std::vector<at::Tensor>{};
  }

  std::filesystem::path dir_;
};

at::Tensor ints(const std::vector<int32_t>& values) {
  return at::tensor(at::ArrayRef<int32_t>(values), at::TensorOptions().dtype(at::kInt));
}

void expect_equal(const at::Tensor& actual, const at::Tensor& expected) {
  ASSERT_TRUE(actual.defined());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(actual.to(at::kDouble), expected.to(at::kDouble))) << actual << "\nexpected\n" << expected;
}

TEST_F(TinyGraph, StridedSliceFollowsTfMasks) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {2, 3, 4});
  const auto slice = [&](const std::string& name, std::vector<int32_t> begin, std::vector<int32_t> end,
                         std::vector<int32_t> strides, json masks) {
    model.constant(name + "/b", ints(begin));
    model.constant(name + "/e", ints(end));
    model.constant(name + "/s", ints(strides));
    model.node(name, "StridedSlice", {"x", name + "/b", name + "/e", name + "/s"}, std::move(masks));
  };
  // x[1, :]: the first axis shrinks, the second is masked.
  slice("row", {1, 0}, {2, 0}, {1, 1},
        {{"shrink_axis_mask", int_attr(1)}, {"begin_mask", int_attr(2)}, {"end_mask", int_attr(2)}});
  // x[..., 0:2] through an explicit ellipsis.
  slice("last", {0, 0}, {0, 2}, {1, 1}, {{"ellipsis_mask", int_attr(1)}});
  // x[:, newaxis]
  slice("new", {0, 0}, {0, 0}, {1, 1},
        {{"begin_mask", int_attr(1)}, {"end_mask", int_attr(1)}, {"new_axis_mask", int_attr(2)}});
  // x[::-1, -2:] with negative stride and negative begin
  slice("reversed", {-1, -2}, {0, 0}, {-1, 1}, {{"end_mask", int_attr(3)}});
  const at::Tensor x = at::arange(24, at::TensorOptions().dtype(at::kFloat)).reshape({2, 3, 4});
  const auto out = run(model, {"row", "last", "new", "reversed"}, {x});
  ASSERT_EQ(out.size(), 4u);
  expect_equal(out[0], x[1]);
  expect_equal(out[1], x.narrow(2, 0, 2));
  expect_equal(out[2], x.unsqueeze(1));
  expect_equal(out[3], x.flip(0).narrow(1, 1, 2));
}

// TF pads SAME convolutions of even inputs with stride 2 at the bottom and right only.
TEST_F(TinyGraph, SamePaddingWithStrideTwoIsAsymmetric) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {1, 4, 4, 1});
  model.constant("w", at::ones({3, 3, 1, 1}));
  model.node(
      "conv", "Conv2D", {"x", "w"},
      {{"strides", ints_attr({1, 2, 2, 1})}, {"padding", string_attr("SAME")}, {"data_format", string_attr("NHWC")}});
  model.node(
      "pool", "MaxPool", {"x"},
      {{"ksize", ints_attr({1, 3, 3, 1})}, {"strides", ints_attr({1, 2, 2, 1})}, {"padding", string_attr("SAME")}});
  const at::Tensor image = at::arange(16, at::TensorOptions().dtype(at::kFloat)).reshape({4, 4});
  const auto out = run(model, {"conv", "pool"}, {image.reshape({1, 4, 4, 1})});
  ASSERT_EQ(out.size(), 2u);
  const auto window_sum = [&](int64_t r, int64_t c) {
    return image.narrow(0, r, std::min<int64_t>(3, 4 - r))
        .narrow(1, c, std::min<int64_t>(3, 4 - c))
        .sum()
        .item<float>();
  };
  const at::Tensor expected_conv =
      at::tensor({window_sum(0, 0), window_sum(0, 2), window_sum(2, 0), window_sum(2, 2)}).reshape({1, 2, 2, 1});
  expect_equal(out[0], expected_conv);
  expect_equal(out[1], at::tensor({10.0f, 11.0f, 14.0f, 15.0f}).reshape({1, 2, 2, 1}));
}

TEST_F(TinyGraph, DepthwiseMultiplierOrdersChannelsLikeTf) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {1, 1, 1, 2});
  // [kh, kw, in=2, multiplier=2]: out channel c*2 + m = x[c] * w[c][m]
  model.constant("w", at::tensor({1.0f, 10.0f, 100.0f, 1000.0f}).reshape({1, 1, 2, 2}));
  model.node("dw", "DepthwiseConv2dNative", {"x", "w"},
             {{"strides", ints_attr({1, 1, 1, 1})}, {"padding", string_attr("VALID")}});
  const auto out = run(model, {"dw"}, {at::tensor({2.0f, 3.0f}).reshape({1, 1, 1, 2})});
  ASSERT_EQ(out.size(), 1u);
  expect_equal(out[0], at::tensor({2.0f, 20.0f, 300.0f, 3000.0f}).reshape({1, 1, 1, 4}));
}

TEST_F(TinyGraph, DepthToSpaceUsesTfOrder) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {1, 1, 1, 4});
  model.node("d2s", "DepthToSpace", {"x"}, {{"block_size", int_attr(2)}});
  const auto out = run(model, {"d2s"}, {at::arange(4, at::TensorOptions().dtype(at::kFloat)).reshape({1, 1, 1, 4})});
  ASSERT_EQ(out.size(), 1u);
  expect_equal(out[0], at::arange(4, at::TensorOptions().dtype(at::kFloat)).reshape({1, 2, 2, 1}));
}

TEST_F(TinyGraph, TopKBreaksTiesByLowerIndex) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {1, 5});
  model.constant("k", ints({3}).reshape({}));
  model.node("top", "TopKV2", {"x", "k"}, {{"sorted", {{"b", true}}}});
  const auto out = run(model, {"top:0", "top:1"}, {at::tensor({1.0f, 3.0f, 3.0f, 2.0f, 3.0f}).reshape({1, 5})});
  ASSERT_EQ(out.size(), 2u);
  expect_equal(out[0], at::tensor({3.0f, 3.0f, 3.0f}).reshape({1, 3}));
  expect_equal(out[1], ints({1, 2, 4}).reshape({1, 3}));
  EXPECT_EQ(out[1].scalar_type(), at::kInt);
}

TEST_F(TinyGraph, GatherNdAndFloorDiv) {
  TinyModel model(dir_);
  model.placeholder("params", "DT_FLOAT", {2, 3});
  model.constant("indices", ints({1, 2, 0, 1}).reshape({2, 2}));
  model.node("gather", "GatherNd", {"params", "indices"});
  model.constant("a", ints({-7, 7}));
  model.constant("b", ints({2}).reshape({}));
  model.node("floordiv", "FloorDiv", {"a", "b"});
  const auto out =
      run(model, {"gather", "floordiv"}, {at::arange(6, at::TensorOptions().dtype(at::kFloat)).reshape({2, 3})});
  ASSERT_EQ(out.size(), 2u);
  expect_equal(out[0], at::tensor({5.0f, 1.0f}));
  expect_equal(out[1], ints({-4, 3}));  // folded at load: every input is constant
}

TEST_F(TinyGraph, QuantizedWeightsAreDequantized) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {3});
  model.constant_uint8("q8", {0, 1, 255}, -1.0, 0.5);
  model.constant_float16("f16", at::tensor({0.5f, -2.0f, 1024.0f}));
  model.node("sum8", "AddV2", {"x", "q8"});
  model.node("sum16", "AddV2", {"x", "f16"});
  const auto out = run(model, {"sum8", "sum16"}, {at::zeros({3})});
  ASSERT_EQ(out.size(), 2u);
  expect_equal(out[0], at::tensor({-1.0f, -0.5f, 126.5f}));
  expect_equal(out[1], at::tensor({0.5f, -2.0f, 1024.0f}));
}

// A Pad feeding a VALID convolution is folded into it, and a Relu6 after an add is applied in place: both must
// compute what the separate ops compute.
TEST_F(TinyGraph, FoldedPadAndActivationKeepResults) {
  TinyModel model(dir_);
  model.placeholder("x", "DT_FLOAT", {1, 3, 3, 1});
  model.constant("paddings", ints({0, 0, 1, 1, 1, 1, 0, 0}).reshape({4, 2}));
  model.node("pad", "Pad", {"x", "paddings"});
  model.constant("w", at::ones({3, 3, 1, 1}));
  model.node("conv", "Conv2D", {"pad", "w"}, {{"strides", ints_attr({1, 1, 1, 1})}, {"padding", string_attr("VALID")}});
  model.node("add", "AddV2", {"conv", "x"});
  model.node("relu6", "Relu6", {"add"});
  const at::Tensor x = at::arange(9, at::TensorOptions().dtype(at::kFloat)).reshape({1, 3, 3, 1}) - 4;
  const auto out = run(model, {"relu6", "pad"}, {x});
  ASSERT_EQ(out.size(), 2u);
  const at::Tensor padded = at::constant_pad_nd(x, {0, 0, 1, 1, 1, 1});
  const at::Tensor conv = at::conv2d(padded.permute({0, 3, 1, 2}), at::ones({1, 1, 3, 3})).permute({0, 2, 3, 1});
  expect_equal(out[0], (conv + x).clamp(0, 6));
  expect_equal(out[1], padded);
}

}  // namespace
}  // namespace pose::graph
