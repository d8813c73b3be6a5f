// Single-pose MoveNet cut at both ends (fed after its batch-1 pre-processing, stopped before its batch-1 decoding)
// and decoded in C++ for a whole batch must give what the whole graph gives for each frame alone.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "pose/engine/estimators.h"
#include "pose/engine/frame.h"
#include "pose/models/models.h"

namespace pose::engine {
namespace {

const std::vector<std::string> kHeads = {"StatefulPartitionedCall/Sigmoid", "StatefulPartitionedCall/truediv_2",
                                         "StatefulPartitionedCall/kpt_regress_0/conv2d_6/BiasAdd",
                                         "StatefulPartitionedCall/kpt_offset_0/conv2d_7/BiasAdd"};

class MoveNetDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(MoveNetDecode, BatchedDecodingEqualsTheGraphs) {
  const std::string model = GetParam();
  const int size = models::find_model(model)->input_size;
  const auto path = models::default_model_dir() / (model + ".json");
  auto full = graph::Graph::load(path, {});
  graph::GraphOptions cut_options;
  const models::BatchableCut& spec = *models::find_model(model)->cut;
  cut_options.inputs = {std::string(spec.input)};
  cut_options.outputs.assign(spec.outputs.begin(), spec.outputs.end());
  cut_options.any_batch = true;
  auto cut = graph::Graph::load(path, cut_options);
  ASSERT_TRUE(full.ok() && cut.ok());

  std::vector<at::Tensor> inputs;
  for (const char* file : {"000000067180.jpg", "000000009483.jpg", "000000370711.jpg", "000000014888.jpg"}) {
    const cv::Mat bgr = cv::imread(std::string(WB_SHARED_DIR) + "/testdata/coco/images/" + file);
    ASSERT_FALSE(bgr.empty()) << file;
    const Image image{bgr.data, bgr.cols, bgr.rows, static_cast<int>(bgr.step), PixelFormat::kBgr};
    const at::Tensor frame = frame_tensor(image, c10::kCPU).value();
    inputs.push_back(
        crop(frame, letterbox_roi(bgr.cols, bgr.rows), size, size).permute({0, 2, 3, 1}).round().to(at::kInt));
  }
  // All four photos through the cut network as one batch, decoded together.
  const at::Tensor batch = at::cat(inputs, 0).to(at::kFloat);
  const auto heads = (*cut)->run(std::span<const at::Tensor>(&batch, 1)).value();
  const at::Tensor decoded = decode_movenet_heads(heads[0], heads[1], heads[2], heads[3]);
  ASSERT_EQ(decoded.size(0), 4);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor expected = (*full)->run(std::span<const at::Tensor>(&inputs[i], 1)).value()[0].reshape({17, 3});
    const at::Tensor got = decoded[static_cast<int64_t>(i)];
    EXPECT_LT((got - expected).abs().max().item<float>(), 1e-5f) << model << " photo " << i << "\n" << got << expected;
  }
}

INSTANTIATE_TEST_SUITE_P(SinglePose, MoveNetDecode, ::testing::Values("movenet-lightning", "movenet-thunder"));

}  // namespace
}  // namespace pose::engine
