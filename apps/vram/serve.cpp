#include "serve.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace vram_cli {
namespace {

using nlohmann::json;
using server::http::json_error;
using server::http::json_response;
using server::http::Method;
using server::http::PathParams;
using server::http::Request;
using server::http::Response;

constexpr const char* kJobsPath = "/api/v1/jobs";

int http_status(core::ErrorCode code) {
  switch (code) {
    case core::ErrorCode::kInvalidArgument:
    case core::ErrorCode::kNotFound: return 400;
    case core::ErrorCode::kUnsupported: return 501;
    case core::ErrorCode::kUnavailable: return 503;
    case core::ErrorCode::kOutOfMemory: return 507;
    case core::ErrorCode::kCorrupt:
    case core::ErrorCode::kIo:
    case core::ErrorCode::kInternal: return 500;
  }
  return 500;
}

Response error_response(const core::Error& error) { return json_error(http_status(error.code), error.message); }

// The request body as a JSON object, or an error that says what is wrong with it.
core::Result<json> parse_object(const Request& request) {
  json body;
  try {
    body = json::parse(request.body);
  } catch (const json::parse_error& e) {
    // nlohmann's messages start with "[json.exception.parse_error.101] ", which tells a user nothing.
    const std::string what = e.what();
    const size_t bracket = what.find("] ");
    return core::make_error(
        core::ErrorCode::kInvalidArgument,
        "request body is not valid JSON: " + (bracket == std::string::npos ? what : what.substr(bracket + 2)));
  }
  if (!body.is_object()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            std::string("request body must be a JSON object, not ") + body.type_name());
  }
  return body;
}

// --- GPUs through NVML ---------------------------------------------------------------------------------------

struct GpuSnapshot {
  bool nvml_up = false;
  std::string reason;  // why nvml_up is false
  std::string driver_version;
  std::string cuda_driver_version;
  std::vector<core::sys::GpuInfo> gpus;
  std::vector<std::vector<core::sys::GpuProcess>> processes;  // per GPU; empty where the driver would not say
};

// Reads NVML at most once per `cache_duration`; concurrent readers wait for that one read.
class GpuReader {
 public:
  GpuReader(std::unique_ptr<core::sys::Nvml> nvml, std::string reason, std::chrono::milliseconds cache_duration)
      : nvml_(std::move(nvml)), reason_(std::move(reason)), cache_duration_(cache_duration) {}

  GpuSnapshot read() {
    const std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!read_at_ || now - *read_at_ >= cache_duration_) {
      cached_ = query();
      read_at_ = now;
    }
    return cached_;
  }

 private:
  GpuSnapshot query() const {
    GpuSnapshot snapshot;
    if (!nvml_) {
      snapshot.reason = reason_;
      return snapshot;
    }
    auto gpus = nvml_->gpus();
    if (!gpus) {
      snapshot.reason = gpus.error().message;
      return snapshot;
    }
    snapshot.nvml_up = true;
    snapshot.driver_version = nvml_->driver_version();
    snapshot.cuda_driver_version = nvml_->cuda_driver_version();
    snapshot.gpus = std::move(*gpus);
    for (const auto& gpu : snapshot.gpus) {
      snapshot.processes.push_back(nvml_->processes(gpu.index).value_or({}));
    }
    return snapshot;
  }

  const std::unique_ptr<core::sys::Nvml> nvml_;  // null when NVML could not be opened
  const std::string reason_;                     // why it could not
  const std::chrono::milliseconds cache_duration_;
  std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> read_at_;
  GpuSnapshot cached_;
};

using GaugeRows = std::vector<std::pair<std::vector<std::string>, double>>;

// A gauge family with these samples; none at all (not even HELP) when there are no samples.
void add_gauge(core::metrics::Registry& registry, std::string name, std::string help,
               std::vector<std::string> label_names, const GaugeRows& rows) {
  if (rows.empty()) return;
  auto family = registry.gauge(std::move(name), std::move(help), std::move(label_names));
  assert(family.ok() && "the exporter's metric names are fixed and valid");
  for (const auto& [labels, value] : rows) (*family)->with(labels).set(value);
}

std::string gpu_metrics_text(const GpuSnapshot& snapshot) {
  // A fresh registry per scrape: GPUs and processes come and go, and a series that is gone must not linger.
  core::metrics::Registry registry;
  add_gauge(registry, "vram_nvml_up", "1 when NVML (the NVIDIA driver) answered, else 0 and no vram_gpu_ series", {},
            {{{}, snapshot.nvml_up ? 1.0 : 0.0}});
  GaugeRows total, used, free, utilization, temperature, power, process_used;
  for (size_t i = 0; i < snapshot.gpus.size(); ++i) {
    const core::sys::GpuInfo& gpu = snapshot.gpus[i];
    const std::string index = std::to_string(gpu.index);
    const std::vector<std::string> labels = {index, gpu.name, gpu.uuid};
    total.emplace_back(labels, static_cast<double>(gpu.memory_total_bytes));
    used.emplace_back(labels, static_cast<double>(gpu.memory_used_bytes));
    free.emplace_back(labels, static_cast<double>(gpu.memory_free_bytes));
    // -1: the driver does not report it for this GPU; no sample rather than a false 0.
    if (gpu.utilization_percent >= 0) utilization.emplace_back(labels, gpu.utilization_percent);
    if (gpu.temperature_c >= 0) temperature.emplace_back(labels, gpu.temperature_c);
    if (gpu.power_mw >= 0) power.emplace_back(labels, gpu.power_mw / 1000.0);
    for (const core::sys::GpuProcess& process : snapshot.processes[i]) {
      process_used.emplace_back(std::vector<std::string>{index, std::to_string(process.pid)},
                                static_cast<double>(process.used_memory_bytes));
    }
  }
  const std::vector<std::string> gpu_labels = {"gpu", "name", "uuid"};
  add_gauge(registry, "vram_gpu_memory_total_bytes", "GPU memory in total", gpu_labels, total);
  add_gauge(registry, "vram_gpu_memory_used_bytes", "GPU memory in use by all processes", gpu_labels, used);
  add_gauge(registry, "vram_gpu_memory_free_bytes", "GPU memory free", gpu_labels, free);
  add_gauge(registry, "vram_gpu_utilization_percent", "time a kernel was running over the driver's last sample",
            gpu_labels, utilization);
  add_gauge(registry, "vram_gpu_temperature_celsius", "GPU core temperature", gpu_labels, temperature);
  add_gauge(registry, "vram_gpu_power_watts", "GPU power draw", gpu_labels, power);
  add_gauge(registry, "vram_gpu_process_memory_used_bytes", "GPU memory used by one process (compute contexts)",
            {"gpu", "pid"}, process_used);
  return registry.prometheus_text();
}

json gpus_json(const GpuSnapshot& snapshot) {
  json gpus = json::array();
  const auto optional = [](int value) { return value >= 0 ? json(value) : json(nullptr); };
  for (size_t i = 0; i < snapshot.gpus.size(); ++i) {
    const core::sys::GpuInfo& gpu = snapshot.gpus[i];
    json processes = json::array();
    for (const auto& process : snapshot.processes[i]) {
      processes.push_back({{"pid", process.pid}, {"used_memory_bytes", process.used_memory_bytes}});
    }
    gpus.push_back({{"index", gpu.index},
                    {"name", gpu.name},
                    {"uuid", gpu.uuid},
                    {"pci_bus_id", gpu.pci_bus_id},
                    {"compute_capability",
                     std::to_string(gpu.compute_capability_major) + "." + std::to_string(gpu.compute_capability_minor)},
                    {"memory_total_bytes", gpu.memory_total_bytes},
                    {"memory_used_bytes", gpu.memory_used_bytes},
                    {"memory_free_bytes", gpu.memory_free_bytes},
                    {"utilization_percent", optional(gpu.utilization_percent)},
                    {"temperature_celsius", optional(gpu.temperature_c)},
                    {"power_watts", gpu.power_mw >= 0 ? json(gpu.power_mw / 1000.0) : json(nullptr)},
                    {"processes", std::move(processes)}});
  }
  json out = {{"nvml_up", snapshot.nvml_up}, {"gpus", std::move(gpus)}};
  if (snapshot.nvml_up) {
    out["driver_version"] = snapshot.driver_version;
    out["cuda_driver_version"] = snapshot.cuda_driver_version;
  } else {
    out["reason"] = snapshot.reason;
  }
  return out;
}

// --- Jobs ---------------------------------------------------------------------------------------------------

enum class JobStatus { kQueued, kRunning, kDone, kFailed };

const char* to_string(JobStatus status) {
  switch (status) {
    case JobStatus::kQueued: return "queued";
    case JobStatus::kRunning: return "running";
    case JobStatus::kDone: return "done";
    case JobStatus::kFailed: return "failed";
  }
  return "failed";
}

struct Job {
  std::string kind;
  json request;
  JobStatus status = JobStatus::kQueued;
  double progress = 0.0;
  json result;
  std::string error;
};

json job_json(uint64_t id, const Job& job) {
  json out = {
      {"id", std::to_string(id)}, {"kind", job.kind}, {"status", to_string(job.status)}, {"progress", job.progress}};
  if (job.status == JobStatus::kDone) out["result"] = job.result;
  if (job.status == JobStatus::kFailed) out["error"] = job.error;
  return out;
}

// The OpenAPI document of Api::kServe. serve_test checks that it lists exactly the routes served.
constexpr const char* kOpenApi = R"json({
  "openapi": "3.1.0",
  "info": {
    "title": "vram serve",
    "version": "1",
    "description": "GPU memory of this machine, memory estimates, and profiling, batch-size search and fitting jobs run one at a time on its GPU. Every error is an Error object."
  },
  "paths": {
    "/healthz": {
      "get": {
        "summary": "Liveness",
        "responses": {"200": {"description": "The server is up", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}
      }
    },
    "/metrics": {
      "get": {
        "summary": "Prometheus metrics: per-GPU memory, utilisation, temperature, power, per-process memory, allocator statistics of jobs",
        "responses": {"200": {"description": "Prometheus text exposition format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}
      }
    },
    "/openapi.json": {
      "get": {
        "summary": "This document",
        "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {"schema": {"type": "object"}}}}}
      }
    },
    "/api/v1/gpus": {
      "get": {
        "summary": "NVIDIA GPUs and their memory now (NVML)",
        "responses": {"200": {"description": "The GPUs; nvml_up is false (with a reason) on a machine without the driver", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GpuList"}}}}}
      }
    },
    "/api/v1/estimate": {
      "post": {
        "summary": "Estimate the GPU memory of a workload, synchronously",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Workload"}}}},
        "responses": {
          "200": {"description": "The estimate", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "500": {"$ref": "#/components/responses/Failed"},
          "501": {"$ref": "#/components/responses/NotImplemented"},
          "503": {"$ref": "#/components/responses/Unavailable"},
          "507": {"$ref": "#/components/responses/OutOfMemory"}
        }
      }
    },
    "/api/v1/jobs": {
      "get": {
        "summary": "Jobs, newest first (the last 100 finished ones and all queued or running)",
        "responses": {"200": {"description": "The jobs", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobList"}}}}}
      },
      "post": {
        "summary": "Queue a profiling, batch-size search or fitting job; jobs run one at a time on the GPU",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}}},
        "responses": {
          "202": {"description": "Queued; poll status_url", "headers": {"Location": {"description": "The job's URL", "schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobAccepted"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"},
          "429": {"description": "The job queue is full; retry once a job has finished", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    },
    "/api/v1/jobs/{id}": {
      "get": {
        "summary": "One job: status, progress, and its result or error once finished",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "The job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
          "404": {"description": "No such job (or it left the history)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
      }
    }
  },
  "components": {
    "schemas": {
      "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {"status": {"type": "integer"}, "message": {"type": "string"}}}}
      },
      "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
      "Gpu": {
        "type": "object",
        "required": ["index", "name", "uuid", "memory_total_bytes", "memory_used_bytes", "memory_free_bytes", "processes"],
        "properties": {
          "index": {"type": "integer"}, "name": {"type": "string"}, "uuid": {"type": "string"}, "pci_bus_id": {"type": "string"},
          "compute_capability": {"type": "string", "examples": ["8.9"]},
          "memory_total_bytes": {"type": "integer"}, "memory_used_bytes": {"type": "integer"}, "memory_free_bytes": {"type": "integer"},
          "utilization_percent": {"type": ["integer", "null"]}, "temperature_celsius": {"type": ["integer", "null"]}, "power_watts": {"type": ["number", "null"]},
          "processes": {"type": "array", "items": {"type": "object", "required": ["pid", "used_memory_bytes"], "properties": {"pid": {"type": "integer"}, "used_memory_bytes": {"type": "integer"}}}}
        }
      },
      "GpuList": {
        "type": "object", "required": ["nvml_up", "gpus"],
        "properties": {
          "nvml_up": {"type": "boolean"}, "driver_version": {"type": "string"}, "cuda_driver_version": {"type": "string"},
          "reason": {"type": "string", "description": "Why NVML is not available"},
          "gpus": {"type": "array", "items": {"$ref": "#/components/schemas/Gpu"}}
        }
      },
      "Workload": {"type": "object", "description": "The workload's fields, as the vram tool's estimator, profiler and batch finder define them"},
      "Result": {"type": "object", "description": "What the estimator, profiler or batch finder reports"},
      "JobRequest": {
        "allOf": [{"$ref": "#/components/schemas/Workload"}],
        "type": "object", "required": ["kind"],
        "properties": {"kind": {"enum": ["profile", "batch", "fit"]}}
      },
      "JobAccepted": {
        "type": "object", "required": ["id", "status_url"],
        "properties": {"id": {"type": "string"}, "status_url": {"type": "string", "examples": ["/api/v1/jobs/1"]}}
      },
      "Job": {
        "type": "object", "required": ["id", "kind", "status", "progress"],
        "properties": {
          "id": {"type": "string"}, "kind": {"enum": ["profile", "batch", "fit"]},
          "status": {"enum": ["queued", "running", "done", "failed"]},
          "progress": {"type": "number", "minimum": 0, "maximum": 1},
          "result": {"$ref": "#/components/schemas/Result", "description": "When done"},
          "error": {"type": "string", "description": "When failed"}
        }
      },
      "JobList": {"type": "object", "required": ["jobs"], "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}}}
    },
    "responses": {
      "BadRequest": {"description": "Malformed JSON or an invalid workload", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Failed": {"description": "The work failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotImplemented": {"description": "This build or machine cannot do it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "A resource (GPU, driver) cannot be used now", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "OutOfMemory": {"description": "Out of memory", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  }
})json";

}  // namespace

struct Service::State {
  State(const ServeOptions& options_in, ServeActions actions_in, const core::metrics::Registry& registry_in,
        std::unique_ptr<core::sys::Nvml> nvml, std::string nvml_reason)
      : options(options_in),
        actions(std::move(actions_in)),
        registry(registry_in),
        gpus(std::move(nvml), std::move(nvml_reason), options_in.nvml_cache_duration) {}

  Response metrics() {
    Response response;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    response.body = gpu_metrics_text(gpus.read()) + registry.prometheus_text();
    return response;
  }

  Response estimate(const Request& request) const {
    auto body = parse_object(request);
    if (!body) return error_response(body.error());
    auto result = actions.estimate(*body);
    if (!result) return error_response(result.error());
    return json_response(200, *result);
  }

  Response submit(const Request& request) {
    auto body = parse_object(request);
    if (!body) return error_response(body.error());
    const auto kind = body->find("kind");
    if (kind == body->end() || !kind->is_string() || !action_for(kind->get<std::string>())) {
      return json_error(400, "\"kind\" must be \"profile\", \"batch\" or \"fit\"");
    }
    Job job;
    job.kind = kind->get<std::string>();
    body->erase("kind");
    job.request = std::move(*body);
    uint64_t id = 0;
    {
      const std::lock_guard lock(mutex);
      if (queue.size() >= options.job_queue_capacity) {
        return json_error(429, "the job queue is full (" + std::to_string(queue.size()) +
                                   " jobs waiting); retry once a job has finished");
      }
      id = next_id++;
      jobs.emplace(id, std::move(job));
      queue.push_back(id);
      forget_old_jobs();
    }
    wake.notify_one();
    const std::string url = std::string(kJobsPath) + "/" + std::to_string(id);
    Response response = json_response(202, {{"id", std::to_string(id)}, {"status_url", url}});
    response.headers["Location"] = url;
    return response;
  }

  Response job(const PathParams& params) {
    const std::string& text = params.at("id");
    uint64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    const std::lock_guard lock(mutex);
    const auto found = ec == std::errc() && end == text.data() + text.size() ? jobs.find(id) : jobs.end();
    if (found == jobs.end()) {
      return json_error(404, "no job '" + text + "' (only the last " + std::to_string(options.job_history) +
                                 " finished jobs are kept)");
    }
    return json_response(200, job_json(found->first, found->second));
  }

  Response list_jobs() {
    json list = json::array();
    const std::lock_guard lock(mutex);
    std::for_each(jobs.rbegin(), jobs.rend(),
                  [&](const auto& entry) { list.push_back(job_json(entry.first, entry.second)); });
    return json_response(200, {{"jobs", std::move(list)}});
  }

  const std::function<core::Result<json>(const json&, const Progress&)>* action_for(const std::string& kind) const {
    if (kind == "profile") return &actions.profile;
    if (kind == "batch") return &actions.batch;
    if (kind == "fit") return &actions.fit;
    return nullptr;
  }

  // The worker thread: one job at a time, so one thread owns the GPU.
  void work() {
    std::unique_lock lock(mutex);
    while (true) {
      wake.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      const uint64_t id = queue.front();
      queue.pop_front();
      Job& job = jobs.at(id);  // never forgotten while running
      job.status = JobStatus::kRunning;
      const auto& action = *action_for(job.kind);
      const json request = job.request;
      lock.unlock();
      const Progress progress = [this, id](double fraction) {
        const std::lock_guard progress_lock(mutex);
        jobs.at(id).progress = std::clamp(fraction, 0.0, 1.0);
      };
      core::Result<json> result = run(action, request, progress);
      lock.lock();
      if (result) {
        job.status = JobStatus::kDone;
        job.progress = 1.0;
        job.result = std::move(*result);
      } else {
        job.status = JobStatus::kFailed;
        job.error = result.error().message;
        options.logger.warn("job ", id, " (", job.kind, ") failed: ", job.error);
      }
      forget_old_jobs();
    }
  }

  // The worker thread's top: an action that throws fails its job instead of ending the process.
  static core::Result<json> run(const std::function<core::Result<json>(const json&, const Progress&)>& action,
                                const json& request, const Progress& progress) {
    try {
      return action(request, progress);
    } catch (const std::exception& e) {
      return core::make_error(core::ErrorCode::kInternal, std::string("the job threw: ") + e.what());
    }
  }

  // Drops the oldest finished jobs beyond the history bound; queued and running ones stay. Needs `mutex`.
  void forget_old_jobs() {
    for (auto it = jobs.begin(); it != jobs.end() && jobs.size() > options.job_history;) {
      const bool finished = it->second.status == JobStatus::kDone || it->second.status == JobStatus::kFailed;
      it = finished ? jobs.erase(it) : std::next(it);
    }
  }

  const ServeOptions options;
  const ServeActions actions;
  const core::metrics::Registry& registry;
  const json openapi = json::parse(kOpenApi);
  GpuReader gpus;

  std::mutex mutex;  // guards everything below
  std::condition_variable wake;
  bool stopping = false;
  std::map<uint64_t, Job> jobs;  // by id, which grows with time: oldest first
  std::deque<uint64_t> queue;    // ids waiting for the worker
  uint64_t next_id = 1;
  std::thread worker;
};

core::Result<std::unique_ptr<Service>> Service::create(const ServeOptions& options, ServeActions actions,
                                                       const core::metrics::Registry& registry) {
  if (options.api == Api::kServe && (!actions.estimate || !actions.profile || !actions.batch || !actions.fit)) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "vram serve needs the estimate, profile, batch and fit actions; one is missing");
  }
  std::unique_ptr<core::sys::Nvml> nvml;
  std::string nvml_reason;
  if (auto opened = core::sys::Nvml::open(options.nvml_library)) {
    nvml = std::move(*opened);
  } else {
    nvml_reason = opened.error().message;
    options.logger.info("no GPU metrics (vram_nvml_up 0): ", nvml_reason);
  }
  auto state = std::make_unique<State>(options, std::move(actions), registry, std::move(nvml), std::move(nvml_reason));
  if (options.api == Api::kServe) state->worker = std::thread([raw = state.get()] { raw->work(); });
  return std::unique_ptr<Service>(new Service(std::move(state)));
}

Service::Service(std::unique_ptr<State> state) : state_(std::move(state)) {}

Service::~Service() {
  {
    const std::lock_guard lock(state_->mutex);
    state_->stopping = true;
    state_->queue.clear();
  }
  state_->wake.notify_one();
  if (state_->worker.joinable()) state_->worker.join();
}

server::http::Router Service::router() {
  State* state = state_.get();
  server::http::Router router;
  router.add(Method::kGet, "/healthz", [](const Request&, const PathParams&) {
    return json_response(200, {{"status", "ok"}});
  });
  router.add(Method::kGet, "/metrics", [state](const Request&, const PathParams&) { return state->metrics(); });
  if (state->options.api == Api::kExporter) return router;

  router.add(Method::kGet, "/openapi.json",
             [state](const Request&, const PathParams&) { return json_response(200, state->openapi); });
  router.add(Method::kGet, "/api/v1/gpus",
             [state](const Request&, const PathParams&) { return json_response(200, gpus_json(state->gpus.read())); });
  router.add(Method::kPost, "/api/v1/estimate",
             [state](const Request& request, const PathParams&) { return state->estimate(request); });
  router.add(Method::kPost, kJobsPath,
             [state](const Request& request, const PathParams&) { return state->submit(request); });
  router.add(Method::kGet, kJobsPath, [state](const Request&, const PathParams&) { return state->list_jobs(); });
  router.add(Method::kGet, std::string(kJobsPath) + "/{id}",
             [state](const Request&, const PathParams& params) { return state->job(params); });
  return router;
}

}  // namespace vram_cli
