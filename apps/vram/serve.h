#pragma once
// `vram exporter` and `vram serve`: the VRAM tool's HTTP front end, as a Router for server::http.
//
//   exporter  GET /metrics, GET /healthz
//   serve     the same, plus the REST API under /api/v1 and its OpenAPI document at /openapi.json
//
// /metrics reads NVML on each scrape (through a short cache) and appends the caller's Registry, where in-process
// jobs record allocator statistics. The API's work (estimate, profile, batch search) is not done here: it comes
// in as ServeActions, so this file is only HTTP <-> JSON, a job queue and NVML.
//
// Jobs (profile, batch) run one at a time on the Service's own worker thread, because one thread owns the GPU;
// at most ServeOptions::job_queue_capacity wait behind it (more are refused with 429). Estimates run on the
// server's I/O thread and return synchronously.
//
// Thread-safety: handlers may run concurrently; ServeActions::estimate is called from several I/O threads at once,
// profile and batch only from the worker thread. Progress callbacks may be called from the worker thread only.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/log.h"
#include "core/metrics/metrics.h"
#include "core/result.h"
#include "core/sys/sys.h"
#include "server/http/http.h"

namespace vram_cli {

// Reports how far a job is, 0..1 (values outside are clamped).
using Progress = std::function<void(double fraction)>;

// The work behind the API. Each takes the request's JSON body (for jobs, without "kind") and returns the result
// JSON or an error whose code picks the HTTP status: kInvalidArgument, kNotFound 400; kUnsupported 501;
// kUnavailable 503; kOutOfMemory 507; anything else 500.
struct ServeActions {
  std::function<core::Result<nlohmann::json>(const nlohmann::json& request)> estimate;
  std::function<core::Result<nlohmann::json>(const nlohmann::json& request, const Progress& progress)> profile;
  std::function<core::Result<nlohmann::json>(const nlohmann::json& request, const Progress& progress)> batch;
  std::function<core::Result<nlohmann::json>(const nlohmann::json& request, const Progress& progress)> fit;
};

enum class Api {
  kExporter,  // /metrics and /healthz only; ServeActions are not used
  kServe,     // everything
};

struct ServeOptions {
  Api api = Api::kServe;
  std::string nvml_library = core::sys::kNvmlLibrary;  // tests load a stand-in
  // NVML answers are reused for this long, so a storm of scrapes or GPU queries reads the driver once.
  std::chrono::milliseconds nvml_cache_duration{500};
  size_t job_queue_capacity = 8;  // jobs waiting behind the running one; a further submission gets 429
  size_t job_history = 100;       // finished jobs kept for GET /api/v1/jobs; the oldest go first
  core::Logger logger;
};

class Service {
 public:
  // Opens NVML (a missing library or driver is not an error: /metrics then says vram_nvml_up 0) and starts the
  // job worker. Fails (kInvalidArgument) when options.api is kServe and an action is missing.
  static core::Result<std::unique_ptr<Service>> create(const ServeOptions& options, ServeActions actions,
                                                       const core::metrics::Registry& registry);
  // Stops the worker: a running job finishes first, queued jobs are dropped.
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // The routes of options.api. Its handlers refer to this Service, which must outlive any server using them.
  server::http::Router router();

  struct State;  // NVML cache, jobs and the worker, in serve.cpp

 private:
  explicit Service(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace vram_cli
