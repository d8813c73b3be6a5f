#pragma once
// The live fan-out of the pose service: every WebSocket client watching a stream gets its frames, events, status
// changes, annotated JPEG images at the rate it asked for, and heartbeats.
//
// The pipeline's analysis thread hands each result over (frame, event) and returns at once: messages are built
// once per stream and queued on every client's connection, whose queue is bounded (server::http::WebSocket). A
// client that reads too slowly loses frames and images first, counted; events (reps, form, anomalies, status) are
// kept until a client is so far behind that even they would be lost, and then its connection is closed (1008) so
// that it reconnects and resumes from its last event id. Nothing a client does slows the pipeline or the others.
//
// Resume: each stream keeps its newest events in memory; a client that names the last event id it saw gets the
// events after it, from memory or, when they are older than what memory holds, from the store.
//
// JPEG images are drawn and encoded on the hub's own thread, at most as often as the most eager client asks,
// newest frame wins: encoding costs more than analysing a frame and must not hold up the analysis thread.
//
// Thread-safety: every method may be called from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/metrics/metrics.h"
#include "pose/runtime/runtime.h"
#include "server/http/http.h"

namespace pose::service {

struct LiveOptions {
  size_t client_queue = 256;  // frames and images a client may have waiting; more are dropped
  size_t replay_limit = 500;  // events replayed to a resuming client, at most (the rest: GET /api/v1/events)
  std::chrono::milliseconds heartbeat{5000};
  size_t events_kept = 1024;  // per stream, in memory for resuming clients
  int jpeg_quality = 75;
};

struct ClientOptions {
  bool frames = true;
  bool keypoints = true;
  double jpeg_fps = 0;         // 0: no images
  int64_t last_event_id = -1;  // resume after this event; -1: no resume
};

// Stored events after an id (oldest first, at most `limit`), for resuming clients whose events memory no longer
// holds: the service answers it from its store. Returns false when the store could not be read.
using StoredEvents = std::function<bool(const std::string& stream_id, int64_t after_id, int64_t up_to_id, size_t limit,
                                        std::vector<std::pair<int64_t, std::string>>* events)>;

class LiveHub {
 public:
  // Registers its metrics (pose_ws_*) in `registry`, which must outlive the hub.
  LiveHub(LiveOptions options, core::metrics::Registry& registry, StoredEvents stored_events);
  ~LiveHub();  // closes every client (1001, going away)
  LiveHub(const LiveHub&) = delete;
  LiveHub& operator=(const LiveHub&) = delete;

  // The server's queue limit for a client: events get room beyond client_queue, for resuming and bursts.
  size_t connection_queue() const;

  // The analysis thread's side. `exercise` labels the drawn image.
  void frame(const runtime::FrameResult& frame, const std::string& exercise);
  // An event already numbered and written as JSON (with its "id").
  void event(const std::string& stream_id, int64_t id, std::string json);

  // A client that completed its handshake: sends `hello`, then the resumed events and a "resume" message when
  // options.last_event_id >= 0, then live messages.
  void attach(const std::string& stream_id, const std::shared_ptr<server::http::WebSocket>& socket,
              const ClientOptions& options, const nlohmann::json& hello);
  void detach(const server::http::WebSocket* socket);
  // A deleted stream: its clients are closed (1001) and its memory dropped.
  void close_stream(const std::string& stream_id);

  struct State;  // clients, events kept, the image thread: in live.cpp

 private:
  std::unique_ptr<State> state_;
};

}  // namespace pose::service
