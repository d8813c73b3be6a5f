#include "pose/eval/coco_eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace pose::eval {
namespace {

constexpr std::array<double, kCocoKeypoints> kSigmas = {.026, .025, .025, .035, .035, .079, .079, .072, .072,
                                                        .062, .062, .107, .107, .087, .087, .089, .089};

// A standing person with all 17 keypoints labelled, offset by (x, y); area 100 x 200.
GtPerson person(int64_t id, int64_t image_id, double x, double y, double area = 20000) {
  GtPerson p;
  p.id = id;
  p.image_id = image_id;
  for (size_t k = 0; k < kCocoKeypoints; ++k) {
    p.keypoints[3 * k] = x + 5.0 * static_cast<double>(k);
    p.keypoints[3 * k + 1] = y + 11.0 * static_cast<double>(k);
    p.keypoints[3 * k + 2] = 2;
  }
  p.num_keypoints = kCocoKeypoints;
  p.area = area;
  p.bbox = {x, y, 100, 200};
  return p;
}

Detection exact(const GtPerson& p, double score) { return {p.image_id, p.keypoints, score}; }

// Every keypoint moved along x by the distance that makes its similarity term equal `target`, so OKS = target.
Detection displaced(const GtPerson& p, double target, double score) {
  Detection d = exact(p, score);
  for (size_t k = 0; k < kCocoKeypoints; ++k) {
    const double variance = std::pow(2 * kSigmas[k], 2);
    d.keypoints[3 * k] += std::sqrt(-2.0 * std::log(target) * p.area * variance);
  }
  return d;
}

GroundTruth truth_with(std::vector<GtPerson> people, int images = 2) {
  GroundTruth truth;
  for (int i = 1; i <= images; ++i) truth.images.push_back({i, "img" + std::to_string(i) + ".jpg", 640, 480});
  truth.people = std::move(people);
  return truth;
}

TEST(CocoEval, PerfectDetectionsScoreOne) {
  const auto truth = truth_with({person(1, 1, 10, 10), person(2, 1, 300, 20), person(3, 2, 50, 40)});
  std::vector<Detection> detections;
  for (const auto& p : truth.people) detections.push_back(exact(p, 0.9));
  const auto summary = evaluate(truth, detections).value();
  EXPECT_DOUBLE_EQ(summary.ap, 1.0);
  EXPECT_DOUBLE_EQ(summary.ap50, 1.0);
  EXPECT_DOUBLE_EQ(summary.ar, 1.0);
  EXPECT_EQ(summary.people, 3u);
}

TEST(CocoEval, NoDetectionsScoreZero) {
  const auto summary = evaluate(truth_with({person(1, 1, 10, 10)}), {}).value();
  EXPECT_DOUBLE_EQ(summary.ap, 0.0);
  EXPECT_DOUBLE_EQ(summary.ar, 0.0);
}

TEST(CocoEval, OksIsComputedWithCocoSigmas) {
  const GtPerson p = person(1, 1, 10, 10);
  EXPECT_NEAR(object_keypoint_similarity(displaced(p, 0.82, 1).keypoints, p), 0.82, 1e-12);
  EXPECT_DOUBLE_EQ(object_keypoint_similarity(p.keypoints, p), 1.0);
}

// OKS 0.82 passes the thresholds 0.50 ... 0.80 (7 of 10) and fails 0.85, 0.90, 0.95.
TEST(CocoEval, PartialMatchCountsAtSevenOfTenThresholds) {
  const auto truth = truth_with({person(1, 1, 10, 10)});
  const auto summary = evaluate(truth, {displaced(truth.people[0], 0.82, 0.9)}).value();
  EXPECT_NEAR(summary.ap, 0.7, 1e-12);
  EXPECT_NEAR(summary.ar, 0.7, 1e-12);
  EXPECT_DOUBLE_EQ(summary.ap50, 1.0);
  EXPECT_DOUBLE_EQ(summary.ap75, 1.0);
}

// A false positive ranked above the true positive: precision 0.5 at every recall point.
TEST(CocoEval, HigherScoredFalsePositiveHalvesPrecision) {
  const auto truth = truth_with({person(1, 1, 10, 10)});
  const auto summary = evaluate(truth, {exact(person(9, 1, 400, 200), 0.95), exact(truth.people[0], 0.5)}).value();
  EXPECT_NEAR(summary.ap, 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(summary.ar, 1.0);
}

// A lower-scored false positive costs nothing: precision is interpolated from higher recall.
TEST(CocoEval, LowerScoredFalsePositiveCostsNothing) {
  const auto truth = truth_with({person(1, 1, 10, 10)});
  const auto summary = evaluate(truth, {exact(truth.people[0], 0.9), exact(person(9, 1, 400, 200), 0.1)}).value();
  EXPECT_DOUBLE_EQ(summary.ap, 1.0);
}

// Two people, one found: recall 0.5, precision 1 up to it, 0 beyond: AP = 51/101.
TEST(CocoEval, HalfRecall) {
  const auto truth = truth_with({person(1, 1, 10, 10), person(2, 2, 10, 10)});
  const auto summary = evaluate(truth, {exact(truth.people[0], 0.9)}).value();
  EXPECT_NEAR(summary.ap, 51.0 / 101.0, 1e-12);
  EXPECT_DOUBLE_EQ(summary.ar, 0.5);
}

TEST(CocoEval, CrowdAndKeypointlessPeopleAreIgnoredNotFalsePositives) {
  GtPerson crowd = person(2, 1, 300, 20);
  crowd.iscrowd = true;
  GtPerson unlabelled = person(3, 2, 300, 20);
  unlabelled.num_keypoints = 0;
  const auto truth = truth_with({person(1, 1, 10, 10), crowd, unlabelled});
  const auto summary =
      evaluate(truth, {exact(truth.people[0], 0.5), exact(crowd, 0.9), exact(unlabelled, 0.9)}).value();
  EXPECT_DOUBLE_EQ(summary.ap, 1.0);
  EXPECT_EQ(summary.people, 1u);
}

TEST(CocoEval, OnlyTwentyDetectionsPerImageCount) {
  const auto truth = truth_with({person(1, 1, 10, 10)});
  std::vector<Detection> detections;
  detections.reserve(21);
  for (int i = 0; i < 20; ++i) detections.push_back(exact(person(100 + i, 1, 1000 + 300.0 * i, 0), 0.9));
  detections.push_back(exact(truth.people[0], 0.1));  // 21st by score: dropped
  const auto summary = evaluate(truth, detections).value();
  EXPECT_DOUBLE_EQ(summary.ar, 0.0);
}

TEST(CocoEval, AreaRangesSplitMediumAndLarge) {
  const auto truth = truth_with({person(1, 1, 10, 10, 50.0 * 50.0)});
  const auto summary = evaluate(truth, {exact(truth.people[0], 0.9)}).value();
  EXPECT_DOUBLE_EQ(summary.ap_medium, 1.0);
  EXPECT_DOUBLE_EQ(summary.ap_large, -1.0);  // no large people: undefined, as COCOeval's -1
}

TEST(CocoEval, DetectionOnUnknownImageIsAnError) {
  const auto result = evaluate(truth_with({person(1, 1, 10, 10)}), {exact(person(1, 7, 10, 10), 0.9)});
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("image 7"), std::string::npos);
}

TEST(CocoEval, ResultsFormatRoundTrips) {
  const std::vector<Detection> detections = {exact(person(1, 3, 10.5, 20.25), 0.875)};
  const auto parsed = parse_detections(detections_json(detections), "results.json").value();
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].image_id, 3);
  EXPECT_DOUBLE_EQ(parsed[0].score, 0.875);
  EXPECT_DOUBLE_EQ(parsed[0].keypoints[0], 10.5);
}

TEST(CocoEval, MalformedInputsNameTheProblem) {
  EXPECT_NE(parse_detections("{", "dt.json").error().message.find("dt.json: not a JSON array"), std::string::npos);
  EXPECT_NE(parse_detections(R"([{"image_id": 1, "score": 1, "keypoints": [1, 2]}])", "dt.json")
                .error()
                .message.find("result 0: keypoints must be an array of 51"),
            std::string::npos);
  EXPECT_NE(parse_detections(R"([{"image_id": 1, "keypoints": []}])", "dt.json").error().message.find("score"),
            std::string::npos);
  EXPECT_NE(parse_ground_truth(R"({"images": []})", "gt.json").error().message.find("annotations"), std::string::npos);
}

// Real COCO annotations evaluated against themselves: a sanity check of parsing and matching on real data.
TEST(CocoEval, RealGroundTruthAgainstItselfScoresOne) {
  std::ifstream file(std::string(WB_SHARED_DIR) + "/testdata/coco/person_keypoints.json");
  ASSERT_TRUE(file) << "../shared/testdata/coco/person_keypoints.json is missing";
  std::stringstream text;
  text << file.rdbuf();
  const auto truth = parse_ground_truth(text.str(), "person_keypoints.json").value();
  std::vector<Detection> detections;
  for (const auto& p : truth.people) {
    if (!p.iscrowd && p.num_keypoints > 0) detections.push_back(exact(p, 1.0));
  }
  const auto summary = evaluate(truth, detections).value();
  EXPECT_GT(summary.people, 10u);
  EXPECT_DOUBLE_EQ(summary.ap, 1.0);
  EXPECT_DOUBLE_EQ(summary.ar, 1.0);
}

}  // namespace
}  // namespace pose::eval
