#include "pose/eval/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

namespace pose::eval {
namespace {

// COCO's per-keypoint standard deviations (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
constexpr std::array<double, kCocoKeypoints> kSigmas = {.026, .025, .025, .035, .035, .079, .079, .072, .072,
                                                        .062, .062, .107, .107, .087, .087, .089, .089};
constexpr size_t kMaxDetections = 20;
constexpr size_t kThresholds = 10;  // OKS 0.50, 0.55, ..., 0.95
constexpr size_t kRecallPoints = 101;
// numpy's np.spacing(1), which COCOeval adds to denominators.
constexpr double kEpsilon = std::numeric_limits<double>::epsilon();

struct AreaRange {
  double min, max;
};
// all, medium, large, as COCOeval's keypoint parameters.
constexpr std::array<AreaRange, 3> kAreaRanges = {{{0.0, 1e10}, {32.0 * 32.0, 96.0 * 96.0}, {96.0 * 96.0, 1e10}}};

// The thresholds and recall points exactly as np.linspace computes them, so ties break as in pycocotools.
double oks_threshold(size_t t) { return t + 1 == kThresholds ? 0.95 : 0.5 + static_cast<double>(t) * (0.45 / 9.0); }
double recall_point(size_t r) { return r + 1 == kRecallPoints ? 1.0 : static_cast<double>(r) * 0.01; }

// A detection's area is its keypoints' bounding box, as COCO.loadRes computes it.
double detection_area(const Keypoints& keypoints) {
  double x0 = std::numeric_limits<double>::max(), y0 = x0;
  double x1 = std::numeric_limits<double>::lowest(), y1 = x1;
  for (size_t k = 0; k < kCocoKeypoints; ++k) {
    x0 = std::min(x0, keypoints[3 * k]);
    x1 = std::max(x1, keypoints[3 * k]);
    y0 = std::min(y0, keypoints[3 * k + 1]);
    y1 = std::max(y1, keypoints[3 * k + 1]);
  }
  return (x1 - x0) * (y1 - y0);
}

// Per-image matching result for one area range (COCOeval.evaluateImg).
struct ImageEval {
  std::vector<double> scores;                          // detections, by descending score
  std::array<std::vector<bool>, kThresholds> matched;  // [threshold][detection]
  std::array<std::vector<bool>, kThresholds> ignored;  // [threshold][detection]
  size_t counted_people = 0;                           // ground truth not ignored
};

std::vector<size_t> by_descending_score(const std::vector<const Detection*>& detections) {
  std::vector<size_t> order(detections.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return detections[a]->score > detections[b]->score; });
  return order;
}

ImageEval evaluate_image(const std::vector<const GtPerson*>& people, const std::vector<const Detection*>& detections,
                         const std::vector<std::vector<double>>& oks, const AreaRange& range) {
  ImageEval result;
  // Ground truth: ignored when crowd, without keypoints, or outside the area range; counted people first.
  std::vector<bool> person_ignored(people.size());
  for (size_t g = 0; g < people.size(); ++g) {
    const GtPerson& person = *people[g];
    person_ignored[g] =
        person.iscrowd || person.num_keypoints == 0 || person.area < range.min || person.area > range.max;
  }
  std::vector<size_t> person_order(people.size());
  std::iota(person_order.begin(), person_order.end(), 0);
  std::stable_sort(person_order.begin(), person_order.end(),
                   [&](size_t a, size_t b) { return !person_ignored[a] && person_ignored[b]; });
  for (size_t g = 0; g < people.size(); ++g) result.counted_people += person_ignored[g] ? 0u : 1u;

  std::vector<size_t> detection_order = by_descending_score(detections);
  if (detection_order.size() > kMaxDetections) detection_order.resize(kMaxDetections);
  for (size_t d : detection_order) result.scores.push_back(detections[d]->score);

  for (size_t t = 0; t < kThresholds; ++t) {
    std::vector<bool> person_taken(people.size(), false);
    auto& matched = result.matched[t];
    auto& ignored = result.ignored[t];
    matched.assign(detection_order.size(), false);
    ignored.assign(detection_order.size(), false);
    for (size_t i = 0; i < detection_order.size(); ++i) {
      const size_t d = detection_order[i];
      double best = std::min(oks_threshold(t), 1 - 1e-10);
      int match = -1;
      for (const size_t g : person_order) {
        if (person_taken[g] && !people[g]->iscrowd) continue;
        // Once matched to a counted person, stop at the ignored ones (they are sorted last).
        if (match > -1 && !person_ignored[static_cast<size_t>(match)] && person_ignored[g]) break;
        if (oks[d][g] < best) continue;
        best = oks[d][g];
        match = static_cast<int>(g);
      }
      if (match == -1) {
        const double area = detection_area(detections[d]->keypoints);
        ignored[i] = area < range.min || area > range.max;
        continue;
      }
      const auto g = static_cast<size_t>(match);
      ignored[i] = person_ignored[g];
      matched[i] = true;
      person_taken[g] = true;
    }
  }
  return result;
}

struct Accumulated {
  std::array<std::array<double, kRecallPoints>, kThresholds> precision{};
  std::array<double, kThresholds> recall{};
  bool valid = false;  // false when no counted ground truth exists (COCOeval's -1)
};

Accumulated accumulate(const std::vector<ImageEval>& images) {
  Accumulated out;
  size_t counted_people = 0;
  std::vector<double> scores;
  std::array<std::vector<bool>, kThresholds> matched, ignored;
  for (const auto& image : images) {
    counted_people += image.counted_people;
    scores.insert(scores.end(), image.scores.begin(), image.scores.end());
    for (size_t t = 0; t < kThresholds; ++t) {
      matched[t].insert(matched[t].end(), image.matched[t].begin(), image.matched[t].end());
      ignored[t].insert(ignored[t].end(), image.ignored[t].begin(), image.ignored[t].end());
    }
  }
  if (counted_people == 0) return out;
  out.valid = true;
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });

  for (size_t t = 0; t < kThresholds; ++t) {
    std::vector<double> recall, precision;
    double tp = 0, fp = 0;
    for (size_t i : order) {
      if (!ignored[t][i]) (matched[t][i] ? tp : fp) += 1;
      recall.push_back(tp / static_cast<double>(counted_people));
      precision.push_back(tp / (fp + tp + kEpsilon));
    }
    out.recall[t] = recall.empty() ? 0.0 : recall.back();
    // Precision envelope: the best precision at any recall at least as high.
    for (size_t i = precision.size(); i-- > 1;) precision[i - 1] = std::max(precision[i - 1], precision[i]);
    for (size_t r = 0; r < kRecallPoints; ++r) {
      const auto at =
          static_cast<size_t>(std::lower_bound(recall.begin(), recall.end(), recall_point(r)) - recall.begin());
      out.precision[t][r] = at < precision.size() ? precision[at] : 0.0;
    }
  }
  return out;
}

double mean_precision(const Accumulated& a, int only_threshold) {
  if (!a.valid) return -1.0;
  double sum = 0;
  size_t n = 0;
  for (size_t t = 0; t < kThresholds; ++t) {
    if (only_threshold >= 0 && t != static_cast<size_t>(only_threshold)) continue;
    for (double p : a.precision[t]) {
      sum += p;
      ++n;
    }
  }
  return sum / static_cast<double>(n);
}

double mean_recall(const Accumulated& a, int only_threshold) {
  if (!a.valid) return -1.0;
  double sum = 0;
  size_t n = 0;
  for (size_t t = 0; t < kThresholds; ++t) {
    if (only_threshold >= 0 && t != static_cast<size_t>(only_threshold)) continue;
    sum += a.recall[t];
    ++n;
  }
  return sum / static_cast<double>(n);
}

core::Error bad_json(std::string_view source, const std::string& what) {
  return core::make_error(core::ErrorCode::kInvalidArgument, std::string(source) + ": " + what);
}

core::Result<Keypoints> read_keypoints(const nlohmann::json& value, std::string_view source, const std::string& where) {
  if (!value.is_array() || value.size() != 3 * kCocoKeypoints) {
    return bad_json(source, where + ": keypoints must be an array of 51 numbers (17 x [x, y, v])");
  }
  Keypoints keypoints{};
  for (size_t i = 0; i < keypoints.size(); ++i) {
    if (!value[i].is_number())
      return bad_json(source, where + ": keypoint value " + std::to_string(i) + " is not a number");
    keypoints[i] = value[i].get<double>();
  }
  return keypoints;
}

}  // namespace

double object_keypoint_similarity(const Keypoints& detection, const GtPerson& truth) {
  size_t labelled = 0;
  for (size_t k = 0; k < kCocoKeypoints; ++k) labelled += truth.keypoints[3 * k + 2] > 0 ? 1u : 0u;
  // Without labelled keypoints COCOeval measures distance to a box twice the person's size around it.
  const double x0 = truth.bbox[0] - truth.bbox[2], x1 = truth.bbox[0] + truth.bbox[2] * 2;
  const double y0 = truth.bbox[1] - truth.bbox[3], y1 = truth.bbox[1] + truth.bbox[3] * 2;
  double sum = 0;
  size_t count = 0;
  for (size_t k = 0; k < kCocoKeypoints; ++k) {
    const double xd = detection[3 * k], yd = detection[3 * k + 1];
    double dx = 0, dy = 0;
    if (labelled > 0) {
      if (truth.keypoints[3 * k + 2] <= 0) continue;
      dx = xd - truth.keypoints[3 * k];
      dy = yd - truth.keypoints[3 * k + 1];
    } else {
      dx = std::max(0.0, x0 - xd) + std::max(0.0, xd - x1);
      dy = std::max(0.0, y0 - yd) + std::max(0.0, yd - y1);
    }
    const double variance = (2 * kSigmas[k]) * (2 * kSigmas[k]);
    sum += std::exp(-((dx * dx + dy * dy) / variance / (truth.area + kEpsilon) / 2));
    ++count;
  }
  return count == 0 ? 0.0 : sum / static_cast<double>(count);
}

core::Result<GroundTruth> parse_ground_truth(std::string_view json_text, std::string_view source_name) {
  const auto json = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return bad_json(source_name, "not valid JSON (COCO ground truth)");
  if (!json.contains("images") || !json["images"].is_array() || !json.contains("annotations") ||
      !json["annotations"].is_array()) {
    return bad_json(source_name, "COCO ground truth needs \"images\" and \"annotations\" arrays");
  }
  GroundTruth truth;
  for (const auto& image : json["images"]) {
    if (!image.contains("id") || !image["id"].is_number_integer())
      return bad_json(source_name, "an image has no integer id");
    truth.images.push_back(
        {image["id"].get<int64_t>(), image.value("file_name", ""), image.value("width", 0), image.value("height", 0)});
  }
  for (size_t i = 0; i < json["annotations"].size(); ++i) {
    const auto& annotation = json["annotations"][i];
    if (annotation.value("category_id", 1) != 1) continue;
    const std::string where = "annotation " + std::to_string(i);
    if (!annotation.contains("keypoints")) return bad_json(source_name, where + " has no keypoints");
    auto keypoints = read_keypoints(annotation["keypoints"], source_name, where);
    if (!keypoints) return keypoints.error();
    GtPerson person;
    person.id = annotation.value("id", static_cast<int64_t>(i) + 1);
    person.image_id = annotation.value("image_id", int64_t{-1});
    person.keypoints = *keypoints;
    person.num_keypoints = annotation.value("num_keypoints", 0);
    person.area = annotation.value("area", 0.0);
    person.iscrowd = annotation.value("iscrowd", 0) != 0;
    if (annotation.contains("bbox") && annotation["bbox"].is_array() && annotation["bbox"].size() == 4) {
      for (size_t b = 0; b < 4; ++b) person.bbox[b] = annotation["bbox"][b].get<double>();
    }
    truth.people.push_back(person);
  }
  return truth;
}

core::Result<std::vector<Detection>> parse_detections(std::string_view json_text, std::string_view source_name) {
  const auto json = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_array()) {
    return bad_json(source_name, "not a JSON array of COCO results");
  }
  std::vector<Detection> detections;
  for (size_t i = 0; i < json.size(); ++i) {
    const auto& item = json[i];
    const std::string where = "result " + std::to_string(i);
    if (!item.is_object() || !item.contains("image_id") || !item["image_id"].is_number_integer() ||
        !item.contains("score") || !item["score"].is_number() || !item.contains("keypoints")) {
      return bad_json(source_name, where + " needs image_id (integer), score and keypoints");
    }
    if (item.value("category_id", 1) != 1) return bad_json(source_name, where + ": category_id must be 1 (person)");
    auto keypoints = read_keypoints(item["keypoints"], source_name, where);
    if (!keypoints) return keypoints.error();
    detections.push_back({item["image_id"].get<int64_t>(), *keypoints, item["score"].get<double>()});
  }
  return detections;
}

std::string detections_json(const std::vector<Detection>& detections) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& detection : detections) {
    nlohmann::json keypoints = nlohmann::json::array();
    for (double value : detection.keypoints) keypoints.push_back(std::round(value * 100.0) / 100.0);
    out.push_back({{"image_id", detection.image_id},
                   {"category_id", 1},
                   {"keypoints", keypoints},
                   {"score", std::round(detection.score * 1e4) / 1e4}});
  }
  return out.dump();
}

core::Result<Summary> evaluate(const GroundTruth& truth, const std::vector<Detection>& detections) {
  std::map<int64_t, std::pair<std::vector<const GtPerson*>, std::vector<const Detection*>>> by_image;
  for (const auto& image : truth.images) by_image[image.id];
  for (const auto& person : truth.people) {
    const auto it = by_image.find(person.image_id);
    if (it == by_image.end()) {
      return core::make_error(core::ErrorCode::kInvalidArgument, "ground-truth person " + std::to_string(person.id) +
                                                                     " refers to unknown image " +
                                                                     std::to_string(person.image_id));
    }
    it->second.first.push_back(&person);
  }
  for (const auto& detection : detections) {
    const auto it = by_image.find(detection.image_id);
    if (it == by_image.end()) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "a detection refers to image " + std::to_string(detection.image_id) +
                                  ", which the ground truth does not have (wrong --gt, or wrong image ids?)");
    }
    it->second.second.push_back(&detection);
  }

  Summary summary;
  summary.images = truth.images.size();
  summary.detections = detections.size();
  for (const auto& person : truth.people) summary.people += (!person.iscrowd && person.num_keypoints > 0) ? 1u : 0u;

  std::array<std::vector<ImageEval>, kAreaRanges.size()> evals;
  for (const auto& [image_id, entry] : by_image) {
    const auto& [people, image_detections] = entry;
    if (people.empty() && image_detections.empty()) continue;
    // OKS for the top-scoring detections against every person, computed once for all area ranges.
    std::vector<std::vector<double>> oks(image_detections.size(), std::vector<double>(people.size(), 0.0));
    std::vector<size_t> order = by_descending_score(image_detections);
    if (order.size() > kMaxDetections) order.resize(kMaxDetections);
    for (size_t d : order) {
      for (size_t g = 0; g < people.size(); ++g) {
        oks[d][g] = object_keypoint_similarity(image_detections[d]->keypoints, *people[g]);
      }
    }
    for (size_t a = 0; a < kAreaRanges.size(); ++a) {
      evals[a].push_back(evaluate_image(people, image_detections, oks, kAreaRanges[a]));
    }
  }
  const Accumulated all = accumulate(evals[0]);
  const Accumulated medium = accumulate(evals[1]);
  const Accumulated large = accumulate(evals[2]);
  summary.ap = mean_precision(all, -1);
  summary.ap50 = mean_precision(all, 0);
  summary.ap75 = mean_precision(all, 5);
  summary.ap_medium = mean_precision(medium, -1);
  summary.ap_large = mean_precision(large, -1);
  summary.ar = mean_recall(all, -1);
  summary.ar50 = mean_recall(all, 0);
  summary.ar75 = mean_recall(all, 5);
  summary.ar_medium = mean_recall(medium, -1);
  summary.ar_large = mean_recall(large, -1);
  return summary;
}

}  // namespace pose::eval
