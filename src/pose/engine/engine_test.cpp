// The estimator on real COCO photos (../shared/testdata/coco), every model, and on bad input of each kind.
#include "pose/engine/engine.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "pose/eval/coco_eval.h"

namespace pose::engine {
namespace {

const std::string kCoco = std::string(WB_SHARED_DIR) + "/testdata/coco/";

struct Photo {
  cv::Mat bgr;
  eval::GtPerson truth;
};

// A photo with exactly one annotated person, and that person's ground truth.
Photo photo(const std::string& file_name) {
  std::ifstream file(kCoco + "person_keypoints.json");
  std::stringstream text;
  text << file.rdbuf();
  const auto truth = eval::parse_ground_truth(text.str(), "person_keypoints.json").value();
  Photo out;
  out.bgr = cv::imread(kCoco + "images/" + file_name, cv::IMREAD_COLOR);
  for (const auto& image : truth.images) {
    if (image.file_name != file_name) continue;
    for (const auto& person : truth.people)
      if (person.image_id == image.id) out.truth = person;
  }
  return out;
}

Image view(const cv::Mat& mat, PixelFormat format) {
  return {mat.data, mat.cols, mat.rows, static_cast<int>(mat.step), format};
}

double oks(const Person& person, const eval::GtPerson& truth) {
  eval::Keypoints keypoints{};
  for (size_t k = 0; k < kCocoKeypointCount; ++k) {
    keypoints[3 * k] = person.keypoints[k].x;
    keypoints[3 * k + 1] = person.keypoints[k].y;
  }
  return eval::object_keypoint_similarity(keypoints, truth);
}

class EveryModel : public ::testing::TestWithParam<std::string> {};

// A clearly visible standing person: every model must place the keypoints where COCO's annotators did.
TEST_P(EveryModel, FindsThePersonInARealPhoto) {
  const Photo p = photo("000000067180.jpg");
  ASSERT_FALSE(p.bgr.empty());
  EstimatorOptions options;
  options.model = GetParam();
  options.max_people = 1;
  auto estimator = Estimator::create(options);
  ASSERT_TRUE(estimator.ok()) << estimator.error().message;
  auto people = (*estimator)->estimate(view(p.bgr, PixelFormat::kBgr));
  ASSERT_TRUE(people.ok()) << people.error().message;
  ASSERT_FALSE(people->empty());
  const Person& best = people->front();
  EXPECT_EQ(best.model, GetParam());
  std::printf("%s: OKS %.3f against COCO ground truth\n", GetParam().c_str(), oks(best, p.truth));
  EXPECT_GT(oks(best, p.truth), 0.65) << GetParam();
  EXPECT_GT(best.score, 0.3f);
  EXPECT_GT(best.box.width, 50.0f);
  if (GetParam().rfind("blazepose", 0) == 0) {
    EXPECT_EQ(best.landmarks.size(), 33u);
  }

  // The same photo in gray and in RGB order gives the same person.
  cv::Mat gray, rgb;
  cv::cvtColor(p.bgr, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(p.bgr, rgb, cv::COLOR_BGR2RGB);
  (*estimator)->reset();
  auto from_gray = (*estimator)->estimate(view(gray, PixelFormat::kGray));
  ASSERT_TRUE(from_gray.ok());
  ASSERT_FALSE(from_gray->empty());
  EXPECT_GT(oks(from_gray->front(), p.truth), 0.6) << GetParam();
  (*estimator)->reset();
  auto from_rgb = (*estimator)->estimate(view(rgb, PixelFormat::kRgb));
  ASSERT_TRUE(from_rgb.ok());
  ASSERT_FALSE(from_rgb->empty());
  EXPECT_NEAR(from_rgb->front().keypoints[0].x, best.keypoints[0].x, 0.5);
}

std::string test_name(const ::testing::TestParamInfo<std::string>& param) {
  std::string name = param.param;
  for (char& c : name) c = c == '-' ? '_' : c;
  return name;
}
INSTANTIATE_TEST_SUITE_P(Models, EveryModel, ::testing::ValuesIn(estimator_models()), test_name);

TEST(Estimator, TrackingReusesTheLastRegion) {
  const Photo p = photo("000000067180.jpg");
  EstimatorOptions options;
  options.model = "blazepose-lite";
  options.max_people = 1;
  auto estimator = Estimator::create(options).value();
  const auto first = estimator->estimate(view(p.bgr, PixelFormat::kBgr)).value();
  const auto second = estimator->estimate(view(p.bgr, PixelFormat::kBgr)).value();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GT(oks(second.front(), p.truth), 0.75);
}

// Several independent frames in one call give what one call per frame gives, frame by frame.
TEST(Estimator, BatchesEqualSingleFrames) {
  const Photo p = photo("000000067180.jpg");
  const Photo q = photo("000000009483.jpg");
  const cv::Mat wall(480, 640, CV_8UC3, cv::Scalar(180, 200, 220));
  const std::vector<Image> frames = {view(p.bgr, PixelFormat::kBgr), view(wall, PixelFormat::kBgr),
                                     view(q.bgr, PixelFormat::kBgr)};
  for (const char* model : {"movenet-thunder", "blazepose-full"}) {
    EstimatorOptions options;
    options.model = model;
    options.max_people = 1;
    options.min_person_score = 0.3f;
    auto estimator = Estimator::create(options).value();
    const auto batch = estimator->estimate_batch(frames);
    ASSERT_TRUE(batch.ok()) << batch.error().message;
    ASSERT_EQ(batch->size(), 3u);
    EXPECT_TRUE((*batch)[1].empty()) << model << " found someone on a blank wall";
    for (size_t i : {size_t{0}, size_t{2}}) {
      estimator->reset();
      const auto single = estimator->estimate(frames[i]).value();
      ASSERT_EQ(single.size(), 1u) << model;
      ASSERT_EQ((*batch)[i].size(), 1u) << model;
      for (size_t k = 0; k < kCocoKeypointCount; ++k) {
        EXPECT_NEAR((*batch)[i][0].keypoints[k].x, single[0].keypoints[k].x, 0.05) << model << " keypoint " << k;
        EXPECT_NEAR((*batch)[i][0].keypoints[k].y, single[0].keypoints[k].y, 0.05) << model << " keypoint " << k;
      }
    }
  }
}

TEST(Estimator, BadImagesAreErrorsNotCrashes) {
  auto estimator = Estimator::create({}).value();
  const uint8_t pixel[3] = {10, 20, 30};
  EXPECT_FALSE(estimator->estimate({nullptr, 10, 10, 0, PixelFormat::kBgr}).ok());
  EXPECT_FALSE(estimator->estimate({pixel, 0, 0, 0, PixelFormat::kBgr}).ok());
  EXPECT_FALSE(estimator->estimate({pixel, 20000, 1, 0, PixelFormat::kBgr}).ok());
  const auto short_stride = estimator->estimate({pixel, 4, 1, 5, PixelFormat::kBgr});
  ASSERT_FALSE(short_stride.ok());
  EXPECT_NE(short_stride.error().message.find("stride"), std::string::npos);
}

TEST(Estimator, TinyAndHugeImagesWork) {
  auto estimator = Estimator::create({}).value();
  const uint8_t pixel[3] = {10, 20, 30};
  EXPECT_TRUE(estimator->estimate({pixel, 1, 1, 0, PixelFormat::kBgr}).ok());
  const cv::Mat black(4320, 7680, CV_8UC3, cv::Scalar(0, 0, 0));  // 8K UHD
  const auto people = estimator->estimate(view(black, PixelFormat::kBgr));
  ASSERT_TRUE(people.ok()) << people.error().message;
  for (const auto& person : *people) EXPECT_LT(person.score, 0.3f) << "a person in a black frame";
}

TEST(Estimator, NobodyInTheFrameGivesNoPeople) {
  const cv::Mat wall(480, 640, CV_8UC3, cv::Scalar(180, 200, 220));
  for (const char* model : {"movenet-multipose", "blazepose-full"}) {
    EstimatorOptions options;
    options.model = model;
    auto people = Estimator::create(options).value()->estimate(view(wall, PixelFormat::kBgr));
    ASSERT_TRUE(people.ok());
    EXPECT_TRUE(people->empty()) << model;
  }
}

TEST(Estimator, CreationErrorsAreClear) {
  EstimatorOptions options;
  options.model = "posenet";
  auto unknown = Estimator::create(options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("known: movenet-lightning"), std::string::npos);

  options.model = "movenet-lightning";
  options.precision = Precision::kFloat16;
  EXPECT_EQ(Estimator::create(options).error().code, core::ErrorCode::kUnsupported);

  options.precision = Precision::kFloat32;
  options.model_dir = ::testing::TempDir() + "no-models-here";
  auto missing = Estimator::create(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("is missing"), std::string::npos);
}

}  // namespace
}  // namespace pose::engine
