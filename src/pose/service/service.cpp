// The Service's life: opening the store, the model and the exercises, restoring streams, the pipeline's subscriber
// (events to the store, the live clients and the metrics) and the streams' persistence. The HTTP side is api.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "pose/analysis/analysis.h"
#include "pose/runtime/json.h"
#include "pose/service/state.h"
#include "pose/service/text.h"

namespace pose::service {
namespace {

using nlohmann::json;

constexpr int kStreamsFileVersion = 1;

bool is_final(runtime::StreamState state) {
  return state == runtime::StreamState::kEnded || state == runtime::StreamState::kFailed ||
         state == runtime::StreamState::kStopped;
}

json definition_json(const StreamDefinition& d) {
  return {{"id", d.id},       {"source", d.source},     {"exercise", d.exercise},     {"realtime", d.realtime},
          {"loops", d.loops}, {"max_side", d.max_side}, {"created_us", d.created_us}, {"run", d.run}};
}

core::Result<std::vector<StreamDefinition>> load_definitions(const std::filesystem::path& path) {
  std::vector<StreamDefinition> definitions;
  std::ifstream in(path);
  if (!in) return definitions;  // a first start
  const auto corrupt = [&](const std::string& why) {
    return core::make_error(core::ErrorCode::kCorrupt, path.string() + " is not a streams file this build reads (" +
                                                           why + "); it was left as it is: fix or remove it");
  };
  json all;
  try {
    in >> all;
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
  if (!all.is_object() || all.value("version", 0) != kStreamsFileVersion || !all.contains("streams") ||
      !all["streams"].is_array()) {
    return corrupt("expected {\"version\": 1, \"streams\": [...]}");
  }
  try {
    for (const json& item : all["streams"]) {
      StreamDefinition d;
      d.id = item.at("id").get<std::string>();
      d.source = item.at("source").get<std::string>();
      d.exercise = item.at("exercise").get<std::string>();
      d.realtime = item.at("realtime").get<bool>();
      d.loops = item.at("loops").get<int>();
      d.max_side = item.at("max_side").get<int>();
      d.created_us = item.at("created_us").get<int64_t>();
      d.run = item.at("run").get<bool>();
      definitions.push_back(std::move(d));
    }
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
  return definitions;
}

// Write to a temporary file, fsync, rename over the old one, fsync the folder: a crash leaves the old file or the
// new one, never half of either. 0600: sources may carry credentials.
core::Status write_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return core::make_error(core::ErrorCode::kUnavailable, "cannot write " + temporary.string());
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n <= 0) {
      ::close(fd);
      return core::make_error(core::ErrorCode::kUnavailable, "cannot write " + temporary.string());
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(temporary.c_str(), path.c_str()) != 0) {
    return core::make_error(core::ErrorCode::kUnavailable, "cannot replace " + path.string());
  }
  if (const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

core::Result<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return core::make_error(core::ErrorCode::kNotFound, "cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every *.toml of `dir` into `exercises`, replacing same-named ones. A missing folder adds nothing.
core::Status load_exercise_dir(const std::filesystem::path& dir, bool custom,
                               std::map<std::string, ExerciseEntry>& exercises) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return {};
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto text = read_text(file);
    if (!text) return text.error();
    auto parsed = analysis::parse_exercise(*text, file.string());
    if (!parsed) return parsed.error();
    exercises[analysis::exercise_name(**parsed)] = ExerciseEntry{*parsed, std::move(*text), custom};
  }
  return {};
}

}  // namespace

Service::Service(std::unique_ptr<State> state) : state_(std::move(state)) {}

core::Result<std::unique_ptr<Service>> Service::create(const ServiceOptions& options) {
  auto state = std::make_unique<State>();
  State& s = *state;
  s.options = options;
  s.options.pipeline.keep_frames = true;
  const core::Logger& log = s.options.logger;
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir / "exercises", ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            "cannot create the data folder " + options.data_dir.string() + ": " + ec.message());
  }

  // Exercises: the shipped ones, then the ones added through the API.
  if (auto loaded = load_exercise_dir(options.builtin_exercises, false, s.exercises); !loaded) return loaded.error();
  if (auto loaded = load_exercise_dir(options.data_dir / "exercises", true, s.exercises); !loaded) {
    return loaded.error();
  }
  if (s.exercises.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "no exercise definitions in " + options.builtin_exercises.string());
  }
  s.options.pipeline.exercises = s.exercise_list();

  auto definitions = load_definitions(options.data_dir / "streams.json");
  if (!definitions) return definitions.error();

  // The store: one connection for the Writer, one for the API's reads.
  const std::string db = options.db.empty() ? (options.data_dir / "events.sqlite").string() : options.db;
  auto opened = open_store(db, options.retention_days);
  if (!opened) return opened.error();
  s.store = std::move(*opened);
  auto reader = open_store(db);
  if (!reader) return reader.error();
  s.read_store = std::move(*reader);
  store::WriterOptions writer_options;
  writer_options.spool_dir = options.data_dir / "spool";
  writer_options.logger = log.child("store");
  auto writer = store::Writer::create(*s.store, writer_options);
  if (!writer) return writer.error();
  s.writer = std::move(*writer);

  // Metrics observed as they happen (the rest is read at each scrape).
  s.latency = s.registry
                  .histogram("pose_frame_latency_seconds",
                             "per frame: queue (decoded to inference), inference, analysis (to published) and total",
                             core::metrics::exponential_buckets(0.001, 2, 13), {"stream", "stage"})
                  .value();
  s.batch_size =
      &s.registry
           .histogram("pose_inference_batch_size", "frames per inference call, across streams", {1, 2, 4, 8, 16, 32})
           .value()
           ->with({});
  s.inference_seconds = &s.registry
                             .histogram("pose_inference_seconds", "one inference call (a batch)",
                                        core::metrics::exponential_buckets(0.001, 2, 12))
                             .value()
                             ->with({});
  s.events =
      s.registry.counter("pose_events_total", "reps, form issues, anomalies and status changes", {"stream", "kind"})
          .value();
  s.requests = s.registry.counter("pose_http_requests_total", "API requests answered, by status", {"code"}).value();

  State* raw = state.get();
  s.hub = std::make_unique<LiveHub>(options.live, s.registry,
                                    [raw](const std::string& stream_id, int64_t after_id, int64_t up_to_id,
                                          size_t limit, std::vector<std::pair<int64_t, std::string>>* events) {
                                      // Event ids are the records' times: the events after `after_id` are those after
                                      // that time.
                                      store::Query query;
                                      query.stream_id = stream_id;
                                      query.from_us = after_id + 1;
                                      query.to_us = up_to_id + 1;
                                      query.limit = static_cast<int>(std::min<size_t>(limit, 1000));
                                      std::lock_guard lock(raw->read_mutex);
                                      auto page = raw->read_store->query(query);
                                      if (!page) return false;
                                      for (auto& stored : page->records)
                                        events->emplace_back(stored.record.timestamp_us, stored.record.payload);
                                      return true;
                                    });

  if (auto nvml =
          core::sys::Nvml::open(options.nvml_library.empty() ? core::sys::kNvmlLibrary : options.nvml_library)) {
    s.nvml = std::move(*nvml);
  }

  auto pipeline = runtime::Pipeline::create(s.options.pipeline);
  if (!pipeline) return pipeline.error();
  s.pipeline = std::move(*pipeline);
  s.pipeline->subscribe([raw](const runtime::Event& event) { raw->on_event(event); });

  // Restore: every stream comes back; those that were running start again.
  std::lock_guard lock(s.mutex);
  for (auto& definition : *definitions) {
    StreamEntry entry;
    entry.definition = std::move(definition);
    const std::string id = entry.definition.id;
    s.order.push_back(id);
    auto& restored = s.streams[id] = std::move(entry);
    if (restored.definition.run) {
      if (auto started = s.start(restored); !started) {
        restored.state = "failed";
        restored.message = started.error().message;
      } else {
        log.info("stream ", id, " restarted");
      }
    }
  }
  s.streams_created = static_cast<int64_t>(s.order.size());
  s.retrier = std::thread([raw] { raw->retry_failed_live_streams(); });
  return std::unique_ptr<Service>(new Service(std::move(state)));
}

Service::~Service() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mutex);
    s.shutting_down = true;  // the streams' final statuses must not mark them as not to be restarted
  }
  s.retry_wake.notify_all();
  if (s.retrier.joinable()) s.retrier.join();
  s.pipeline->stop();
  s.pipeline->wait();
  s.pipeline.reset();  // its threads are gone: nothing calls on_event any more
  s.hub.reset();
  s.writer.reset();  // writes or spools everything submitted
}

server::http::Router Service::router() { return make_router(*state_); }

std::vector<std::shared_ptr<const analysis::Exercise>> Service::State::exercise_list() const {
  std::vector<std::shared_ptr<const analysis::Exercise>> list;
  for (const auto& [name, entry] : exercises) list.push_back(entry.exercise);
  return list;
}

core::Status Service::State::start(StreamEntry& entry) {
  const StreamDefinition& d = entry.definition;
  runtime::StreamSpec spec;
  spec.id = d.id;
  spec.source.uri = d.source;
  spec.source.realtime = d.realtime;
  spec.source.loops = d.loops;
  spec.source.max_side_px = d.max_side;
  spec.source.max_reconnects = -1;  // a camera that comes back is picked up again, however long it was gone
  spec.exercise = d.exercise;
  spec.exercises = exercise_list();
  runtime::StreamStats previous;  // the finished run this one replaces
  for (const auto& stats : pipeline->stats()) {
    if (stats.stream_id == d.id) previous = stats;
  }
  auto added = pipeline->add_stream(spec);
  if (!added) return added.error();
  entry.totals_before.frames_decoded += previous.frames_decoded;
  entry.totals_before.frames_analysed += previous.frames_analysed;
  entry.totals_before.frames_dropped += previous.frames_dropped;
  entry.totals_before.reconnects += previous.reconnects;
  entry.state = "opening";
  entry.message.clear();
  entry.started_us = wall_clock_us();
  entry.people = json::array();
  entry.fps = 0;
  entry.last_frame_steady_us = 0;
  // A live source never shows the same events twice: its keys carry this run. A file's keys repeat, so analysing
  // it again (after a crash) stores nothing twice.
  entry.records = RecordMaker(is_live_source(d.source) ? std::to_string(entry.started_us) : "");
  entry.definition.run = true;
  save_streams();
  return {};
}

void Service::State::retry_failed_live_streams() {
  std::unique_lock lock(mutex);
  while (!shutting_down) {
    const int64_t now = video::now_us();
    int64_t next = std::numeric_limits<int64_t>::max();
    for (auto& [id, entry] : streams) {
      if (entry.retry_at_us == 0) continue;
      if (!entry.definition.run || entry.state != "failed") {
        entry.retry_at_us = 0;  // stopped, or started through the API meanwhile
      } else if (entry.retry_at_us <= now) {
        entry.retry_at_us = 0;
        ++entry.retries;
        if (auto started = start(entry); !started) {
          options.logger.warn("stream ", id, " could not be started again: ", started.error().message);
          entry.retry_at_us = now + options.live_retry_max.count() * 1000;
        }
      } else {
        next = std::min(next, entry.retry_at_us);
      }
    }
    if (next == std::numeric_limits<int64_t>::max()) {
      retry_wake.wait(lock);
    } else {
      retry_wake.wait_for(lock, std::chrono::microseconds(next - now));
    }
  }
}

void Service::State::save_streams() {
  json all = {{"version", kStreamsFileVersion}, {"streams", json::array()}};
  for (const auto& id : order) all["streams"].push_back(definition_json(streams.at(id).definition));
  if (auto written = write_atomically(options.data_dir / "streams.json", all.dump(2)); !written) {
    options.logger.error("streams are not saved, so a restart will not bring them back: ", written.error().message);
  }
}

void Service::State::on_event(const runtime::Event& event) {
  if (const auto* frame = std::get_if<runtime::FrameResult>(&event)) {
    const runtime::FrameStamps& t = frame->stamps;
    const auto seconds = [](int64_t us) { return static_cast<double>(us) / 1e6; };
    latency->with({frame->stream_id, "queue"}).observe(seconds(t.inference_start_us - t.decoded_us));
    latency->with({frame->stream_id, "inference"}).observe(seconds(t.inference_end_us - t.inference_start_us));
    latency->with({frame->stream_id, "analysis"}).observe(seconds(t.published_us - t.inference_end_us));
    latency->with({frame->stream_id, "total"}).observe(seconds(t.published_us - t.decoded_us));
    if (t.inference_start_us != last_batch_start_us) {
      last_batch_start_us = t.inference_start_us;
      batch_size->observe(frame->batch_size);
      inference_seconds->observe(seconds(t.inference_end_us - t.inference_start_us));
    }
    std::string exercise;
    {
      std::lock_guard lock(mutex);
      if (auto it = streams.find(frame->stream_id); it != streams.end()) {
        StreamEntry& entry = it->second;
        exercise = entry.definition.exercise;
        json people = json::array();
        for (const auto& person : frame->people) {
          people.push_back({{"person", person.track.id},
                            {"exercise", person.state.exercise},
                            {"reps", person.state.reps},
                            {"phase", person.state.phase},
                            {"issues", person.state.active_issues}});
        }
        entry.people = std::move(people);
        // Frames per second, smoothed over about a second of frames.
        const int64_t now = t.published_us;
        if (entry.last_frame_steady_us > 0 && now > entry.last_frame_steady_us) {
          const double instant = 1e6 / static_cast<double>(now - entry.last_frame_steady_us);
          entry.fps = entry.fps <= 0 ? instant : 0.95 * entry.fps + 0.05 * instant;
        }
        entry.last_frame_steady_us = now;
      }
    }
    hub->frame(*frame, exercise);
    return;
  }

  // Rep, form, anomaly, status: numbered, stored, sent live. Ids are wall-clock microseconds made unique, so they
  // keep increasing across restarts and double as the records' times.
  const int64_t id = last_event_id = std::max(last_event_id + 1, wall_clock_us());
  const std::string& stream_id = std::visit([](const auto& e) -> const std::string& { return e.stream_id; }, event);
  std::optional<store::Record> record;
  {
    std::lock_guard lock(mutex);
    auto it = streams.find(stream_id);
    if (const auto* status = std::get_if<runtime::StreamStatusEvent>(&event); status && it != streams.end()) {
      StreamEntry& entry = it->second;
      entry.state = runtime::to_string(status->state);
      entry.message = status->message;
      if (status->state == runtime::StreamState::kRunning) entry.retries = 0;
      if (is_final(status->state) && !shutting_down) {
        entry.fps = 0;
        if (status->state == runtime::StreamState::kFailed && entry.definition.run &&
            is_live_source(entry.definition.source)) {
          // A camera off or a server down now may come back: try again later, stay `run` across a restart.
          const int64_t delay_ms = std::min<int64_t>(options.live_retry_initial.count() << std::min(entry.retries, 20),
                                                     options.live_retry_max.count());
          entry.retry_at_us = video::now_us() + delay_ms * 1000;
          entry.message += "; starting again in " + std::to_string((delay_ms + 999) / 1000) + " s";
          retry_wake.notify_all();
        } else {
          entry.definition.run = false;  // ended, failed or stopped through the API: stays so after a restart
          save_streams();
        }
      }
    }
    if (it != streams.end()) {
      record = it->second.records(event, id, {.keypoints = true, .event_id = id});
    } else {
      RecordMaker records("");  // a deleted stream's last words
      record = records(event, id, {.keypoints = true, .event_id = id});
    }
  }
  if (!record) return;
  events->with({stream_id, record->kind}).inc();
  std::string payload = record->payload;
  writer->submit(std::move(*record));
  hub->event(stream_id, id, std::move(payload));
}

json Service::State::stream_json(const StreamEntry& entry, const runtime::StreamStats* stats) const {
  const StreamDefinition& d = entry.definition;
  json out = {{"id", d.id},
              {"source", video::redact_uri(d.source)},
              {"exercise", d.exercise},
              {"settings", {{"realtime", d.realtime}, {"loops", d.loops}, {"max_side", d.max_side}}},
              {"state", entry.state},
              {"message", entry.message},
              {"created_at", rfc3339(d.created_us)},
              {"started_at", entry.started_us > 0 ? json(rfc3339(entry.started_us)) : json(nullptr)},
              {"people", entry.people},
              {"retries", entry.retries}};
  json counts = {{"frames_decoded", 0}, {"frames_analysed", 0}, {"frames_dropped", 0}, {"reconnects", 0}};
  if (stats) {
    counts = {{"frames_decoded", stats->frames_decoded},
              {"frames_analysed", stats->frames_analysed},
              {"frames_dropped", stats->frames_dropped},
              {"reconnects", stats->reconnects}};
  }
  counts["fps"] = std::round(entry.fps * 10) / 10;
  out["stats"] = std::move(counts);
  return out;
}

namespace {

using GaugeRows = std::vector<std::pair<std::vector<std::string>, double>>;

template <class Metric>
void rows_into(core::metrics::Family<Metric>& family, const GaugeRows& rows) {
  for (const auto& [labels, value] : rows) {
    if constexpr (std::is_same_v<Metric, core::metrics::Counter>) {
      family.with(labels).inc(value);
    } else {
      family.with(labels).set(value);
    }
  }
}

}  // namespace

std::string Service::State::metrics_text() {
  // Read at each scrape into a fresh registry: streams come and go, and what is gone must not linger.
  core::metrics::Registry now;
  GaugeRows decoded, analysed, dropped, reconnects, queued, fps, up;
  const std::vector<runtime::StreamStats> all = pipeline->stats();
  {
    std::lock_guard lock(mutex);
    for (const auto& id : order) {
      const StreamEntry& entry = streams.at(id);
      runtime::StreamStats current;
      for (const auto& stats : all) {
        if (stats.stream_id == id) current = stats;
      }
      const runtime::StreamStats& before = entry.totals_before;
      decoded.push_back({{id}, static_cast<double>(before.frames_decoded + current.frames_decoded)});
      analysed.push_back({{id}, static_cast<double>(before.frames_analysed + current.frames_analysed)});
      dropped.push_back({{id}, static_cast<double>(before.frames_dropped + current.frames_dropped)});
      reconnects.push_back({{id}, static_cast<double>(before.reconnects + current.reconnects)});
      queued.push_back({{id}, static_cast<double>(current.queued_frames)});
      fps.push_back({{id}, entry.fps});
      up.push_back({{id}, entry.state == "running" || entry.state == "opening" ? 1.0 : 0.0});
    }
  }
  rows_into(*now.counter("pose_stream_frames_decoded_total", "frames decoded", {"stream"}).value(), decoded);
  rows_into(*now.counter("pose_stream_frames_analysed_total", "frames analysed", {"stream"}).value(), analysed);
  rows_into(*now.counter("pose_stream_frames_dropped_total",
                         "frames dropped to stay real-time (by a live source or a full queue)", {"stream"})
                 .value(),
            dropped);
  rows_into(*now.counter("pose_stream_reconnects_total", "live sources reopened", {"stream"}).value(), reconnects);
  rows_into(*now.gauge("pose_stream_queue_frames", "frames decoded and waiting for inference", {"stream"}).value(),
            queued);
  rows_into(*now.gauge("pose_stream_fps", "frames analysed per second", {"stream"}).value(), fps);
  rows_into(*now.gauge("pose_stream_up", "1 while the stream opens or runs", {"stream"}).value(), up);

  const store::WriterStats writer_stats = writer->stats();
  const auto gauge = [&](const char* name, const char* help, double value) {
    now.gauge(name, help).value()->with({}).set(value);
  };
  gauge("pose_store_up", "1 while the event store takes writes", writer_stats.store_up ? 1 : 0);
  gauge("pose_store_write_lag_seconds", "age of the oldest event not yet in the store",
        static_cast<double>(writer_stats.write_lag_us) / 1e6);
  gauge("pose_store_spool_records", "events waiting in the disk spool for the store to come back",
        static_cast<double>(writer_stats.spool_records));
  gauge("pose_store_queued_records", "events waiting in memory for the next write",
        static_cast<double>(writer_stats.queued));
  now.counter("pose_store_written_total", "events written to the store")
      .value()
      ->with({})
      .inc(static_cast<double>(writer_stats.written));
  now.counter("pose_store_failures_total", "store writes that failed (their events were spooled)")
      .value()
      ->with({})
      .inc(static_cast<double>(writer_stats.failures));

  gauge("pose_nvml_up", "1 when NVML (the NVIDIA driver) answered", nvml ? 1 : 0);
  if (nvml) {
    std::lock_guard lock(nvml_mutex);
    if (auto gpus = nvml->gpus(); gpus && !gpus->empty()) {
      auto* used =
          now.gauge("pose_gpu_memory_used_bytes", "GPU memory in use (all processes)", {"gpu", "name"}).value();
      auto* total = now.gauge("pose_gpu_memory_total_bytes", "GPU memory in total", {"gpu", "name"}).value();
      for (const auto& gpu : *gpus) {
        used->with({std::to_string(gpu.index), gpu.name}).set(static_cast<double>(gpu.memory_used_bytes));
        total->with({std::to_string(gpu.index), gpu.name}).set(static_cast<double>(gpu.memory_total_bytes));
      }
    }
  }
  return registry.prometheus_text() + now.prometheus_text();
}

}  // namespace pose::service
