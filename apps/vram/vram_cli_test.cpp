// The real `vram` binary: the exporter (reading the stand-in NVML) scraped every second by the real Prometheus
// server, which passes once Prometheus' query API returns the fake GPUs' memory (skips where Prometheus is not
// installed); and `vram serve` running the real estimator, profiler and batch finder behind its REST API.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/test_support/process.h"
#include "server/http/test_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using core::test_support::free_port;
using core::test_support::Process;
using server::http::test_support::Client;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ExporterPrometheus, PrometheusScrapesTheFakeGpusMemory) {
  const std::string prometheus = WB_PROMETHEUS;
  if (prometheus.empty() || !std::filesystem::exists(prometheus)) {
    GTEST_SKIP() << "the Prometheus server is not installed (Debian package prometheus)";
  }
  const auto dir = std::filesystem::path(::testing::TempDir()) / ("vram_exporter_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "data");
  const auto deadline = Clock::now() + std::chrono::seconds(30);

  Process exporter({WB_VRAM, "exporter", "--port", "0", "--nvml-library", WB_FAKE_NVML});
  const std::optional<std::string> line = exporter.read_line(deadline);
  ASSERT_TRUE(line) << "vram exporter printed no address";
  const std::string marker = "listening on http://127.0.0.1:";
  ASSERT_NE(line->find(marker), std::string::npos) << *line;
  const std::string exporter_port = line->substr(line->find(marker) + marker.size());

  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                        << "scrape_configs:\n  - job_name: vram\n    static_configs:\n"
                                        << "      - targets: ['127.0.0.1:" << exporter_port << "']\n";
  const uint16_t prometheus_port = free_port();
  Process server({prometheus, "--config.file=" + (dir / "prometheus.yml").string(),
                  "--storage.tsdb.path=" + (dir / "data").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"},
                 dir / "prometheus.log");

  // Poll the query API until both fake GPUs' samples have been scraped.
  nlohmann::json last;
  bool seen = false;
  while (!seen && Clock::now() < deadline) {
    ASSERT_TRUE(server.running()) << "Prometheus exited:\n" << read_file(dir / "prometheus.log");
    Client client(prometheus_port);
    if (client.connected()) {
      last = client.get("/api/v1/query?query=vram_gpu_memory_used_bytes").json();
      std::map<std::string, std::string> used_by_gpu;
      if (last.is_object() && last.value("status", "") == "success") {
        for (const auto& series : last["data"]["result"]) {
          used_by_gpu[series["metric"].value("gpu", "")] = series["value"][1].get<std::string>();
        }
      }
      seen = used_by_gpu["0"] == "1073741824" && used_by_gpu["1"] == "0";
    }
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(200));  // polling interval, not a sync
  }
  EXPECT_TRUE(seen) << "last answer: " << last.dump() << "\nPrometheus log:\n" << read_file(dir / "prometheus.log");

  EXPECT_EQ(server.stop() & 0x7f, 0) << "Prometheus did not exit by itself on SIGTERM";
  const int status = exporter.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "vram exporter's wait status " << status;
  std::filesystem::remove_all(dir);
}

// The port `vram exporter|serve --port 0` printed.
uint16_t listening_port(Process& process, Clock::time_point deadline) {
  const std::optional<std::string> line = process.read_line(deadline);
  const std::string marker = "listening on http://127.0.0.1:";
  if (!line || line->find(marker) == std::string::npos) {
    ADD_FAILURE() << "no address printed: " << line.value_or("(nothing)");
    return 0;
  }
  return static_cast<uint16_t>(std::stoi(line->substr(line->find(marker) + marker.size())));
}

TEST(VramServe, RealEstimatesAndJobsOnTheCpu) {
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  Process serve({WB_VRAM, "serve", "--port", "0", "--nvml-library", WB_FAKE_NVML});
  const uint16_t port = listening_port(serve, deadline);
  ASSERT_NE(port, 0);
  Client client(port);
  ASSERT_TRUE(client.connected());

  // The estimator answers at once, for a model far too big to run here.
  const auto estimate = client.post("/api/v1/estimate", R"({"model": "llama-7b", "lora": "r16:q,k,v,o", "seq": 2048})");
  ASSERT_EQ(estimate.status, 200) << estimate.body;
  EXPECT_GT(estimate.json()["peak_bytes"].get<int64_t>(), 20ll << 30);
  EXPECT_EQ(estimate.json()["stages"].size(), 67u);
  // Bad workloads are refused with the reason.
  const auto unknown = client.post("/api/v1/estimate", R"({"model": "llama-70x"})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("llama-7b"), std::string::npos) << "the error lists the known models";
  EXPECT_EQ(client.post("/api/v1/estimate", R"({"model": "gpt2", "batch": "eight"})").status, 400);
  EXPECT_EQ(client.post("/api/v1/estimate", R"({"model": "gpt2", "color": "red"})").status, 400);

  // A batch search and a profile run as jobs on the CPU, one after the other; poll until both finish.
  const auto batch = client.post(
      "/api/v1/jobs", R"({"kind": "batch", "model": "llama-tiny", "dtype": "fp32", "seq": 64, "device": "cpu",
                          "budget": "24MiB"})");
  ASSERT_EQ(batch.status, 202) << batch.body;
  const auto profile = client.post(
      "/api/v1/jobs", R"({"kind": "profile", "model": "gpt2-tiny", "dtype": "fp32", "seq": 64, "device": "cpu"})");
  ASSERT_EQ(profile.status, 202) << profile.body;
  nlohmann::json batch_state;
  nlohmann::json profile_state;
  while (Clock::now() < deadline) {
    batch_state = client.get(batch.json()["status_url"].get<std::string>()).json();
    profile_state = client.get(profile.json()["status_url"].get<std::string>()).json();
    if (batch_state.value("status", "") != "queued" && batch_state.value("status", "") != "running" &&
        profile_state.value("status", "") != "queued" && profile_state.value("status", "") != "running") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling interval, not a sync
  }
  ASSERT_EQ(batch_state.value("status", ""), "done") << batch_state.dump();
  EXPECT_GT(batch_state["result"]["batch"].get<int64_t>(), 1);
  EXPECT_LE(batch_state["result"]["measured_bytes"].get<int64_t>(), 24ll << 20);
  ASSERT_EQ(profile_state.value("status", ""), "done") << profile_state.dump();
  EXPECT_GT(profile_state["result"]["peak"]["peak_bytes"].get<int64_t>(), 0);
  EXPECT_GE(profile_state["result"]["peak"]["attributed_fraction"].get<double>(), 0.95);

  // A fit: the planner's plan for a budget, run under it.
  const auto fit = client.post("/api/v1/jobs", R"({"kind": "fit", "model": "llama-tiny", "lora": "r4:q,k,v,o",
      "dtype": "fp32", "batch": 8, "seq": 256, "device": "cpu", "budget": "30MB"})");
  ASSERT_EQ(fit.status, 202) << fit.body;
  nlohmann::json fit_state;
  while (Clock::now() < deadline) {
    fit_state = client.get(fit.json()["status_url"].get<std::string>()).json();
    if (fit_state.value("status", "") != "queued" && fit_state.value("status", "") != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling interval, not a sync
  }
  ASSERT_EQ(fit_state.value("status", ""), "done") << fit_state.dump();
  EXPECT_LE(fit_state["result"]["measured_peak_bytes"].get<int64_t>(), 30'000'000);
  EXPECT_NE(fit_state["result"]["plan"], "keep");

  // The jobs' allocator statistics are on /metrics beside the GPUs'.
  const auto metrics = client.get("/metrics");
  EXPECT_NE(metrics.body.find("vram_allocator_peak_allocated_bytes{device=\"cpu\",task=\"profile\"}"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("vram_gpu_memory_used_bytes"), std::string::npos);
  const int status = serve.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "vram serve's wait status " << status;
}

}  // namespace

namespace {

// Everything the process prints, stdout and stderr, after it exits; and its exit status.
std::pair<int, std::string> run_to_end(const std::vector<std::string>& argv) {
  const auto output = std::filesystem::temp_directory_path() / ("vram_cli_test_" + std::to_string(getpid()) + ".out");
  Process process(argv, output);
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (process.running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int status = process.stop();
  std::string text = read_file(output);
  std::filesystem::remove(output);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// The lines that are JSON objects, in output that also holds progress lines.
std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty() && line.front() == '{') lines.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return lines;
}

const std::vector<std::string> kTinyLora = {WB_VRAM,   "--model",  "llama-tiny", "--lora",     "r4:q,k,v,o",
                                            "--batch", "8",        "--seq",      "256",        "--dtype",
                                            "fp32",    "--device", "cpu",        "--headroom", "0.15"};

std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.begin() + 1, more.begin(), more.end());
  return base;
}

}  // namespace

TEST(VramFit, RunsThePlannedStepUnderTheBudgetAndNamesTheFloor) {
  // 20 MB: well under the 54 MB (0.05 GiB) that keeping everything needs at this shape.
  auto [status, text] = run_to_end(with(kTinyLora, {"fit", "--budget", "20MB", "--json", "--steps", "2"}));
  ASSERT_EQ(status, 0) << text;
  const auto json = nlohmann::json::parse(text.substr(text.find("{\n")), nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << text;
  EXPECT_NE(json["plan"], "keep");
  EXPECT_LE(json["measured_peak_bytes"].get<int64_t>(), 20'000'000);
  EXPECT_GT(json["measured_items_per_second"].get<double>(), 0.0);

  std::tie(status, text) = run_to_end(with(kTinyLora, {"fit", "--budget", "100KB"}));
  EXPECT_EQ(status, 1) << text;
  EXPECT_NE(text.find("needs a budget of at least"), std::string::npos) << text;
}

TEST(VramFit, BenchPrintsTheCurveOneLinePerBudget) {
  const auto [status, text] = run_to_end(with(kTinyLora, {"bench", "--budgets", "200MB,20MB,100KB", "--steps", "1"}));
  ASSERT_EQ(status, 0) << text;
  const auto lines = json_lines(text);
  ASSERT_EQ(lines.size(), 3u) << text;
  EXPECT_DOUBLE_EQ(lines[0]["ratio_to_first"].get<double>(), 1.0);
  EXPECT_LE(lines[1]["measured_peak_bytes"].get<int64_t>(), 20'000'000);
  EXPECT_TRUE(lines[1].contains("ratio_to_first"));
  EXPECT_NE(lines[2]["error"].get<std::string>().find("needs a budget of at least"), std::string::npos);
}
