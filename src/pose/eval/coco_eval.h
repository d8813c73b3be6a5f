#pragma once
// COCO keypoint evaluation, the official protocol (as pycocotools' COCOeval with iouType "keypoints"): object
// keypoint similarity (OKS) with the COCO per-keypoint sigmas, greedy matching by score at ten OKS thresholds
// 0.50:0.05:0.95, 101-point interpolated precision, at most 20 detections per image, crowd and keypoint-less
// people ignored. Also reads COCO ground truth and writes/reads the COCO results format.
//
// Thread-safety: pure functions; safe from any thread.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pose::eval {

inline constexpr size_t kCocoKeypoints = 17;
using Keypoints = std::array<double, 3 * kCocoKeypoints>;  // x, y, v per keypoint (v: 0 absent, >0 labelled)

struct GtImage {
  int64_t id = 0;
  std::string file_name;
  int width = 0;
  int height = 0;
};

struct GtPerson {
  int64_t id = 0;
  int64_t image_id = 0;
  Keypoints keypoints{};
  int num_keypoints = 0;
  double area = 0.0;             // segment area, the OKS scale s^2
  std::array<double, 4> bbox{};  // x, y, width, height
  bool iscrowd = false;
};

struct GroundTruth {
  std::vector<GtImage> images;
  std::vector<GtPerson> people;  // category 1 (person) annotations only
};

struct Detection {
  int64_t image_id = 0;
  Keypoints keypoints{};  // v is the detector's per-keypoint confidence; it does not enter OKS
  double score = 0.0;
};

struct Summary {
  double ap = 0, ap50 = 0, ap75 = 0, ap_medium = 0, ap_large = 0;
  double ar = 0, ar50 = 0, ar75 = 0, ar_medium = 0, ar_large = 0;
  size_t images = 0;
  size_t people = 0;  // ground-truth people that count (not crowd, with keypoints)
  size_t detections = 0;
};

core::Result<GroundTruth> parse_ground_truth(std::string_view json_text, std::string_view source_name);
core::Result<std::vector<Detection>> parse_detections(std::string_view json_text, std::string_view source_name);
// The COCO results format: [{"image_id", "category_id": 1, "keypoints": [51 numbers], "score"}].
std::string detections_json(const std::vector<Detection>& detections);

// Fails when a detection names an image the ground truth does not have.
core::Result<Summary> evaluate(const GroundTruth& truth, const std::vector<Detection>& detections);

// OKS between one detection and one ground-truth person, as COCOeval.computeOks.
double object_keypoint_similarity(const Keypoints& detection, const GtPerson& truth);

}  // namespace pose::eval
