// The real pose binary on real COCO photos and on bad input, as a user runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;
};

CliRun pose(const std::string& args) {
  CliRun run;
  FILE* pipe = popen((std::string(WB_POSE) + " " + args + " 2>&1").c_str(), "r");
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) run.out += buffer;
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

const std::string kCoco = std::string(WB_SHARED_DIR) + "/testdata/coco/";
const std::string kTmp = ::testing::TempDir();

TEST(PoseCli, DetectThenEvalGivesAveragePrecision) {
  const std::string out = kTmp + "pose_cli_dt.json";
  CliRun run = pose("detect " + kCoco + "images/000000067180.jpg " + kCoco + "images/000000009483.jpg --model " +
                    "movenet-thunder --gt " + kCoco + "person_keypoints.json --json " + out);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::ifstream file(out);
  const auto results = nlohmann::json::parse(file);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0]["image_id"], 67180);
  EXPECT_EQ(results[0]["category_id"], 1);
  EXPECT_EQ(results[0]["keypoints"].size(), 51u);

  run = pose("eval --gt " + kCoco + "person_keypoints.json --dt " + out);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_NE(run.out.find("Average Precision  (AP)      @[ OKS=0.50:0.95 | area=   all | maxDets=20 ] = "),
            std::string::npos);
}

TEST(PoseCli, ImageIdsComeFromCocoFileNamesWithoutGt) {
  const std::string out = kTmp + "pose_cli_ids.json";
  const CliRun run = pose("detect " + kCoco + "images/000000067180.jpg --json " + out);
  ASSERT_EQ(run.exit_code, 0) << run.out;
  std::ifstream file(out);
  EXPECT_EQ(nlohmann::json::parse(file)[0]["image_id"], 67180);
}

TEST(PoseCli, NonImageAndMissingFilesAreReportedAndTheRestDone) {
  const std::string junk = kTmp + "000000000042.jpg";
  std::ofstream(junk) << "this is not a JPEG";
  const std::string out = kTmp + "pose_cli_bad.json";
  const CliRun run =
      pose("detect " + junk + " " + kTmp + "000000000043.jpg " + kCoco + "images/000000067180.jpg" + " --json " + out);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.out.find("000000000042.jpg: not an image, or unreadable"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("000000000043.jpg: not an image, or unreadable"), std::string::npos) << run.out;
  std::ifstream file(out);
  EXPECT_EQ(nlohmann::json::parse(file).size(), 1u);
}

TEST(PoseCli, BadModelAndBadResultsAreUsageErrors) {
  CliRun run = pose("detect x.jpg --model posenet");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("one of 'movenet-lightning'"), std::string::npos) << run.out;

  const std::string bad = kTmp + "pose_cli_malformed.json";
  std::ofstream(bad) << "[{\"image_id\": 67180, \"score\": 1, \"keypoints\": [1]}]";
  run = pose("eval --gt " + kCoco + "person_keypoints.json --dt " + bad);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.out.find("keypoints must be an array of 51"), std::string::npos) << run.out;
}

}  // namespace
