// The real pose binary on real COCO photos and on bad input, as a user runs it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#ifdef WB_HAVE_SERVICE
#include <map>
#include <memory>
#include <thread>

#include "core/test_support/process.h"
#include "server/http/test_client.h"
#endif

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

#ifdef WB_HAVE_SERVICE
namespace {

using core::test_support::Process;
using server::http::test_support::Client;
using Clock = std::chrono::steady_clock;

const std::string kVideos = std::string(WB_SHARED_DIR) + "/testdata/videos";

// `pose serve` on a free port with its data in `dir`, files from the test videos.
struct Served {
  std::unique_ptr<Process> process;
  uint16_t port = 0;
};

Served serve(const std::filesystem::path& dir, const std::filesystem::path& log) {
  Served served;
  served.process = std::make_unique<Process>(
      std::vector<std::string>{WB_POSE, "serve", "--port", "0", "--data-dir", dir.string(), "--media-dir", kVideos},
      log);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  const std::string marker = "listening on http://127.0.0.1:";
  while (Clock::now() < deadline && served.port == 0 && served.process->running()) {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (const size_t at = line.find(marker); at != std::string::npos && line.find("pose serve") == 0) {
        served.port = static_cast<uint16_t>(std::stoi(line.substr(at + marker.size())));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the log, not a sync
  }
  return served;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

nlohmann::json stored_reps(uint16_t port, const std::string& stream) {
  Client client(port);
  if (!client.connected()) return nlohmann::json::array();
  const nlohmann::json page = client.get("/api/v1/events?kind=rep&stream=" + stream).json();
  return page.is_object() ? page["events"] : nlohmann::json::array();
}

std::string state_of(uint16_t port, const std::string& stream) {
  Client client(port);
  const nlohmann::json answer = client.get("/api/v1/streams/" + stream).json();
  return answer.is_object() ? answer.value("state", "") : "";
}

// The acceptance test of the service's storage: kill -9 mid-stream, restart, and every rep is stored exactly once.
TEST(PoseServe, KillDashNineMidStreamThenRestartLosesAndDuplicatesNothing) {
  const auto dir = std::filesystem::path(kTmp) / ("pose_serve_kill_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    Served first = serve(dir / "data", dir / "first.log");
    ASSERT_NE(first.port, 0) << read_text(dir / "first.log");
    const nlohmann::json request = {{"id", "gym"},
                                    {"source", kVideos + "/squat_side_3reps.mp4"},
                                    {"exercise", "squat"},
                                    {"realtime", true}};  // about 14 s: time to kill it mid-way
    const auto created = Client(first.port).post("/api/v1/streams", request.dump());
    ASSERT_EQ(created.status, 201) << created.body;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline && stored_reps(first.port, "gym").empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling, not a sync
    }
    const size_t stored = stored_reps(first.port, "gym").size();
    first.process->kill_hard();
    ASSERT_GE(stored, 1u) << read_text(dir / "first.log");
    ASSERT_LT(stored, 3u) << "killed too late to test anything";
  }
  // The restarted service finds the stream was running, starts it again and stores what was missing.
  Served second = serve(dir / "data", dir / "second.log");
  ASSERT_NE(second.port, 0) << read_text(dir / "second.log");
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline && state_of(second.port, "gym") != "ended") {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling, not a sync
  }
  ASSERT_EQ(state_of(second.port, "gym"), "ended") << read_text(dir / "second.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // past the Writer's flush interval
  const nlohmann::json reps = stored_reps(second.port, "gym");
  ASSERT_EQ(reps.size(), 3u) << reps.dump();
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(reps[i]["event"]["rep"], i + 1) << reps.dump();
  const int status = second.process->stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exit status " << status;
}

// The real Prometheus server scrapes the running service: the per-stream series arrive.
TEST(PoseServe, PrometheusScrapesTheStreamsSeries) {
  const std::string prometheus = WB_PROMETHEUS;
  if (prometheus.empty() || !std::filesystem::exists(prometheus)) {
    GTEST_SKIP() << "the Prometheus server is not installed (Debian package prometheus)";
  }
  const auto dir = std::filesystem::path(kTmp) / ("pose_serve_prometheus_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "tsdb");
  Served served = serve(dir / "data", dir / "serve.log");
  ASSERT_NE(served.port, 0) << read_text(dir / "serve.log");
  const nlohmann::json request = {
      {"id", "cam-1"}, {"source", kVideos + "/squat_18.mp4"}, {"exercise", "squat"}, {"loops", 0}};
  ASSERT_EQ(Client(served.port).post("/api/v1/streams", request.dump()).status, 201);

  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                        << "scrape_configs:\n  - job_name: pose\n    static_configs:\n"
                                        << "      - targets: ['127.0.0.1:" << served.port << "']\n";
  const uint16_t prometheus_port = core::test_support::free_port();
  Process server({prometheus, "--config.file=" + (dir / "prometheus.yml").string(),
                  "--storage.tsdb.path=" + (dir / "tsdb").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"},
                 dir / "prometheus.log");
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  std::map<std::string, double> seen;
  const std::vector<std::string> queries = {
      "pose_stream_frames_analysed_total{stream=\"cam-1\",job=\"pose\"}", "pose_stream_fps{stream=\"cam-1\"}",
      "histogram_quantile(0.5, rate(pose_frame_latency_seconds_bucket{stream=\"cam-1\",stage=\"total\"}[5s]))",
      "pose_store_up"};
  while (Clock::now() < deadline && seen.size() < queries.size()) {
    ASSERT_TRUE(server.running()) << "Prometheus exited:\n" << read_text(dir / "prometheus.log");
    Client client(prometheus_port);
    for (const auto& query : queries) {
      if (!client.connected() || seen.count(query)) continue;
      std::string encoded;
      for (char c : query) {
        encoded += std::isalnum(static_cast<unsigned char>(c)) ? std::string(1, c) : [&] {
          char hex[4];
          std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
          return std::string(hex);
        }();
      }
      const nlohmann::json answer = client.get("/api/v1/query?query=" + encoded).json();
      if (answer.is_object() && answer.value("status", "") == "success" && !answer["data"]["result"].empty()) {
        const double value = std::stod(answer["data"]["result"][0]["value"][1].get<std::string>());
        if (value > 0) seen[query] = value;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // polling interval, not a sync
  }
  for (const auto& query : queries)
    EXPECT_TRUE(seen.count(query)) << query << "\n" << read_text(dir / "prometheus.log");
  EXPECT_LT(seen[queries[2]], 5.0) << "median frame latency, seconds";
}

}  // namespace
#endif
