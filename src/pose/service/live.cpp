#include "pose/service/live.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "pose/runtime/json.h"
#include "pose/service/text.h"

namespace pose::service {
namespace {

using server::http::WebSocket;

struct Client {
  std::shared_ptr<WebSocket> socket;
  ClientOptions options;
  int64_t next_image_us = 0;
  int64_t next_heartbeat_us = 0;
  int64_t hub_dropped = 0;     // frames and images the hub did not queue
  int64_t socket_dropped = 0;  // the connection's own drops, as last counted into the metric
};

// An image to draw and encode: the newest frame some client is due an image of.
struct PendingImage {
  std::shared_ptr<const video::Frame> frame;
  video::Overlay overlay;
  int64_t frame_index = 0;
};

struct LiveStream {
  std::vector<std::shared_ptr<Client>> clients;
  std::deque<std::pair<int64_t, std::string>> events;  // newest last
  int64_t floor_id = 0;  // events up to this id may be missing from `events`: the store has them
  std::optional<PendingImage> pending_image;
};

int64_t steady_us() { return video::now_us(); }

}  // namespace

struct LiveHub::State {
  State(LiveOptions live_options, core::metrics::Registry& registry, StoredEvents stored)
      : options(live_options),
        stored_events(std::move(stored)),
        clients(registry.gauge("pose_ws_clients", "WebSocket clients watching a stream now").value()->with({})),
        sent(
            registry.counter("pose_ws_messages_sent_total", "messages queued for WebSocket clients").value()->with({})),
        dropped(registry
                    .counter("pose_ws_messages_dropped_total",
                             "frames and images a slow WebSocket client did not get (it keeps every event)")
                    .value()
                    ->with({})),
        slow_closed(registry
                        .counter("pose_ws_slow_disconnects_total",
                                 "WebSocket clients disconnected because even their events could not be queued")
                        .value()
                        ->with({})),
        encode_seconds(registry
                           .histogram("pose_live_image_encode_seconds", "drawing and JPEG-encoding one live image",
                                      core::metrics::exponential_buckets(0.0005, 2, 12))
                           .value()
                           ->with({})),
        start_id(wall_clock_us() - 1) {
    worker = std::thread([this] { work(); });
  }

  LiveOptions options;
  StoredEvents stored_events;
  core::metrics::Gauge& clients;
  core::metrics::Counter& sent;
  core::metrics::Counter& dropped;
  core::metrics::Counter& slow_closed;
  core::metrics::Histogram& encode_seconds;
  const int64_t start_id;  // events before the hub started are only in the store

  mutable std::mutex mutex;
  std::condition_variable wake;
  std::map<std::string, LiveStream, std::less<>> streams;
  bool closing = false;
  std::thread worker;

  LiveStream& stream(const std::string& id) {
    auto [it, inserted] = streams.try_emplace(id);
    if (inserted) it->second.floor_id = start_id;
    return it->second;
  }

  // Queues `text` for the client; false when the connection is gone (or was closed for being too slow).
  bool send(Client& client, std::string text, bool droppable) {
    if (droppable && client.socket->queued() >= options.client_queue) {
      ++client.hub_dropped;
      dropped.inc();
      return client.socket->is_open();
    }
    switch (client.socket->send(std::move(text), droppable)) {
      case WebSocket::SendResult::kQueued: sent.inc(); return true;
      case WebSocket::SendResult::kDropped: return true;  // counted through socket->dropped()
      case WebSocket::SendResult::kClosed:
        if (!droppable) slow_closed.inc();
        return false;
    }
    return false;
  }

  void count_socket_drops(Client& client) {
    const int64_t now = client.socket->dropped();
    if (now > client.socket_dropped) dropped.inc(static_cast<double>(now - client.socket_dropped));
    client.socket_dropped = now;
  }

  void remove_closed(LiveStream& live) {
    std::erase_if(live.clients, [&](const std::shared_ptr<Client>& client) {
      if (client->socket->is_open()) return false;
      count_socket_drops(*client);
      clients.add(-1);
      return true;
    });
  }

  // The image thread: draws and encodes pending images, sends heartbeats.
  void work() {
    std::unique_lock lock(mutex);
    while (!closing) {
      wake.wait_for(lock, std::chrono::milliseconds(100));
      if (closing) break;
      std::vector<std::pair<std::string, PendingImage>> images;
      for (auto& [id, live] : streams) {
        if (live.pending_image) images.emplace_back(id, std::move(*live.pending_image));
        live.pending_image.reset();
      }
      if (!images.empty()) {
        lock.unlock();  // encoding takes milliseconds; frames and events go on meanwhile
        std::vector<std::pair<std::string, std::string>> messages;
        for (auto& [id, image] : images) {
          const int64_t started = steady_us();
          if (auto message = encode(image)) messages.emplace_back(id, std::move(*message));
          encode_seconds.observe(static_cast<double>(steady_us() - started) / 1e6);
        }
        lock.lock();
        for (const auto& [id, message] : messages) {
          if (auto it = streams.find(id); it != streams.end()) send_image(it->second, message, steady_us());
        }
      }
      const int64_t now = steady_us();
      for (auto& [id, live] : streams) {
        for (auto& client : live.clients) {
          if (now < client->next_heartbeat_us) continue;
          client->next_heartbeat_us = now + options.heartbeat.count() * 1000;
          count_socket_drops(*client);
          const nlohmann::json beat = {{"type", "heartbeat"},
                                       {"time", rfc3339(wall_clock_us())},
                                       {"dropped", client->hub_dropped + client->socket_dropped},
                                       {"queued", client->socket->queued()}};
          send(*client, beat.dump(), true);
        }
        remove_closed(live);
      }
    }
  }

  std::optional<std::string> encode(PendingImage& image) const {
    video::Frame drawn = *image.frame;
    video::draw_overlay(drawn, image.overlay);
    auto jpeg = video::encode_jpeg(drawn, options.jpeg_quality);
    if (!jpeg) return std::nullopt;
    const nlohmann::json message = {
        {"type", "image"}, {"frame", image.frame_index}, {"mime", "image/jpeg"}, {"data", base64(*jpeg)}};
    return message.dump();
  }

  void send_image(LiveStream& live, const std::string& message, int64_t now) {
    for (auto& client : live.clients) {
      if (client->options.jpeg_fps <= 0 || now < client->next_image_us) continue;
      client->next_image_us = now + static_cast<int64_t>(1e6 / client->options.jpeg_fps);
      send(*client, message, true);
    }
  }
};

LiveHub::LiveHub(LiveOptions options, core::metrics::Registry& registry, StoredEvents stored_events)
    : state_(std::make_unique<State>(options, registry, std::move(stored_events))) {}

LiveHub::~LiveHub() {
  std::vector<std::shared_ptr<WebSocket>> sockets;
  {
    std::lock_guard lock(state_->mutex);
    state_->closing = true;
    for (auto& [id, live] : state_->streams) {
      for (auto& client : live.clients) sockets.push_back(client->socket);
    }
    state_->streams.clear();
  }
  state_->wake.notify_all();
  state_->worker.join();
  for (auto& socket : sockets) socket->close(1001, "the service is shutting down");
}

size_t LiveHub::connection_queue() const { return state_->options.client_queue + state_->options.replay_limit + 64; }

void LiveHub::frame(const runtime::FrameResult& frame, const std::string& exercise) {
  State& state = *state_;
  std::lock_guard lock(state.mutex);
  const auto it = state.streams.find(frame.stream_id);
  if (it == state.streams.end() || it->second.clients.empty()) return;
  LiveStream& live = it->second;
  std::optional<std::string> with_keypoints, without_keypoints;
  bool image_due = false;
  const int64_t now = steady_us();
  for (auto& client : live.clients) {
    if (client->options.jpeg_fps > 0 && now >= client->next_image_us) image_due = true;
    if (!client->options.frames) continue;
    std::optional<std::string>& text = client->options.keypoints ? with_keypoints : without_keypoints;
    if (!text) text = runtime::event_json(frame, {.keypoints = client->options.keypoints});
    state.send(*client, *text, true);
  }
  if (image_due && frame.frame) {
    live.pending_image = PendingImage{frame.frame, runtime::overlay_for(frame, exercise), frame.frame_index};
    state.wake.notify_one();
  }
  state.remove_closed(live);
}

void LiveHub::event(const std::string& stream_id, int64_t id, std::string json) {
  State& state = *state_;
  std::lock_guard lock(state.mutex);
  LiveStream& live = state.stream(stream_id);
  for (auto& client : live.clients) state.send(*client, json, false);
  live.events.emplace_back(id, std::move(json));
  while (live.events.size() > state.options.events_kept) {
    live.floor_id = live.events.front().first;
    live.events.pop_front();
  }
  state.remove_closed(live);
}

void LiveHub::attach(const std::string& stream_id, const std::shared_ptr<WebSocket>& socket,
                     const ClientOptions& options, const nlohmann::json& hello) {
  State& state = *state_;
  auto client = std::make_shared<Client>();
  client->socket = socket;
  client->options = options;
  client->next_heartbeat_us = steady_us() + state.options.heartbeat.count() * 1000;
  if (!state.send(*client, hello.dump(), false)) return;

  // Resume, part one: what memory no longer holds comes from the store, read without holding the hub up.
  const bool resume = options.last_event_id >= 0;
  int64_t floor_id = 0;
  if (resume) {
    std::lock_guard lock(state.mutex);
    floor_id = state.stream(stream_id).floor_id;
  }
  std::vector<std::pair<int64_t, std::string>> replay;
  bool complete = true;
  if (resume && options.last_event_id < floor_id) {
    complete = state.stored_events &&
               state.stored_events(stream_id, options.last_event_id, floor_id, state.options.replay_limit, &replay);
    if (replay.size() >= state.options.replay_limit) complete = false;
  }

  std::lock_guard lock(state.mutex);
  LiveStream& live = state.stream(stream_id);
  if (resume) {
    // Part two, from memory: everything newer than what the store gave. If memory moved on meanwhile, events
    // between the two are missing: the client is told to fetch them.
    if (live.floor_id > floor_id && live.floor_id > options.last_event_id) complete = false;
    const int64_t after = std::max(options.last_event_id, floor_id);
    for (const auto& [id, json] : live.events) {
      if (id > after) replay.emplace_back(id, json);
    }
    if (replay.size() > state.options.replay_limit) {
      replay.erase(replay.begin(), replay.end() - static_cast<std::ptrdiff_t>(state.options.replay_limit));
      complete = false;
    }
    for (const auto& [id, json] : replay) {
      if (!state.send(*client, json, false)) return;
    }
    const nlohmann::json resumed = {
        {"type", "resume"},
        {"after", options.last_event_id},
        {"replayed", replay.size()},
        {"first_id", replay.empty() ? nlohmann::json(nullptr) : nlohmann::json(replay.front().first)},
        {"complete", complete}};
    if (!state.send(*client, resumed.dump(), false)) return;
  }
  live.clients.push_back(std::move(client));
  state.clients.add(1);
}

void LiveHub::detach(const WebSocket* socket) {
  State& state = *state_;
  std::lock_guard lock(state.mutex);
  for (auto& [id, live] : state.streams) {
    std::erase_if(live.clients, [&](const std::shared_ptr<Client>& client) {
      if (client->socket.get() != socket) return false;
      state.count_socket_drops(*client);
      state.clients.add(-1);
      return true;
    });
  }
}

void LiveHub::close_stream(const std::string& stream_id) {
  std::vector<std::shared_ptr<WebSocket>> sockets;
  {
    std::lock_guard lock(state_->mutex);
    const auto it = state_->streams.find(stream_id);
    if (it == state_->streams.end()) return;
    for (auto& client : it->second.clients) sockets.push_back(client->socket);
    state_->clients.add(-static_cast<double>(it->second.clients.size()));
    state_->streams.erase(it);
  }
  for (auto& socket : sockets) socket->close(1001, "the stream was deleted");
}

}  // namespace pose::service
