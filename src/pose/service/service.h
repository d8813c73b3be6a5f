#pragma once
// pose::service: the pose analyzer as a long-running service (`pose serve`). docs/api.md is its contract.
//
//   REST /api/v1 --> Service --> runtime::Pipeline --(events)--> store::Writer --> SQLite / PostgreSQL
//                                                          \--> LiveHub --> WebSocket clients
//                                                           \-> metrics
//
// The Service owns the pipeline, the store and the live hub, and answers HTTP as a server::http::Router: its
// handlers turn requests into calls on the pipeline and queries of the store, and never wait on a stream.
// Streams are defined through the API and kept in DATA_DIR/streams.json, so a restart (or a crash) brings back
// the streams that were running. Every rep, form issue, anomaly and status change gets an event id (increasing,
// from the wall clock, so ids keep increasing across restarts), goes to the store and to the live clients.
//
// Thread-safety: handlers run on the server's I/O threads concurrently; the pipeline's subscriber runs on its
// analysis thread. Everything shared is behind the Service's mutex or the pieces' own.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/metrics/metrics.h"
#include "core/result.h"
#include "pose/runtime/runtime.h"
#include "pose/service/live.h"
#include "server/http/http.h"

namespace pose::service {

struct ServiceOptions {
  runtime::PipelineOptions pipeline;        // estimator and batching; keep_frames is turned on for live images
  std::filesystem::path builtin_exercises;  // the shipped definitions; DATA_DIR/exercises/ adds and overrides
  std::filesystem::path data_dir;           // streams.json, exercises/, spool/, events.sqlite; created if missing
  std::string db;                           // SQLite file or postgresql:// URI; "" = DATA_DIR/events.sqlite
  int retention_days = 0;  // PostgreSQL: months of events wholly older than this are dropped; 0 keeps all
  std::vector<std::filesystem::path> media_dirs;  // the only folders file sources may read
  std::vector<std::string> tokens;                // empty: no authentication
  bool public_read = true;                        // with tokens: GET and live need none
  std::filesystem::path web_dir;                  // the built dashboard (index.html, assets/); may be missing
  int default_max_side = 640;
  // A camera or network stream that fails is started again after this, doubling up to live_retry_max.
  std::chrono::milliseconds live_retry_initial{2000};
  std::chrono::milliseconds live_retry_max{60000};
  LiveOptions live;
  std::string nvml_library;  // for GPU memory metrics; "" = the driver's
  core::Logger logger;
};

class Service {
 public:
  // Opens the store (kUnavailable when it cannot: an unreachable PostgreSQL, an unwritable folder), replays its
  // spool, loads the exercises and the model, and starts the streams that were running when the service last
  // stopped. Fails for a bad model, bad exercise files or a corrupt streams.json (named, not overwritten).
  static core::Result<std::unique_ptr<Service>> create(const ServiceOptions& options);
  // Stops every stream (they restart with the service: stopping the service is not stopping them), writes what
  // is left to the store (or the spool) and closes the live clients.
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Every route of docs/api.md. The handlers refer to this Service, which must outlive the server using them.
  server::http::Router router();

  struct State;  // streams, pipeline, store, hub, metrics: in service.cpp

 private:
  explicit Service(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The OpenAPI 3.1 document of the service's API.
const nlohmann::json& openapi_document();

}  // namespace pose::service
