// MoveNet (Google): SinglePose Lightning (192 px) and Thunder (256 px), one person per frame; MultiPose Lightning
// (any size in multiples of 32), up to six people. The graphs take int32 RGB pixels 0..255 in NHWC and return
// keypoints as (y, x, score) normalised to the input.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "pose/engine/estimators.h"
#include "pose/engine/frame.h"
#include "pose/models/models.h"

namespace pose::engine {
namespace {

constexpr float kBoxKeypointScore = 0.2f;  // keypoints this confident outline the person's box

at::Tensor movenet_input(const at::Tensor& frame, const Roi& roi, int width, int height) {
  return crop(frame, roi, width, height).permute({0, 2, 3, 1}).round().to(at::kInt).contiguous();
}

// 17 (y, x, score) triples in the crop's normalised coordinates -> keypoints in source pixels.
Person decode_keypoints(const float* values, const Roi& roi, const std::string& model) {
  Person person;
  person.model = model;
  float score_sum = 0;
  for (size_t k = 0; k < kCocoKeypointCount; ++k) {
    const auto [x, y] = to_source(roi, values[3 * k + 1], values[3 * k]);
    person.keypoints[k] = {x, y, values[3 * k + 2]};
    score_sum += values[3 * k + 2];
  }
  person.score = score_sum / kCocoKeypointCount;
  person.box = keypoint_box(person.keypoints, kBoxKeypointScore);
  return person;
}

}  // namespace

at::Tensor decode_movenet_heads(const at::Tensor& heatmaps, const at::Tensor& centre, const at::Tensor& regression,
                                const at::Tensor& offsets) {
  const int64_t batch = heatmaps.size(0), height = heatmaps.size(1), width = heatmaps.size(2);
  const int64_t cells = height * width;
  const auto options = heatmaps.options().dtype(at::kFloat);
  const at::Tensor heat = heatmaps.to(at::kFloat).reshape({batch, cells, kCocoKeypointCount});
  // 1. The most central person: the best cell of the centre map.
  const at::Tensor centre_cell = centre.to(at::kFloat).reshape({batch, cells}).argmax(1);  // [B]
  const at::Tensor centre_y = at::floor_divide(centre_cell, width).to(at::kFloat).unsqueeze(1);
  const at::Tensor centre_x = (centre_cell % width).to(at::kFloat).unsqueeze(1);
  // 2. Each keypoint as regressed from that centre.
  const at::Tensor regressed =
      regression.to(at::kFloat)
          .reshape({batch, cells, 2 * kCocoKeypointCount})
          .gather(1, centre_cell.view({batch, 1, 1}).expand({batch, 1, 2 * kCocoKeypointCount}))
          .view({batch, kCocoKeypointCount, 2});
  const at::Tensor guess_y = centre_y + regressed.select(2, 0);  // [B, 17]
  const at::Tensor guess_x = centre_x + regressed.select(2, 1);
  // 3. The heatmap peak nearest the regressed guess: heatmap / (distance + 1.8). 1.7998046875 is the graph's
  //    constant (add_5/y, 1.8 in float16).
  const at::Tensor grid_y = at::arange(height, options).view({1, height, 1, 1}).expand({1, height, width, 1});
  const at::Tensor grid_x = at::arange(width, options).view({1, 1, width, 1}).expand({1, height, width, 1});
  const at::Tensor distance =
      at::sqrt(at::pow(grid_y.reshape({1, cells, 1}) - guess_y.unsqueeze(1), 2) +
               at::pow(grid_x.reshape({1, cells, 1}) - guess_x.unsqueeze(1), 2));  // [B, cells, 17]
  const at::Tensor cell = (heat / (distance + 1.7998046875)).argmax(1);            // [B, 17]
  // 4. Refine the chosen cell with its offsets; scale by the graph's 1/H (Reshape_13, float16).
  const at::Tensor offset =
      offsets.to(at::kFloat)
          .reshape({batch, cells, kCocoKeypointCount, 2})
          .gather(1, cell.view({batch, 1, kCocoKeypointCount, 1}).expand({batch, 1, kCocoKeypointCount, 2}))
          .squeeze(1);  // [B, 17, 2]
  const float scale = static_cast<float>(c10::Half(1.0f / static_cast<float>(height)));
  const at::Tensor y = (at::floor_divide(cell, width).to(at::kFloat) + offset.select(2, 0)) * scale;
  const at::Tensor x = ((cell % width).to(at::kFloat) + offset.select(2, 1)) * scale;
  const at::Tensor score = heat.gather(1, cell.unsqueeze(1)).squeeze(1);
  return at::stack({y, x, score}, 2);  // [B, 17, 3], as the graph's own output
}

namespace {

class SinglePose final : public Estimator {
 public:
  SinglePose(const EstimatorOptions& options, std::unique_ptr<graph::Graph> graph, int size)
      : options_(options), graph_(std::move(graph)), size_(size), uploader_(torch_device(options.device)) {}

  core::Result<std::vector<Person>> estimate(const Image& image) override {
    auto batch = estimate_batch(std::span<const Image>(&image, 1));
    if (!batch) return batch.error();
    return std::move(batch->front());
  }

  core::Result<std::vector<std::vector<Person>>> estimate_batch(std::span<const Image> images) override {
    return guard_torch(options_.model, [&]() -> core::Result<std::vector<std::vector<Person>>> {
      if (images.empty()) return std::vector<std::vector<Person>>{};
      std::vector<at::Tensor> crops;
      std::vector<Roi> rois;
      uploader_.begin_batch();
      for (const Image& image : images) {
        auto frame = uploader_.upload(image);
        if (!frame) return frame.error();
        rois.push_back(letterbox_roi(image.width, image.height));
        crops.push_back(movenet_input(*frame, rois.back(), size_, size_));
      }
      at::Tensor input = (crops.size() == 1 ? crops.front() : at::cat(crops, 0)).to(at::kFloat);
      const int64_t padded = padded_batch(static_cast<int64_t>(images.size()));
      if (padded > input.size(0)) {
        input = at::cat({input, at::zeros({padded - input.size(0), size_, size_, 3}, input.options())}, 0);
      }
      auto heads = graph_->run(std::span<const at::Tensor>(&input, 1));
      if (!heads) return heads.error();
      const at::Tensor keypoints =
          decode_movenet_heads((*heads)[0], (*heads)[1], (*heads)[2], (*heads)[3]).to(at::kCPU).contiguous();
      std::vector<std::vector<Person>> results(images.size());
      for (size_t i = 0; i < images.size(); ++i) {
        Person person = decode_keypoints(keypoints[static_cast<int64_t>(i)].data_ptr<float>(), rois[i], options_.model);
        if (person.score >= options_.min_person_score) results[i].push_back(std::move(person));
      }
      return results;
    });
  }
  void reset() override {}
  const std::string& model() const override { return options_.model; }

  // The whole path, not only the network: upload buffers, the crop's matrix product and the decoding also set
  // themselves up on first use. Frames of 640x360 stand in for the stream's (their size changes only buffer sizes).
  core::Result<void> warm_up(int max_batch) override {
    const std::vector<uint8_t> black(640 * 360 * 3, 0);
    for (int64_t batch = 1; batch <= padded_batch(std::max(max_batch, 1)); batch *= 2) {
      if (padded_batch(batch) != batch) continue;
      const std::vector<Image> images(static_cast<size_t>(batch),
                                      Image{black.data(), 640, 360, 640 * 3, PixelFormat::kBgr});
      auto people = estimate_batch(images);
      if (!people) return people.error();
    }
    return {};
  }

 private:
  // On CUDA a batch is padded to the next power of two: every new input shape makes cuDNN build its convolution
  // plans (seconds for a whole network), so a stream count that varies must not mean a new shape per frame. On the
  // CPU there is nothing to build and padding would only cost.
  int64_t padded_batch(int64_t batch) const {
    if (options_.device != Device::kCuda) return batch;
    int64_t padded = 1;
    while (padded < batch) padded *= 2;
    return padded;
  }

  EstimatorOptions options_;
  std::unique_ptr<graph::Graph> graph_;
  int size_;
  FrameUploader uploader_;
};

// MultiPose takes any multiple of 32: the longer side becomes kLongSide and the shorter keeps the aspect ratio,
// rounded up, so wide frames are not squeezed into a square of padding.
constexpr int kLongSide = 256;

class MultiPose final : public Estimator {
 public:
  MultiPose(const EstimatorOptions& options, std::unique_ptr<graph::Graph> graph)
      : options_(options), graph_(std::move(graph)), uploader_(torch_device(options.device)) {}

  core::Result<std::vector<Person>> estimate(const Image& image) override {
    return guard_torch(options_.model, [&]() -> core::Result<std::vector<Person>> {
      uploader_.begin_batch();
      auto frame = uploader_.upload(image);
      if (!frame) return frame.error();
      const bool wide = image.width >= image.height;
      const float long_side = static_cast<float>(std::max(image.width, image.height));
      const float short_ratio = static_cast<float>(std::min(image.width, image.height)) / long_side;
      const int short_side = std::max(32, static_cast<int>(std::ceil(short_ratio * kLongSide / 32.0f)) * 32);
      const int width = wide ? kLongSide : short_side, height = wide ? short_side : kLongSide;
      const float scale = long_side / kLongSide;  // source pixels per input pixel
      const Roi roi{static_cast<float>(image.width) / 2, static_cast<float>(image.height) / 2,
                    static_cast<float>(width) * scale, static_cast<float>(height) * scale, 0.0f};
      const at::Tensor input = movenet_input(*frame, roi, width, height);
      auto outputs = graph_->run(std::span<const at::Tensor>(&input, 1));
      if (!outputs) return outputs.error();
      const at::Tensor people = outputs->front().to(at::kCPU, at::kFloat).contiguous();  // [1, 6, 56]
      const float* values = people.data_ptr<float>();
      std::vector<Person> found;
      for (int64_t i = 0; i < people.size(1); ++i) {
        const float* row = values + i * 56;
        if (row[55] < options_.min_person_score) continue;
        Person person = decode_keypoints(row, roi, options_.model);
        person.score = row[55];
        const auto [x0, y0] = to_source(roi, row[52], row[51]);
        const auto [x1, y1] = to_source(roi, row[54], row[53]);
        person.box = {x0, y0, x1 - x0, y1 - y0};
        found.push_back(std::move(person));
      }
      std::stable_sort(found.begin(), found.end(), [](const Person& a, const Person& b) { return a.score > b.score; });
      if (found.size() > static_cast<size_t>(std::max(0, options_.max_people))) {
        found.resize(static_cast<size_t>(std::max(0, options_.max_people)));
      }
      return found;
    });
  }
  void reset() override {}
  const std::string& model() const override { return options_.model; }

 private:
  EstimatorOptions options_;
  std::unique_ptr<graph::Graph> graph_;
  FrameUploader uploader_;
};

}  // namespace

core::Result<std::unique_ptr<Estimator>> create_movenet(const EstimatorOptions& options) {
  // Cut before the graph's batch-1 pre- and post-processing (see models::BatchableCut); decode_movenet_heads does
  // the post-processing for a whole batch.
  const models::BatchableCut& cut = *models::find_model(options.model)->cut;
  auto graph = load_graph(options, options.model,
                          {{std::string(cut.input)}, std::vector<std::string>(cut.outputs.begin(), cut.outputs.end())});
  if (!graph) return graph.error();
  const int size = models::find_model(options.model)->input_size;
  return std::unique_ptr<Estimator>(new SinglePose(options, std::move(*graph), size));
}

core::Result<std::unique_ptr<Estimator>> create_movenet_multipose(const EstimatorOptions& options) {
  auto graph = load_graph(options, options.model);
  if (!graph) return graph.error();
  return std::unique_ptr<Estimator>(new MultiPose(options, std::move(*graph)));
}

}  // namespace pose::engine
