// BlazePose (MediaPipe): a person detector (224 px, SSD anchors, box + 4 alignment keypoints per anchor) finds a
// rotated region of interest; the landmark model (lite, full or heavy; 256 px) returns 39 landmarks (33 body points
// plus 2 that define the next frame's region) with z, visibility and presence. When tracking, the next frame is
// cropped around the last landmarks and the detector runs only when the person is lost.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>

#include "pose/engine/estimators.h"
#include "pose/engine/frame.h"

namespace pose::engine {
namespace {

constexpr int kDetectorSize = 224;
constexpr int kLandmarkSize = 256;
constexpr int kLandmarkCount = 39;  // 33 body landmarks, then 2 for the region, then 4 unused
constexpr int kBodyLandmarks = 33;
constexpr float kDetectionThreshold = 0.5f;  // MediaPipe's min_score_thresh
constexpr float kNmsIou = 0.3f;              // MediaPipe's min_suppression_threshold
constexpr float kPoseFlagThreshold = 0.5f;   // below: nobody in the region, tracking is lost
constexpr float kRoiScale = 1.25f;           // MediaPipe's RectTransformation scale for pose regions

struct Anchor {
  float x, y;
};

// MediaPipe's SsdAnchorsCalculator for pose_detection: 5 layers, strides 8, 16, 32, 32, 32, anchor offset 0.5,
// fixed anchor size, two anchors per layer and location (aspect 1 and the interpolated scale); layers with the
// same stride share a grid. 28*28*2 + 14*14*2 + 7*7*6 = 2254 anchors.
std::vector<Anchor> pose_anchors() {
  constexpr std::array<int, 5> kStrides = {8, 16, 32, 32, 32};
  std::vector<Anchor> anchors;
  size_t layer = 0;
  while (layer < kStrides.size()) {
    size_t last = layer;
    while (last < kStrides.size() && kStrides[last] == kStrides[layer]) ++last;
    const int per_location = 2 * static_cast<int>(last - layer);
    const int grid = (kDetectorSize + kStrides[layer] - 1) / kStrides[layer];
    for (int y = 0; y < grid; ++y) {
      for (int x = 0; x < grid; ++x) {
        for (int a = 0; a < per_location; ++a) {
          anchors.push_back({(static_cast<float>(x) + 0.5f) / static_cast<float>(grid),
                             (static_cast<float>(y) + 0.5f) / static_cast<float>(grid)});
        }
      }
    }
    layer = last;
  }
  return anchors;
}

struct Detection {
  float x0, y0, x1, y1;  // box, source pixels
  float score;
  std::array<float, 8> keypoints;  // 4 (x, y) pairs, source pixels; 0 is the hip centre, 1 sets size and angle
};

float iou(const Detection& a, const Detection& b) {
  const float w = std::max(0.0f, std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
  const float h = std::max(0.0f, std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  const float overlap = w * h;
  const float total = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - overlap;
  return total > 0 ? overlap / total : 0.0f;
}

// MediaPipe's weighted non-maximum suppression: each kept detection is the score-weighted mean of the candidates
// overlapping the best one, which steadies the box more than plain NMS.
std::vector<Detection> weighted_nms(std::vector<Detection> candidates, size_t max_count) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  std::vector<bool> used(candidates.size(), false);
  for (size_t i = 0; i < candidates.size() && kept.size() < max_count; ++i) {
    if (used[i]) continue;
    Detection merged{};
    float weight = 0;
    for (size_t j = i; j < candidates.size(); ++j) {
      if (used[j] || (j != i && iou(candidates[i], candidates[j]) <= kNmsIou)) continue;
      used[j] = true;
      const Detection& c = candidates[j];
      const float w = c.score;
      merged.x0 += w * c.x0;
      merged.y0 += w * c.y0;
      merged.x1 += w * c.x1;
      merged.y1 += w * c.y1;
      for (size_t k = 0; k < merged.keypoints.size(); ++k) merged.keypoints[k] += w * c.keypoints[k];
      weight += w;
    }
    merged.x0 /= weight;
    merged.y0 /= weight;
    merged.x1 /= weight;
    merged.y1 /= weight;
    for (float& v : merged.keypoints) v /= weight;
    merged.score = candidates[i].score;
    kept.push_back(merged);
  }
  return kept;
}

// MediaPipe's AlignmentPointsRectsCalculator (target angle 90 degrees) and RectTransformation (scale 1.25,
// square): a square centred on `center`, twice the centre-to-`edge` distance, turned so `edge` is straight up.
Roi aligned_roi(float center_x, float center_y, float edge_x, float edge_y) {
  const float size = 2.0f * std::hypot(edge_x - center_x, edge_y - center_y) * kRoiScale;
  float rotation = std::numbers::pi_v<float> / 2 - std::atan2(-(edge_y - center_y), edge_x - center_x);
  rotation -= 2 * std::numbers::pi_v<float> *
              std::floor((rotation + std::numbers::pi_v<float>) / (2 * std::numbers::pi_v<float>));
  return {center_x, center_y, size, size, rotation};
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-std::clamp(x, -100.0f, 100.0f))); }

size_t output_index(const graph::Graph& graph, const std::string& name) {
  const auto& outputs = graph.outputs();
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].name == name) return i;
  return outputs.size();
}

// A region of interest in one frame of a batch.
struct Region {
  size_t frame;
  Roi roi;
};

class BlazePose final : public Estimator {
 public:
  BlazePose(const EstimatorOptions& options, std::unique_ptr<graph::Graph> detector,
            std::unique_ptr<graph::Graph> landmarks)
      : options_(options),
        detector_(std::move(detector)),
        landmarks_(std::move(landmarks)),
        uploader_(torch_device(options.device)),
        anchors_(pose_anchors()),
        landmarks_output_(output_index(*landmarks_, "ld_3d")),
        flag_output_(output_index(*landmarks_, "output_poseflag")) {}

  core::Result<std::vector<Person>> estimate(const Image& image) override {
    return guard_torch(options_.model, [&]() -> core::Result<std::vector<Person>> {
      uploader_.begin_batch();
      auto frame = uploader_.upload(image);
      if (!frame) return frame.error();
      const std::vector<at::Tensor> frames = {*frame};
      std::vector<Roi> next;
      // The region tracked from the last frame first; the detector when that finds nobody (or nothing is tracked).
      if (!tracked_.empty()) {
        std::vector<Region> regions;
        for (const auto& roi : tracked_) regions.push_back({0, roi});
        auto people = landmark(frames, regions, &next);
        tracked_.clear();
        if (!people) return people.error();
        if (!people->front().empty()) {
          keep_tracking(next);
          return std::move(people->front());
        }
      }
      auto regions = detect(frames, std::span<const Image>(&image, 1));
      if (!regions) return regions.error();
      if (regions->empty()) return std::vector<Person>{};
      auto people = landmark(frames, *regions, &next);
      if (!people) return people.error();
      keep_tracking(next);
      return std::move(people->front());
    });
  }

  // Independent frames: one detector call for all of them, then one landmark call for every region found.
  core::Result<std::vector<std::vector<Person>>> estimate_batch(std::span<const Image> images) override {
    return guard_torch(options_.model, [&]() -> core::Result<std::vector<std::vector<Person>>> {
      if (images.empty()) return std::vector<std::vector<Person>>{};
      uploader_.begin_batch();
      std::vector<at::Tensor> frames;
      for (const Image& image : images) {
        auto frame = uploader_.upload(image);
        if (!frame) return frame.error();
        frames.push_back(*frame);
      }
      auto regions = detect(frames, images);
      if (!regions) return regions.error();
      if (regions->empty()) return std::vector<std::vector<Person>>(images.size());
      std::vector<Roi> unused;
      return landmark(frames, *regions, &unused);
    });
  }

  void reset() override { tracked_.clear(); }
  const std::string& model() const override { return options_.model; }

 private:
  // Tracking follows one person, as MediaPipe's pose pipeline; several people are re-detected every frame.
  void keep_tracking(const std::vector<Roi>& next) {
    tracked_ = options_.track && options_.max_people == 1 ? next : std::vector<Roi>{};
  }

  core::Result<std::vector<Region>> detect(const std::vector<at::Tensor>& frames, std::span<const Image> images) {
    std::vector<at::Tensor> inputs;
    std::vector<Roi> letterboxes;
    for (size_t i = 0; i < frames.size(); ++i) {
      letterboxes.push_back(letterbox_roi(images[i].width, images[i].height));
      inputs.push_back(crop(frames[i], letterboxes.back(), kDetectorSize, kDetectorSize));
    }
    const at::Tensor input =
        ((inputs.size() == 1 ? inputs.front() : at::cat(inputs, 0)) / 127.5 - 1.0).permute({0, 2, 3, 1}).contiguous();
    auto outputs = detector_->run(std::span<const at::Tensor>(&input, 1));
    if (!outputs) return outputs.error();
    const auto per_frame = static_cast<int64_t>(anchors_.size());
    const at::Tensor raw = outputs->front().to(at::kCPU, at::kFloat).reshape({-1, 13}).contiguous();
    if (raw.size(0) != per_frame * static_cast<int64_t>(frames.size())) {
      return core::make_error(core::ErrorCode::kCorrupt, "blazepose-detector returned " + std::to_string(raw.size(0)) +
                                                             " anchors, expected " + std::to_string(per_frame) +
                                                             " per frame");
    }
    std::vector<Region> regions;
    for (size_t i = 0; i < frames.size(); ++i) {
      const float* values = raw.data_ptr<float>() + static_cast<int64_t>(i) * per_frame * 13;
      for (const Roi& roi : decode_detections(values, letterboxes[i])) regions.push_back({i, roi});
    }
    return regions;
  }

  // Column 0 is the score logit; then box centre, size, and 4 keypoints, in input pixels relative to the anchor.
  std::vector<Roi> decode_detections(const float* values, const Roi& letterbox) const {
    const float threshold_logit = std::log(kDetectionThreshold / (1 - kDetectionThreshold));
    std::vector<Detection> candidates;
    for (size_t a = 0; a < anchors_.size(); ++a) {
      const float* row = values + a * 13;
      if (row[0] < threshold_logit) continue;
      const auto point = [&](float dx, float dy) {
        return to_source(letterbox, dx / kDetectorSize + anchors_[a].x, dy / kDetectorSize + anchors_[a].y);
      };
      const auto [cx, cy] = point(row[1], row[2]);
      const float half_w = row[3] / kDetectorSize * letterbox.width / 2;
      const float half_h = row[4] / kDetectorSize * letterbox.height / 2;
      Detection detection{cx - half_w, cy - half_h, cx + half_w, cy + half_h, sigmoid(row[0]), {}};
      for (size_t k = 0; k < 4; ++k) {
        const auto [x, y] = point(row[5 + 2 * k], row[6 + 2 * k]);
        detection.keypoints[2 * k] = x;
        detection.keypoints[2 * k + 1] = y;
      }
      candidates.push_back(detection);
    }
    std::vector<Roi> rois;
    for (const auto& d : weighted_nms(std::move(candidates), static_cast<size_t>(std::max(1, options_.max_people)))) {
      rois.push_back(aligned_roi(d.keypoints[0], d.keypoints[1], d.keypoints[2], d.keypoints[3]));
    }
    return rois;
  }

  // One landmark call for every region; people per frame, and the region each person defines for the next frame.
  core::Result<std::vector<std::vector<Person>>> landmark(const std::vector<at::Tensor>& frames,
                                                          const std::vector<Region>& regions, std::vector<Roi>* next) {
    std::vector<at::Tensor> crops;
    for (const auto& region : regions)
      crops.push_back(crop(frames[region.frame], region.roi, kLandmarkSize, kLandmarkSize));
    const at::Tensor input =
        ((crops.size() == 1 ? crops.front() : at::cat(crops, 0)) / 255.0).permute({0, 2, 3, 1}).contiguous();
    auto outputs = landmarks_->run(std::span<const at::Tensor>(&input, 1));
    if (!outputs) return outputs.error();
    const at::Tensor points = (*outputs)[landmarks_output_].to(at::kCPU, at::kFloat).contiguous();  // [N, 195]
    const at::Tensor flags = (*outputs)[flag_output_].to(at::kCPU, at::kFloat).contiguous();        // [N, 1]
    std::vector<std::vector<Person>> people(frames.size());
    next->clear();
    for (size_t i = 0; i < regions.size(); ++i) {
      const float flag = flags.data_ptr<float>()[i];
      if (flag < kPoseFlagThreshold) continue;
      const float* values = points.data_ptr<float>() + static_cast<int64_t>(i) * kLandmarkCount * 5;
      const Roi& roi = regions[i].roi;
      std::vector<Landmark> all;
      for (int l = 0; l < kLandmarkCount; ++l) {
        const float* v = values + l * 5;
        const auto [x, y] = to_source(roi, v[0] / kLandmarkSize, v[1] / kLandmarkSize);
        all.push_back({x, y, v[2] / kLandmarkSize * roi.width, sigmoid(v[3]), sigmoid(v[4])});
      }
      Person person;
      person.model = options_.model;
      person.score = flag;
      person.landmarks.assign(all.begin(), all.begin() + kBodyLandmarks);
      for (size_t k = 0; k < kCocoKeypointCount; ++k) {
        const Landmark& l = all[static_cast<size_t>(kCocoFromBlazePose[k])];
        person.keypoints[k] = {l.x, l.y, l.visibility};
      }
      person.box = keypoint_box(person.keypoints, 0.0f);
      if (person.score >= options_.min_person_score) people[regions[i].frame].push_back(std::move(person));
      next->push_back(aligned_roi(all[33].x, all[33].y, all[34].x, all[34].y));
    }
    return people;
  }

  EstimatorOptions options_;
  std::unique_ptr<graph::Graph> detector_;
  std::unique_ptr<graph::Graph> landmarks_;
  FrameUploader uploader_;
  std::vector<Anchor> anchors_;
  size_t landmarks_output_;
  size_t flag_output_;
  std::vector<Roi> tracked_;
};

}  // namespace

core::Result<std::unique_ptr<Estimator>> create_blazepose(const EstimatorOptions& options) {
  auto detector = load_graph(options, "blazepose-detector");
  if (!detector) return detector.error();
  auto landmarks = load_graph(options, options.model);
  if (!landmarks) return landmarks.error();
  if (output_index(**landmarks, "ld_3d") == (*landmarks)->outputs().size() ||
      output_index(**landmarks, "output_poseflag") == (*landmarks)->outputs().size()) {
    return core::make_error(core::ErrorCode::kCorrupt, options.model +
                                                           ": the graph lacks the ld_3d or "
                                                           "output_poseflag output");
  }
  return std::unique_ptr<Estimator>(new BlazePose(options, std::move(*detector), std::move(*landmarks)));
}

}  // namespace pose::engine
