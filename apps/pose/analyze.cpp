// pose analyze and pose bench-streams: the analysis pipeline (pose::runtime) from the command line.
#include "analyze.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/libtorch/libtorch.h"
#include "pose/runtime/json.h"
#ifdef WB_HAVE_STORE
#include "pose/service/records.h"
#endif

namespace pose_cli {
namespace {

#ifdef WB_HAVE_STORE
using pose::service::is_live_source;
using pose::service::open_store;
using pose::service::RecordMaker;
#endif

using pose::runtime::Event;
using pose::runtime::FrameResult;

pose::video::SourceOptions source_options(const core::config::Config& config, const std::string& uri) {
  pose::video::SourceOptions options;
  options.uri = uri;
  options.realtime = config.boolean("analyze.realtime");
  options.max_side_px = static_cast<int>(config.integer("analyze.max_side"));
  options.decoder = config.text("analyze.decoder");
  options.loops = static_cast<int>(config.integer("analyze.loops"));
  return options;
}

// "out.mp4" for one stream; "out-s2.mp4" for the second of several.
std::string output_path(const std::string& path, const std::string& stream_id, size_t streams) {
  if (streams == 1) return path;
  const std::filesystem::path p(path);
  return (p.parent_path() / (p.stem().string() + "-" + stream_id + p.extension().string())).string();
}

// Draws and encodes annotated frames on its own thread: encoding 1080p costs more than analysing it, and the
// analysis thread must not wait for it longer than a bounded queue allows.
class Annotator {
 public:
  Annotator(std::string path, size_t streams, std::string exercise)
      : path_(std::move(path)), streams_(streams), exercise_(std::move(exercise)), thread_([this] { run(); }) {}
  ~Annotator() { close(); }

  void push(const FrameResult& frame) {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [this] { return queue_.size() < kCapacity; });
    queue_.push_back(frame);
    lock.unlock();
    ready_.notify_one();
  }

  // Returns the first error, if any writer failed.
  std::string close() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
    for (auto& [id, writer] : writers_) {
      if (writer) {
        auto closed = writer->close();
        if (!closed && error_.empty()) error_ = closed.error().message;
      }
    }
    writers_.clear();
    return error_;
  }

 private:
  static constexpr size_t kCapacity = 8;

  void run() {
    while (true) {
      FrameResult frame;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;
        frame = std::move(queue_.front());
        queue_.pop_front();
      }
      space_.notify_one();
      write(frame);
    }
  }

  void write(const FrameResult& result) {
    if (!result.frame) return;
    auto& writer = writers_[result.stream_id];
    if (!writer) {
      if (failed_.count(result.stream_id) != 0) return;
      const double fps = result.source_fps > 0 ? result.source_fps : 30.0;
      auto created =
          pose::video::Writer::create(output_path(path_, result.stream_id, streams_), result.width, result.height, fps);
      if (!created) {
        failed_.insert({result.stream_id, true});
        if (error_.empty()) error_ = created.error().message;
        return;
      }
      writer = std::move(*created);
    }
    pose::video::Frame drawn = *result.frame;
    pose::video::draw_overlay(drawn, pose::runtime::overlay_for(result, exercise_));
    auto written = writer->write(drawn);
    if (!written && error_.empty()) error_ = written.error().message;
  }

  std::string path_;
  size_t streams_;
  std::string exercise_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<FrameResult> queue_;
  bool closing_ = false;
  std::map<std::string, std::unique_ptr<pose::video::Writer>> writers_;  // annotator thread only, then close()
  std::map<std::string, bool> failed_;
  std::string error_;
  std::thread thread_;
};

struct StreamRecord {
  std::string source;
  std::string error;
  int64_t last_pts_us = 0;
  int64_t frames = 0;
  int reps = 0;
  std::vector<double> latency_ms;
  std::vector<double> inference_ms;  // of the batch each frame was in
  int64_t batch_sum = 0;
  int64_t first_published_us = -1, last_published_us = -1;
};

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = q * static_cast<double>(values.size() - 1);
  const auto low = static_cast<size_t>(rank);
  const size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (values[high] - values[low]) * (rank - static_cast<double>(low));
}

nlohmann::json latency_json(const std::vector<double>& latency_ms) {
  return {{"p50", percentile(latency_ms, 0.50)},
          {"p95", percentile(latency_ms, 0.95)},
          {"p99", percentile(latency_ms, 0.99)},
          {"max", latency_ms.empty() ? 0.0 : *std::max_element(latency_ms.begin(), latency_ms.end())}};
}

}  // namespace

core::Result<pose::runtime::PipelineOptions> pipeline_options(const core::config::Config& config) {
  pose::runtime::PipelineOptions options;
  options.estimator = estimator_options(config);
  options.estimator.track = false;  // frames of several streams share one estimator; tracking is pose::track's
  auto exercises = pose::analysis::load_exercises(config.path("analyze.exercises_dir"));
  if (!exercises) return exercises.error();
  options.exercises = std::move(*exercises);
  options.max_batch = static_cast<int>(config.integer("pose.batch_size"));
  options.max_wait_us = static_cast<int64_t>(config.number("runtime.max_wait_ms") * 1000.0);
  options.logger = core::Logger(core::stderr_sink(), core::LogLevel::kWarn, "pose");
  core::libtorch::set_threads(static_cast<int>(config.integer("pose.threads")));
  core::libtorch::keep_freed_memory();
  if (options.estimator.device == pose::engine::Device::kCuda) {
    core::libtorch::allow_tf32(options.estimator.precision != pose::engine::Precision::kFloat32);
  }
  return options;
}

int analyze(const core::config::Config& config) {
  const auto& args = config.positional();
  if (args.size() < 2) {
    std::cerr << "pose analyze: give one or more sources (files, folders, cameras, rtsp:// or http:// URLs):\n"
                 "  pose analyze SOURCE... [--exercise NAME|auto] [--json SUMMARY] [--events EVENTS.jsonl]"
                 " [--annotate OUT.mp4]\n";
    return 2;
  }
  auto options = pipeline_options(config);
  if (!options) {
    std::cerr << "pose analyze: " << options.error().message << "\n";
    return 2;
  }
  const std::string& annotate_path = config.text("analyze.annotate");
  const std::string& events_path = config.text("analyze.events");
  const std::string& exercise = config.text("analyze.exercise");
  options->keep_frames = !annotate_path.empty();
  std::ofstream events;
  if (!events_path.empty()) {
    events.open(events_path);
    if (!events) {
      std::cerr << "pose analyze: cannot write " << events_path << "\n";
      return 2;
    }
  }
  auto pipeline = pose::runtime::Pipeline::create(*options);
  if (!pipeline) {
    std::cerr << "pose analyze: " << pipeline.error().message << "\n";
    return 2;
  }
  const size_t stream_count = args.size() - 1;
  std::unique_ptr<Annotator> annotator;
  if (!annotate_path.empty()) annotator = std::make_unique<Annotator>(annotate_path, stream_count, exercise);

#ifdef WB_HAVE_STORE
  // --db: every event but frames into the store, batched off the analysis thread.
  std::unique_ptr<store::Store> event_store;
  std::unique_ptr<store::Writer> writer;
  if (const std::string& db = config.text("analyze.db"); !db.empty()) {
    auto opened = open_store(db);
    if (!opened) {
      std::cerr << "pose analyze: " << opened.error().message << "\n";
      return 2;
    }
    event_store = std::move(opened.value());
    store::WriterOptions writer_options;
    writer_options.spool_dir = config.path("analyze.spool");
    writer_options.logger = core::Logger(core::stderr_sink(), core::LogLevel::kInfo, "store");
    auto created = store::Writer::create(*event_store, writer_options);
    if (!created) {
      std::cerr << "pose analyze: " << created.error().message << "\n";
      return 2;
    }
    writer = std::move(created.value());
  }
  bool live = false;
  for (size_t i = 1; i < args.size(); ++i) live = live || is_live_source(args[i]);
  const auto start_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  RecordMaker make_record(live ? std::to_string(start_us) : "");
#endif
  std::mutex records_mutex;
  std::map<std::string, StreamRecord> records;
  const bool frames_in_events = config.boolean("analyze.events_frames");
  (*pipeline)->subscribe([&](const Event& event) {
#ifdef WB_HAVE_STORE
    if (writer) {
      const auto wall_us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (auto record = make_record(event, wall_us)) writer->submit(std::move(*record));
    }
#endif
    if (events.is_open()) {
      if (frames_in_events || !std::holds_alternative<FrameResult>(event)) {
        events << pose::runtime::event_json(event) << "\n";
      }
    }
    std::lock_guard lock(records_mutex);
    if (const auto* frame = std::get_if<FrameResult>(&event)) {
      auto& record = records[frame->stream_id];
      record.last_pts_us = frame->pts_us;
      ++record.frames;
      if (annotator) annotator->push(*frame);
    } else if (const auto* status = std::get_if<pose::runtime::StreamStatusEvent>(&event)) {
      auto& record = records[status->stream_id];
      if (status->state == pose::runtime::StreamState::kFailed) record.error = status->message;
      if (status->state == pose::runtime::StreamState::kFailed || status->state == pose::runtime::StreamState::kEnded) {
        std::fprintf(stderr, "%s: %s%s%s\n", status->stream_id.c_str(), pose::runtime::to_string(status->state),
                     status->message.empty() ? "" : ": ", status->message.c_str());
      }
    } else if (const auto* analysis = std::get_if<pose::runtime::AnalysisEvent>(&event)) {
      if (const auto* rep = std::get_if<pose::analysis::RepEvent>(&analysis->event)) {
        ++records[analysis->stream_id].reps;
        (void)rep;
      }
    }
  });

  std::vector<std::string> ids;
  for (size_t i = 1; i < args.size(); ++i) {
    pose::runtime::StreamSpec spec{
        .id = "", .source = source_options(config, args[i]), .exercise = exercise, .exercises = {}};
    auto id = (*pipeline)->add_stream(spec);
    if (!id) {
      std::cerr << "pose analyze: " << id.error().message << "\n";
      return 2;
    }
    std::lock_guard lock(records_mutex);
    records[*id].source = pose::video::redact_uri(args[i]);
    ids.push_back(*id);
  }

  // Progress on stderr every two seconds while streams run.
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::thread progress([&] {
    std::unique_lock lock(done_mutex);
    while (!done_cv.wait_for(lock, std::chrono::seconds(2), [&] { return done; })) {
      std::string line;
      for (const auto& stats : (*pipeline)->stats()) {
        line += stats.stream_id + " " + std::to_string(stats.frames_analysed) + " frames";
        std::lock_guard records_lock(records_mutex);
        line += ", " + std::to_string(records[stats.stream_id].reps) + " reps  ";
      }
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  });
  (*pipeline)->wait();
  {
    std::lock_guard lock(done_mutex);
    done = true;
  }
  done_cv.notify_all();
  progress.join();

#ifdef WB_HAVE_STORE
  if (writer) {
    writer->flush();
    const auto stats = writer->stats();
    std::fprintf(
        stderr, "stored %lld events in %s%s\n", static_cast<long long>(stats.submitted),
        event_store->describe().c_str(),
        stats.spool_records > 0
            ? (", " + std::to_string(stats.spool_records) + " waiting in the spool until the database is back").c_str()
            : "");
    writer.reset();
  }
#endif
  std::string annotate_error = annotator ? annotator->close() : "";
  std::vector<pose::runtime::StreamSummary> summaries;
  const auto all_stats = (*pipeline)->stats();
  const auto people = (*pipeline)->summaries();
  bool any_failed = false;
  for (size_t i = 0; i < all_stats.size(); ++i) {
    const auto& record = records[all_stats[i].stream_id];
    pose::runtime::StreamSummary summary{.stream_id = all_stats[i].stream_id,
                                         .source = record.source,
                                         .exercise = exercise,
                                         .stats = all_stats[i],
                                         .error = record.error,
                                         .media_duration_s = static_cast<double>(record.last_pts_us) / 1e6,
                                         .people = people[i].second};
    any_failed = any_failed || !record.error.empty();
    std::printf("%s  %s  %lld frames, %.1f s%s\n", summary.stream_id.c_str(), summary.source.c_str(),
                static_cast<long long>(summary.stats.frames_analysed), summary.media_duration_s,
                record.error.empty() ? "" : ("  FAILED: " + record.error).c_str());
    for (const auto& person : summary.people) {
      std::printf("  person %lld  %-14s reps %-3d", static_cast<long long>(person.track_id),
                  person.exercise.empty() ? "-" : person.exercise.c_str(), person.reps);
      if (person.reps > 0) {
        std::printf(" rep %.1f s (down %.1f s, up %.1f s), range %.0f deg", person.mean_rep_duration_s,
                    person.mean_eccentric_s, person.mean_concentric_s, person.mean_range_of_motion_deg);
      }
      if (person.longest_hold_us > 0) std::printf(" hold %.1f s", static_cast<double>(person.longest_hold_us) / 1e6);
      if (person.anomalous_reps > 0) std::printf(", %d anomalous", person.anomalous_reps);
      for (const auto& [rule, count] : person.form_issue_counts) std::printf(", %s x%d", rule.c_str(), count);
      std::printf("\n");
    }
    summaries.push_back(std::move(summary));
  }
  if (!config.path("out.json").empty()) {
    std::ofstream out(config.path("out.json"));
    out << pose::runtime::summary_json(options->estimator.model, summaries) << "\n";
    if (!out) {
      std::cerr << "pose analyze: cannot write " << config.text("out.json") << "\n";
      return 2;
    }
  }
  if (!annotate_error.empty()) {
    std::cerr << "pose analyze: annotated video: " << annotate_error << "\n";
    return 2;
  }
  return any_failed ? 1 : 0;
}

int bench_streams(const core::config::Config& config) {
  const std::string& source = config.text("bench.source");
  const auto stream_count = config.integer("pose.streams_per_device");
  if (source.empty() || stream_count < 1) {
    std::cerr << "pose bench-streams: --source FILE and --streams N (at least 1) are needed\n";
    return 2;
  }
  auto options = pipeline_options(config);
  if (!options) {
    std::cerr << "pose bench-streams: " << options.error().message << "\n";
    return 2;
  }
  auto pipeline = pose::runtime::Pipeline::create(*options);
  if (!pipeline) {
    std::cerr << "pose bench-streams: " << pipeline.error().message << "\n";
    return 2;
  }
  std::mutex records_mutex;
  std::map<std::string, StreamRecord> records;
  std::ofstream trace;
  if (!config.path("bench.trace").empty()) {
    trace.open(config.path("bench.trace"));
    trace << "stream,frame,batch,decoded_us,inference_start_us,inference_end_us,published_us\n";
  }
  (*pipeline)->subscribe([&](const Event& event) {
    std::lock_guard lock(records_mutex);
    if (const auto* frame = std::get_if<FrameResult>(&event)) {
      if (trace.is_open()) {
        const auto& stamps = frame->stamps;
        trace << frame->stream_id << ',' << frame->frame_index << ',' << frame->batch_size << ',' << stamps.decoded_us
              << ',' << stamps.inference_start_us << ',' << stamps.inference_end_us << ',' << stamps.published_us
              << '\n';
      }
      auto& record = records[frame->stream_id];
      record.latency_ms.push_back(static_cast<double>(frame->stamps.published_us - frame->stamps.decoded_us) / 1e3);
      record.inference_ms.push_back(
          static_cast<double>(frame->stamps.inference_end_us - frame->stamps.inference_start_us) / 1e3);
      record.batch_sum += frame->batch_size;
      if (record.first_published_us < 0) record.first_published_us = frame->stamps.published_us;
      record.last_published_us = frame->stamps.published_us;
      ++record.frames;
    } else if (const auto* status = std::get_if<pose::runtime::StreamStatusEvent>(&event)) {
      if (status->state == pose::runtime::StreamState::kFailed) records[status->stream_id].error = status->message;
    }
  });
  // Copies of one file, paced at its frame rate unless --no-realtime: they behave as live cameras (newest frame
  // wins), so a pipeline that cannot keep up shows drops rather than a growing backlog.
  for (int64_t i = 0; i < stream_count; ++i) {
    pose::runtime::StreamSpec spec{
        .id = "", .source = source_options(config, source), .exercise = "auto", .exercises = {}};
    spec.source.realtime = !config.boolean("bench.no_realtime");
    auto id = (*pipeline)->add_stream(spec);
    if (!id) {
      std::cerr << "pose bench-streams: " << id.error().message << "\n";
      return 2;
    }
  }
  (*pipeline)->wait();
  const auto stats = (*pipeline)->stats();
  nlohmann::json per_stream = nlohmann::json::array();
  std::vector<double> all_latency, all_inference;
  int64_t batch_sum = 0, frames = 0;
  double fps_min = 0;
  int64_t dropped = 0;
  bool failed = false;
  for (size_t i = 0; i < stats.size(); ++i) {
    const auto& record = records[stats[i].stream_id];
    const double seconds = static_cast<double>(record.last_published_us - record.first_published_us) / 1e6;
    const double fps = seconds > 0 ? static_cast<double>(record.frames - 1) / seconds : 0.0;
    fps_min = i == 0 ? fps : std::min(fps_min, fps);
    dropped += stats[i].frames_dropped;
    failed = failed || !record.error.empty();
    all_latency.insert(all_latency.end(), record.latency_ms.begin(), record.latency_ms.end());
    all_inference.insert(all_inference.end(), record.inference_ms.begin(), record.inference_ms.end());
    batch_sum += record.batch_sum;
    frames += record.frames;
    nlohmann::json entry = {{"id", stats[i].stream_id},
                            {"analysed_fps", fps},
                            {"frames_analysed", stats[i].frames_analysed},
                            {"frames_dropped", stats[i].frames_dropped},
                            {"latency_ms", latency_json(record.latency_ms)}};
    if (!record.error.empty()) entry["error"] = record.error;
    per_stream.push_back(std::move(entry));
  }
  const nlohmann::json report = {
      {"streams", stream_count},
      {"source", source},
      {"model", options->estimator.model},
      {"device", config.text("pose.device")},
      {"max_side_px", config.integer("analyze.max_side")},
      {"decoder", config.text("analyze.decoder")},
      {"loops", config.integer("analyze.loops")},
      {"max_batch", options->max_batch},
      {"realtime", !config.boolean("bench.no_realtime")},
      {"min_analysed_fps", fps_min},
      {"frames_dropped", dropped},
      {"latency_ms", latency_json(all_latency)},
      {"inference_ms_per_batch", latency_json(all_inference)},
      {"mean_batch", frames > 0 ? static_cast<double>(batch_sum) / static_cast<double>(frames) : 0.0},
      {"per_stream", std::move(per_stream)}};
  std::cout << report.dump(2) << "\n";
  return failed ? 1 : 0;
}

#ifdef WB_HAVE_STORE
int events(const core::config::Config& config) {
  const std::string& db = config.text("analyze.db");
  if (db.empty()) {
    std::cerr << "pose events: give --db (the SQLite file or PostgreSQL URI pose analyze wrote to)\n";
    return 2;
  }
  auto opened = open_store(db);
  if (!opened) {
    std::cerr << "pose events: " << opened.error().message << "\n";
    return 1;
  }
  store::Query query;
  query.stream_id = config.text("events.stream");
  query.kind = config.text("events.kind");
  if (const auto& exercise = config.text("analyze.exercise"); exercise != "auto") query.exercise = exercise;
  query.limit = 1000;
  int64_t left = config.integer("events.limit");
  while (left > 0) {
    query.limit = static_cast<int>(std::min<int64_t>(left, 1000));
    auto page = (*opened)->query(query);
    if (!page) {
      std::cerr << "pose events: " << page.error().message << "\n";
      return 1;
    }
    for (const auto& stored : page->records) std::cout << stored.record.payload << "\n";
    left -= static_cast<int64_t>(page->records.size());
    if (page->next_after_id == 0) break;
    query.after_id = page->next_after_id;
  }
  return 0;
}
#endif

}  // namespace pose_cli
