#pragma once
// The Service's insides, shared by service.cpp (streams, the pipeline's subscriber, persistence) and api.cpp (the
// HTTP handlers). Module-private.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/sys/sys.h"
#include "pose/service/records.h"
#include "pose/service/service.h"
#include "store/store.h"

namespace pose::service {

// A stream as the API defines it; what streams.json keeps.
struct StreamDefinition {
  std::string id;
  std::string source;  // as resolved (file paths canonical); may hold credentials: never shown unredacted
  std::string exercise = "auto";
  bool realtime = true;
  int loops = 1;
  int max_side = 640;
  int64_t created_us = 0;
  bool run = false;  // running, or to be started again after a restart
};

struct StreamEntry {
  StreamDefinition definition;
  std::string state = "created";  // or a runtime::StreamState's name
  std::string message;
  int64_t started_us = 0;                           // wall clock; 0 before the first start
  nlohmann::json people = nlohmann::json::array();  // of the last analysed frame
  double fps = 0;                                   // analysed frames per second, smoothed
  int64_t last_frame_steady_us = 0;
  RecordMaker records{""};
  int retries = 0;                     // live sources: starts since it last ran, after failures
  int64_t retry_at_us = 0;             // steady clock: when the next start is due; 0: none
  runtime::StreamStats totals_before;  // counts of earlier runs, so the metrics' counters never go down
};

struct ExerciseEntry {
  std::shared_ptr<const analysis::Exercise> exercise;
  std::string toml;
  bool custom = false;  // from DATA_DIR/exercises
};

struct Service::State {
  ServiceOptions options;
  core::metrics::Registry registry;  // what is observed as it happens; the rest is read at each scrape

  std::unique_ptr<store::Store> store;  // the Writer's
  std::unique_ptr<store::Writer> writer;
  std::mutex read_mutex;  // a Store is used by one thread at a time
  std::unique_ptr<store::Store> read_store;

  std::unique_ptr<LiveHub> hub;
  std::unique_ptr<runtime::Pipeline> pipeline;
  std::unique_ptr<core::sys::Nvml> nvml;  // null without an NVIDIA driver
  std::mutex nvml_mutex;

  mutable std::mutex mutex;  // guards everything below
  std::map<std::string, StreamEntry> streams;
  std::vector<std::string> order;  // stream ids in the order added
  std::map<std::string, ExerciseEntry> exercises;
  int64_t last_event_id = 0;  // analysis thread only
  bool shutting_down = false;
  int64_t streams_created = 0;  // for default ids
  std::condition_variable retry_wake;
  std::thread retrier;  // starts failed live streams again (retry_failed_live_streams)

  // Metrics observed as they happen.
  core::metrics::Family<core::metrics::Histogram>* latency = nullptr;  // stream, stage
  core::metrics::Histogram* batch_size = nullptr;
  core::metrics::Histogram* inference_seconds = nullptr;
  core::metrics::Family<core::metrics::Counter>* events = nullptr;    // stream, kind
  core::metrics::Family<core::metrics::Counter>* requests = nullptr;  // code
  int64_t last_batch_start_us = 0;  // analysis thread only: one inference observation per batch

  // The pipeline's subscriber.
  void on_event(const runtime::Event& event);
  // Starts the stream (the caller holds `mutex`); a status comes later through on_event.
  core::Status start(StreamEntry& entry);
  // The retrier thread: a camera or network stream that failed (it could not be opened, or its reconnects gave up)
  // is started again, with backoff, until it runs or is stopped.
  void retry_failed_live_streams();
  // Writes streams.json (the caller holds `mutex`); logs a failure, which costs only the restart of streams.
  void save_streams();
  std::vector<std::shared_ptr<const analysis::Exercise>> exercise_list() const;  // caller holds `mutex`
  std::string metrics_text();
  nlohmann::json stream_json(const StreamEntry& entry, const runtime::StreamStats* stats) const;
};

// Handlers: api.cpp.
server::http::Router make_router(Service::State& state);

}  // namespace pose::service
