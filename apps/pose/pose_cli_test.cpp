// The real pose binary on real COCO photos and on bad input, as a user runs it.
#include <fcntl.h>
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

#ifdef WB_HAVE_STORE
#include <signal.h>
#include <spawn.h>

#include <chrono>
#include <filesystem>
#include <thread>

extern char** environ;

namespace {

const std::string kSquat = std::string(WB_SHARED_DIR) + "/testdata/videos/squat_side_3reps.mp4";

int count_lines(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

// Events go to the store; analysing the same file again stores no rep twice.
TEST(PoseCliStore, AnalyzeStoresEventsOnceAndEventsReadsThemBack) {
  const std::string dir = kTmp + "pose_cli_store";
  std::filesystem::remove_all(dir);
  const std::string db = " --db " + dir + "/pose.db --spool " + dir + "/spool";
  for (int run = 0; run < 2; ++run) {
    const CliRun analyze = pose("analyze " + kSquat + " --exercise squat" + db);
    ASSERT_EQ(analyze.exit_code, 0) << analyze.out;
    EXPECT_NE(analyze.out.find("stored "), std::string::npos) << analyze.out;
  }
  const CliRun reps = pose("events --kind rep" + db);
  ASSERT_EQ(reps.exit_code, 0) << reps.out;
  EXPECT_EQ(count_lines(reps.out, "\"type\":\"rep\""), 3) << reps.out;
  EXPECT_EQ(count_lines(reps.out, "\n"), 3) << reps.out;
  EXPECT_EQ(pose("events --kind rep --exercise pushup" + db).out, "");  // filters apply
  EXPECT_EQ(pose("events").exit_code, 2);
}

// kill -9 in the middle of a stream, then the same analysis again: every rep stored, none twice.
TEST(PoseCliStore, KillDashNineMidStreamThenRestartLosesAndDuplicatesNothing) {
  const std::string dir = kTmp + "pose_cli_kill";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/pose.db";
  std::vector<std::string> argv = {WB_POSE,      "analyze", kSquat, "--exercise", "squat",
                                   "--realtime", "--db",    db,     "--spool",    dir + "/spool"};
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (dir + "/stderr.txt").c_str(), O_WRONLY | O_CREAT, 0644);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  // Paced at 25 fps, the first rep ends at 3.1 s of video; kill once one is stored (the second ends at 7.2 s).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int stored = 0;
  while (stored == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling the database, not a sync
    stored = count_lines(pose("events --kind rep --db " + db).out, "\"type\":\"rep\"");
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "pose analyze ended before it was killed";
  ASSERT_GE(stored, 1);
  ASSERT_LT(stored, 3) << "killed too late to test anything";

  const CliRun again = pose("analyze " + kSquat + " --exercise squat --db " + db + " --spool " + dir + "/spool");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  const CliRun reps = pose("events --kind rep --db " + db);
  EXPECT_EQ(count_lines(reps.out, "\"type\":\"rep\""), 3) << reps.out;
  for (int rep = 1; rep <= 3; ++rep) {
    EXPECT_EQ(count_lines(reps.out, "\"rep\":" + std::to_string(rep) + ","), 1) << reps.out;
  }
}

}  // namespace
#endif
