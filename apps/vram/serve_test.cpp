// vram serve / exporter through a real server on 127.0.0.1, with fake actions (the seam for the estimator,
// profiler and batch finder) and the stand-in NVML of core/sys.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "serve.h"
#include "server/http/test_client.h"

namespace vram_cli {
namespace {

using nlohmann::json;
using server::http::test_support::Client;
using server::http::test_support::Reply;

class Gate {
 public:
  void open() {
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// estimate: {"fail": CODE} fails with that code, else echoes. profile: reports 0.5, then waits for `release`.
// batch: fails with out-of-memory unless {"fits": true}.
struct FakeWork {
  Gate profile_started;
  Gate release;

  ServeActions actions() {
    ServeActions actions;
    actions.estimate = [](const json& request) -> core::Result<json> {
      const std::map<std::string, core::ErrorCode> codes = {
          {"invalid", core::ErrorCode::kInvalidArgument}, {"not_found", core::ErrorCode::kNotFound},
          {"unavailable", core::ErrorCode::kUnavailable}, {"unsupported", core::ErrorCode::kUnsupported},
          {"oom", core::ErrorCode::kOutOfMemory},         {"internal", core::ErrorCode::kInternal}};
      if (request.contains("fail")) {
        return core::make_error(codes.at(request["fail"].get<std::string>()), "estimate failed on purpose");
      }
      return json{{"peak_bytes", 1234}, {"request", request}};
    };
    actions.profile = [this](const json& request, const Progress& progress) -> core::Result<json> {
      progress(0.5);
      profile_started.open();
      release.wait();
      return json{{"profiled", request}};
    };
    actions.batch = [](const json& request, const Progress& progress) -> core::Result<json> {
      progress(7.0);  // clamped
      if (request.value("fits", false)) return json{{"batch_size", 32}};
      return core::make_error(core::ErrorCode::kOutOfMemory, "batch size 64 does not fit in 8 GiB");
    };
    actions.fit = [](const json& request, const Progress&) -> core::Result<json> {
      return json{{"plan", "offload"}, {"request", request}};
    };
    return actions;
  }
};

class Serve : public ::testing::Test {
 protected:
  void start(ServeOptions options = {}) {
    if (options.nvml_library == core::sys::kNvmlLibrary) options.nvml_library = WB_FAKE_NVML;
    auto service = Service::create(options, work_.actions(), registry_);
    ASSERT_TRUE(service.ok()) << service.error().message;
    service_ = std::move(service).value();
    auto server = server::http::Server::create({}, service_->router());
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
  }
  void TearDown() override {
    work_.release.open();  // a job still blocked in profile would hold up the Service's destructor
    server_.reset();
    service_.reset();
  }
  Client client() const { return Client(server_->port()); }

  // Polls GET /api/v1/jobs/ID until its status is `status`; the worker finishes jobs on its own thread.
  json wait_for_status(const std::string& id, const std::string& status) {
    Client http = client();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    json job;
    while (std::chrono::steady_clock::now() < deadline) {
      job = http.get("/api/v1/jobs/" + id).json();
      if (job.value("status", "") == status) return job;
      std::this_thread::yield();
    }
    ADD_FAILURE() << "job " << id << " never became " << status << ": " << job.dump();
    return job;
  }

  std::string submit(const json& body) {
    const Reply reply = client().post("/api/v1/jobs", body.dump());
    EXPECT_EQ(reply.status, 202) << reply.body;
    const json accepted = reply.json();
    EXPECT_EQ(accepted["status_url"], "/api/v1/jobs/" + accepted.value("id", ""));
    EXPECT_EQ(reply.header("Location"), accepted.value("status_url", ""));
    return accepted.value("id", "");
  }

  FakeWork work_;
  core::metrics::Registry registry_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<server::http::Server> server_;
};

TEST_F(Serve, EstimateReturnsTheActionsResult) {
  start();
  const Reply reply = client().post("/api/v1/estimate", R"({"model": "resnet50", "batch_size": 8})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json()["peak_bytes"], 1234);
  EXPECT_EQ(reply.json()["request"]["model"], "resnet50");
}

TEST_F(Serve, ErrorCodesMapToHttpStatuses) {
  start();
  const std::pair<const char*, int> cases[] = {{"invalid", 400},     {"not_found", 400}, {"unavailable", 503},
                                               {"unsupported", 501}, {"oom", 507},       {"internal", 500}};
  Client http = client();
  for (const auto& [code, status] : cases) {
    const Reply reply = http.post("/api/v1/estimate", json{{"fail", code}}.dump());
    EXPECT_EQ(reply.status, status) << code;
    EXPECT_EQ(reply.json()["error"]["status"], status) << code;
    EXPECT_EQ(reply.json()["error"]["message"], "estimate failed on purpose") << code;
  }
}

TEST_F(Serve, MalformedJsonIs400NamingTheProblem) {
  start();
  Client http = client();
  Reply reply = http.post("/api/v1/estimate", R"({"model": )");
  EXPECT_EQ(reply.status, 400);
  const std::string message = reply.json()["error"]["message"];
  EXPECT_NE(message.find("request body is not valid JSON"), std::string::npos) << message;
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;

  reply = http.post("/api/v1/jobs", "[1, 2]");
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.json()["error"]["message"].get<std::string>().find("must be a JSON object, not array"),
            std::string::npos);
  reply = http.post("/api/v1/jobs", R"({"kind": "train"})");
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.json()["error"]["message"].get<std::string>().find("\"profile\", \"batch\" or \"fit\""),
            std::string::npos);
}

TEST_F(Serve, JobRunsFromQueuedToDone) {
  start();
  const std::string id = submit({{"kind", "profile"}, {"model", "vit_b_16"}});
  work_.profile_started.wait();
  json job = client().get("/api/v1/jobs/" + id).json();
  EXPECT_EQ(job["id"], id);
  EXPECT_EQ(job["kind"], "profile");
  EXPECT_EQ(job["status"], "running");
  EXPECT_EQ(job["progress"], 0.5);
  EXPECT_FALSE(job.contains("result"));

  work_.release.open();
  job = wait_for_status(id, "done");
  EXPECT_EQ(job["progress"], 1.0);
  // The action sees the workload without "kind".
  EXPECT_EQ(job["result"]["profiled"], json({{"model", "vit_b_16"}}));
}

TEST_F(Serve, FailedJobReportsTheError) {
  start();
  const std::string id = submit({{"kind", "batch"}, {"model", "vit_b_16"}});
  const json job = wait_for_status(id, "failed");
  EXPECT_EQ(job["error"], "batch size 64 does not fit in 8 GiB");
  EXPECT_EQ(job["progress"], 1.0);  // clamped from 7
  EXPECT_FALSE(job.contains("result"));
}

TEST_F(Serve, FullQueueIs429) {
  ServeOptions options;
  options.job_queue_capacity = 2;
  start(options);
  submit({{"kind", "profile"}});
  work_.profile_started.wait();  // running: no longer in the queue
  const std::string second = submit({{"kind", "batch"}, {"fits", true}});
  submit({{"kind", "batch"}, {"fits", true}});
  const Reply refused = client().post("/api/v1/jobs", R"({"kind": "batch"})");
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.json()["error"]["status"], 429);
  EXPECT_EQ(client().get("/api/v1/jobs/" + second).json()["status"], "queued");

  work_.release.open();
  EXPECT_EQ(wait_for_status(second, "done")["result"]["batch_size"], 32);
}

TEST_F(Serve, ListsJobsNewestFirstWithinTheHistoryBound) {
  ServeOptions options;
  options.job_history = 3;
  start(options);
  std::vector<std::string> ids;
  ids.reserve(5);
  for (int i = 0; i < 5; ++i) ids.push_back(submit({{"kind", "batch"}, {"fits", true}}));
  wait_for_status(ids.back(), "done");
  const json list = client().get("/api/v1/jobs").json()["jobs"];
  ASSERT_EQ(list.size(), 3u) << list.dump();
  EXPECT_EQ(list[0]["id"], ids[4]);
  EXPECT_EQ(list[2]["id"], ids[2]);
  EXPECT_EQ(client().get("/api/v1/jobs/" + ids[0]).status, 404);
}

TEST_F(Serve, UnknownJobIs404) {
  start();
  Client http = client();
  for (const char* id : {"999", "abc", "-1", "1x"}) {
    const Reply reply = http.get(std::string("/api/v1/jobs/") + id);
    EXPECT_EQ(reply.status, 404) << id;
    EXPECT_NE(reply.json()["error"]["message"].get<std::string>().find(id), std::string::npos);
  }
}

TEST_F(Serve, OpenApiDocumentsExactlyTheRoutesServed) {
  start();
  const json document = client().get("/openapi.json").json();
  EXPECT_EQ(document["openapi"], "3.1.0");
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, operations] : document["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      documented.emplace(path, method);
      EXPECT_TRUE(operation.contains("responses")) << method << " " << path;
    }
  }
  std::set<std::pair<std::string, std::string>> served;
  for (const auto& route : service_->router().routes()) {
    std::string method = server::http::to_string(route.method);
    for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    served.emplace(route.pattern, method);
  }
  EXPECT_EQ(documented, served);
}

TEST_F(Serve, MetricsExportFakeGpusAndTheCallersRegistry) {
  auto allocated = registry_.gauge("vram_allocator_allocated_bytes", "bytes allocated", {"device", "job"});
  ASSERT_TRUE(allocated.ok());
  (*allocated)->with({"cuda:0", "7"}).set(4096);
  start();
  const Reply reply = client().get("/metrics");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = reply.body;
  for (const char* line : {
           "vram_nvml_up 1\n",
           "vram_gpu_memory_total_bytes{gpu=\"0\",name=\"NVIDIA GeForce RTX 4060\",uuid=\"\"} 8589934592\n",
           "vram_gpu_memory_used_bytes{gpu=\"0\",name=\"NVIDIA GeForce RTX 4060\",uuid=\"\"} 1073741824\n",
           "vram_gpu_memory_free_bytes{gpu=\"0\",name=\"NVIDIA GeForce RTX 4060\",uuid=\"\"} 7516192768\n",
           "vram_gpu_memory_used_bytes{gpu=\"1\",name=\"NVIDIA H100 80GB HBM3\",uuid=\"\"} 0\n",
           "vram_gpu_process_memory_used_bytes{gpu=\"0\",pid=\"4242\"} 536870912\n",
           "vram_allocator_allocated_bytes{device=\"cuda:0\",job=\"7\"} 4096\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\nnot in\n" << text;
  }
  // The stand-in reports no utilisation, temperature or power: no made-up zeros.
  EXPECT_EQ(text.find("vram_gpu_utilization_percent"), std::string::npos) << text;
  EXPECT_EQ(text.find("vram_gpu_power_watts"), std::string::npos) << text;
}

TEST_F(Serve, GpusListsNvmlDevices) {
  start();
  const json gpus = client().get("/api/v1/gpus").json();
  EXPECT_EQ(gpus["nvml_up"], true);
  EXPECT_EQ(gpus["driver_version"], "555.42.06");
  ASSERT_EQ(gpus["gpus"].size(), 2u);
  EXPECT_EQ(gpus["gpus"][0]["name"], "NVIDIA GeForce RTX 4060");
  EXPECT_EQ(gpus["gpus"][0]["compute_capability"], "8.9");
  EXPECT_EQ(gpus["gpus"][0]["memory_used_bytes"], 1ull << 30);
  EXPECT_EQ(gpus["gpus"][0]["temperature_celsius"], nullptr);
  EXPECT_EQ(gpus["gpus"][0]["processes"][0]["pid"], 4242);
  EXPECT_TRUE(gpus["gpus"][1]["processes"].empty());
}

TEST_F(Serve, WithoutNvmlNoGpuSeriesAndNotAnError) {
  ServeOptions options;
  options.nvml_library = "libnvidia-ml-missing.so.1";
  start(options);
  const Reply metrics = client().get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("vram_nvml_up 0\n"), std::string::npos) << metrics.body;
  EXPECT_EQ(metrics.body.find("\nvram_gpu_"), std::string::npos) << metrics.body;
  const json gpus = client().get("/api/v1/gpus").json();
  EXPECT_EQ(gpus["nvml_up"], false);
  EXPECT_FALSE(gpus["reason"].get<std::string>().empty());
  EXPECT_TRUE(gpus["gpus"].empty());
}

TEST_F(Serve, ExporterServesMetricsAndHealthOnly) {
  ServeOptions options;
  options.api = Api::kExporter;
  start(options);
  Client http = client();
  EXPECT_EQ(http.get("/healthz").json()["status"], "ok");
  EXPECT_EQ(http.get("/metrics").status, 200);
  EXPECT_EQ(http.get("/api/v1/gpus").status, 404);
  EXPECT_EQ(http.get("/openapi.json").status, 404);
  EXPECT_EQ(service_->router().routes().size(), 2u);
}

TEST(ServeCreate, ServeNeedsEveryAction) {
  core::metrics::Registry registry;
  ServeOptions options;
  options.nvml_library = "libnvidia-ml-missing.so.1";
  auto service = Service::create(options, ServeActions{}, registry);
  ASSERT_FALSE(service.ok());
  EXPECT_EQ(service.error().code, core::ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vram_cli
