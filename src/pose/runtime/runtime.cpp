#include "pose/runtime/runtime.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

namespace pose::runtime {

const char* to_string(StreamState state) {
  switch (state) {
    case StreamState::kOpening: return "opening";
    case StreamState::kRunning: return "running";
    case StreamState::kEnded: return "ended";
    case StreamState::kFailed: return "failed";
    case StreamState::kStopped: return "stopped";
  }
  return "unknown";
}

namespace {

// What a stream's decoder hands the scheduler: a frame, or the stream's last word (ended, failed, stopped), which
// travels behind the frames so subscribers see it after the stream's last result.
struct StreamEnd {
  StreamState state = StreamState::kEnded;
  std::string message;
};
using InboxItem = std::variant<video::Frame, StreamEnd>;

struct Stream {
  explicit Stream(StreamSpec stream_spec) : spec(std::move(stream_spec)) {}

  StreamSpec spec;
  // Guarded by Pipeline::inbox_mutex_.
  std::deque<InboxItem> inbox;
  bool keep_newest = false;  // live or paced: a full inbox drops its oldest frame
  bool end_taken = false;    // the scheduler has passed the end on

  // The decoder has returned (or is about to) once the stream is finished, and only finished streams are
  // forgotten: joining here never waits long.
  ~Stream() {
    if (decoder.joinable()) decoder.join();
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Guarded by source_mutex: stop() may come from any thread while the decoder opens or reads.
  mutable std::mutex source_mutex;
  std::unique_ptr<video::Source> source;
  bool stop_requested = false;
  std::atomic<bool> stopping{false};  // stop_requested, readable without source_mutex (a blocked enqueue)
  std::thread decoder;

  // Guarded by Pipeline::streams_mutex_.
  bool finished = false;  // its final status is published
  bool forget = false;    // remove_stream: drop it once finished

  // Analysis thread only.
  std::unique_ptr<track::Tracker> tracker;
  std::unique_ptr<analysis::StreamAnalyzer> analyzer;

  std::atomic<StreamState> state{StreamState::kOpening};
  std::atomic<int64_t> frames_decoded{0};
  std::atomic<int64_t> frames_analysed{0};
  std::atomic<int64_t> queue_dropped{0};
  std::atomic<int> source_width{0}, source_height{0};
  std::atomic<double> source_fps{0};
};

// What the scheduler hands the analysis thread.
struct Inferred {
  Stream* stream = nullptr;
  std::optional<video::Frame> frame;  // empty for a status
  std::vector<engine::Person> people;
  FrameStamps stamps;
  int batch_size = 0;
  std::optional<StreamStatusEvent> status;
};

class PipelineImpl final : public Pipeline {
 public:
  PipelineImpl(PipelineOptions options, std::unique_ptr<engine::Estimator> estimator)
      : options_(std::move(options)), estimator_(std::move(estimator)) {
    scheduler_ = std::thread([this] {
      warmed_.set_value(warm_up());
      schedule();
    });
    analyser_ = std::thread([this] { analyse(); });
  }

  // The scheduler's warm-up, done: Pipeline::create waits for it so no stream pays for it.
  core::Result<void> warmed() { return warmed_future_.get(); }

  ~PipelineImpl() override {
    stop();
    for (auto& stream : streams_snapshot()) {
      if (stream->decoder.joinable()) stream->decoder.join();
    }
    {
      std::lock_guard lock(inbox_mutex_);
      shutting_down_ = true;
    }
    inbox_cv_.notify_all();
    scheduler_.join();
    {
      std::lock_guard lock(results_mutex_);
      results_closed_ = true;
    }
    results_cv_.notify_all();
    analyser_.join();
  }

  void subscribe(Subscriber subscriber) override {
    std::lock_guard lock(subscribers_mutex_);
    subscribers_.push_back(std::move(subscriber));
  }

  core::Result<std::string> add_stream(const StreamSpec& spec) override {
    auto stream = std::make_shared<Stream>(spec);
    analysis::AnalyzerOptions analyzer_options = options_.analyzer;
    analyzer_options.exercise = spec.exercise;
    analyzer_options.exercises = spec.exercises.empty() ? options_.exercises : spec.exercises;
    auto analyzer = analysis::StreamAnalyzer::create(analyzer_options);
    if (!analyzer) return analyzer.error();
    stream->analyzer = std::move(*analyzer);
    stream->tracker = std::make_unique<track::Tracker>(options_.tracker);
    Stream* raw = stream.get();
    std::shared_ptr<Stream> replaced;  // a finished stream of the same id, destroyed outside the lock
    {
      std::lock_guard lock(streams_mutex_);
      if (stopped_) return core::make_error(core::ErrorCode::kUnavailable, "the pipeline is stopping");
      if (raw->spec.id.empty()) raw->spec.id = "s" + std::to_string(++streams_added_);
      const auto same = std::find_if(streams_.begin(), streams_.end(),
                                     [&](const auto& other) { return other->spec.id == raw->spec.id; });
      if (same != streams_.end()) {
        if (!(*same)->finished) {
          return core::make_error(core::ErrorCode::kInvalidArgument,
                                  "stream id '" + raw->spec.id + "' is taken by a stream still running");
        }
        replaced = std::move(*same);
        streams_.erase(same);
      }
      streams_.push_back(std::move(stream));
    }
    {
      std::lock_guard lock(inbox_mutex_);
      active_streams_.push_back(raw);
    }
    raw->decoder = std::thread([this, raw] { decode(*raw); });
    return raw->spec.id;
  }

  void wait() override {
    std::unique_lock lock(streams_mutex_);
    streams_cv_.wait(lock, [this] {
      return std::all_of(streams_.begin(), streams_.end(), [](const auto& stream) { return stream->finished; });
    });
  }

  void stop() override {
    for (auto& stream : streams_snapshot()) request_stop(*stream);
    {
      std::lock_guard lock(streams_mutex_);
      stopped_ = true;
    }
    wake_decoders();
  }

  core::Status stop_stream(const std::string& id) override {
    std::shared_ptr<Stream> stream = find(id);
    if (!stream) return unknown_stream(id);
    request_stop(*stream);
    wake_decoders();
    return {};
  }

  core::Status remove_stream(const std::string& id) override {
    std::shared_ptr<Stream> stream = find(id);
    if (!stream) return unknown_stream(id);
    request_stop(*stream);
    wake_decoders();
    std::shared_ptr<Stream> forgotten;  // destroyed outside the lock
    std::lock_guard lock(streams_mutex_);
    stream->forget = true;
    if (stream->finished) forgotten = take(*stream);
    return {};
  }

  std::vector<StreamStats> stats() const override {
    std::vector<StreamStats> all;
    for (const auto& stream : streams_snapshot()) {
      StreamStats stats{.stream_id = stream->spec.id,
                        .state = stream->state.load(),
                        .frames_decoded = stream->frames_decoded.load(),
                        .frames_analysed = stream->frames_analysed.load(),
                        .frames_dropped = stream->queue_dropped.load(),
                        .reconnects = 0,
                        .queued_frames = 0};
      {
        std::lock_guard lock(inbox_mutex_);
        stats.queued_frames =
            static_cast<int64_t>(std::count_if(stream->inbox.begin(), stream->inbox.end(), [](const InboxItem& item) {
              return std::holds_alternative<video::Frame>(item);
            }));
      }
      std::lock_guard lock(stream->source_mutex);
      if (stream->source) {
        const video::SourceStats source_stats = stream->source->stats();
        stats.frames_dropped += source_stats.frames_dropped;
        stats.reconnects = source_stats.reconnects;
      }
      all.push_back(stats);
    }
    return all;
  }

  std::vector<std::pair<std::string, std::vector<analysis::PersonSummary>>> summaries() const override {
    std::lock_guard analysis_lock(analysis_mutex_);
    std::vector<std::pair<std::string, std::vector<analysis::PersonSummary>>> all;
    for (const auto& stream : streams_snapshot()) all.emplace_back(stream->spec.id, stream->analyzer->summary());
    return all;
  }

 private:
  // Shared: a stream forgotten meanwhile lives on until the caller is done with it.
  std::vector<std::shared_ptr<Stream>> streams_snapshot() const {
    std::lock_guard lock(streams_mutex_);
    return streams_;
  }

  std::shared_ptr<Stream> find(const std::string& id) const {
    std::lock_guard lock(streams_mutex_);
    for (const auto& stream : streams_) {
      if (stream->spec.id == id) return stream;
    }
    return nullptr;
  }

  static core::Status unknown_stream(const std::string& id) {
    return core::make_error(core::ErrorCode::kNotFound, "no stream '" + id + "'");
  }

  // Removes the stream from streams_ (the caller holds streams_mutex_) and hands it over.
  std::shared_ptr<Stream> take(const Stream& stream) {
    const auto it =
        std::find_if(streams_.begin(), streams_.end(), [&](const auto& other) { return other.get() == &stream; });
    if (it == streams_.end()) return nullptr;
    std::shared_ptr<Stream> taken = std::move(*it);
    streams_.erase(it);
    return taken;
  }

  static void request_stop(Stream& stream) {
    std::lock_guard lock(stream.source_mutex);
    stream.stop_requested = true;
    stream.stopping = true;
    if (stream.source) stream.source->stop();
  }

  // A decoder blocked on a full queue rechecks whether it was stopped.
  void wake_decoders() {
    { std::lock_guard lock(inbox_mutex_); }
    space_cv_.notify_all();
  }

  // The stream's thread: open the source, then decode until it ends, fails or is stopped.
  void decode(Stream& stream) {
    post_status(stream, StreamState::kOpening, video::redact_uri(stream.spec.source.uri));
    video::SourceOptions source_options = stream.spec.source;
    if (!source_options.logger.enabled(core::LogLevel::kError)) source_options.logger = options_.logger.child("video");
    auto opened = video::Source::open(source_options);
    if (!opened) {
      finish(stream, {StreamState::kFailed, opened.error().message});
      return;
    }
    video::Source* source = nullptr;
    {
      std::lock_guard lock(stream.source_mutex);
      stream.source = std::move(*opened);
      source = stream.source.get();
      if (stream.stop_requested) source->stop();
    }
    const video::SourceInfo& info = source->info();
    stream.source_width = info.source_width;
    stream.source_height = info.source_height;
    stream.source_fps = info.fps;
    {
      std::lock_guard lock(inbox_mutex_);
      stream.keep_newest = info.kind == video::SourceKind::kCamera || info.kind == video::SourceKind::kNetwork ||
                           source_options.realtime;
    }
    post_status(stream, StreamState::kRunning, describe(info));
    while (true) {
      auto frame = source->next();
      if (!frame) {
        finish(stream, {StreamState::kFailed, frame.error().message});
        return;
      }
      if (!*frame) {
        std::lock_guard lock(stream.source_mutex);
        finish(stream, {stream.stop_requested ? StreamState::kStopped : StreamState::kEnded, ""});
        return;
      }
      stream.frames_decoded.fetch_add(1);
      if (!enqueue(stream, std::move(**frame))) {
        finish(stream, {StreamState::kStopped, ""});
        return;
      }
    }
  }

  static std::string describe(const video::SourceInfo& info) {
    std::string text = std::string(video::to_string(info.kind)) + " " + info.uri + ", " +
                       std::to_string(info.source_width) + "x" + std::to_string(info.source_height);
    if (info.width != info.source_width)
      text += " analysed at " + std::to_string(info.width) + "x" + std::to_string(info.height);
    if (info.fps > 0) text += ", " + std::to_string(std::lround(info.fps)) + " fps";
    if (!info.codec.empty()) text += ", " + info.codec;
    return text;
  }

  // False when the pipeline stopped while a blocking push waited for room.
  bool enqueue(Stream& stream, video::Frame frame) {
    std::unique_lock lock(inbox_mutex_);
    // Live: one frame waits, the newest; anything older would only add latency.
    const size_t capacity = stream.keep_newest ? 1 : static_cast<size_t>(std::max(1, options_.queue_frames));
    if (stream.keep_newest) {
      while (stream.inbox.size() >= capacity && std::holds_alternative<video::Frame>(stream.inbox.front())) {
        stream.inbox.pop_front();
        stream.queue_dropped.fetch_add(1);
      }
    } else {
      space_cv_.wait(lock, [&] { return stream.inbox.size() < capacity || stream.stopping || is_stopped(); });
      if (stream.stopping || is_stopped()) return false;
    }
    stream.inbox.emplace_back(std::move(frame));
    lock.unlock();
    inbox_cv_.notify_all();
    return true;
  }

  bool is_stopped() const {
    std::lock_guard lock(streams_mutex_);
    return stopped_;
  }

  void finish(Stream& stream, StreamEnd end) {
    {
      std::lock_guard lock(inbox_mutex_);
      stream.inbox.emplace_back(std::move(end));
    }
    inbox_cv_.notify_all();
  }

  void post_status(Stream& stream, StreamState state, std::string message) {
    stream.state = state;
    Inferred item;
    item.stream = &stream;
    item.status = StreamStatusEvent{stream.spec.id, state, std::move(message), video::now_us()};
    push_result(std::move(item));
  }

  // On CUDA every new batch shape makes cuDNN build its convolution plans (seconds for a network), and LibTorch
  // caches those plans per thread: so the warm-up runs here, on the thread that will run every batch.
  core::Result<void> warm_up() {
    if (options_.estimator.device != engine::Device::kCuda) return {};
    const int64_t start_us = video::now_us();
    auto warmed = estimator_->warm_up(options_.max_batch);
    if (warmed) {
      options_.logger.info("estimator warmed up for batches up to ", options_.max_batch, " in ",
                           (video::now_us() - start_us) / 1000, " ms");
    }
    return warmed;
  }

  // The scheduler thread: the only one that calls the estimator.
  void schedule() {
    while (true) {
      std::vector<std::pair<Stream*, InboxItem>> taken;
      {
        std::unique_lock lock(inbox_mutex_);
        inbox_cv_.wait(lock, [this] { return shutting_down_ || any_ready(); });
        if (!any_ready()) return;  // shutting down with nothing left
        take_batch(lock, taken);
      }
      space_cv_.notify_all();
      run_batch(taken);
    }
  }

  bool any_ready() const {
    return std::any_of(active_streams_.begin(), active_streams_.end(),
                       [](const Stream* stream) { return !stream->inbox.empty(); });
  }

  // Round-robin across streams so a fast file cannot starve a camera. A partial batch waits up to max_wait_us,
  // but only while some stream that has not contributed yet may still deliver.
  void take_batch(std::unique_lock<std::mutex>& lock, std::vector<std::pair<Stream*, InboxItem>>& taken) {
    const size_t max_batch = static_cast<size_t>(std::max(1, options_.max_batch));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(options_.max_wait_us);
    std::vector<const Stream*> contributed;
    size_t frames = 0;
    // Each batch starts one stream further along: with small batches the first streams would otherwise always win.
    const size_t first = active_streams_.empty() ? 0 : next_first_stream_++ % active_streams_.size();
    while (true) {
      bool took = false;
      for (size_t i = 0; i < active_streams_.size(); ++i) {
        Stream* stream = active_streams_[(first + i) % active_streams_.size()];
        if (frames >= max_batch || stream->inbox.empty()) continue;
        InboxItem item = std::move(stream->inbox.front());
        stream->inbox.pop_front();
        took = true;
        if (std::holds_alternative<StreamEnd>(item))
          stream->end_taken = true;
        else
          ++frames;
        if (std::find(contributed.begin(), contributed.end(), stream) == contributed.end()) {
          contributed.push_back(stream);
        }
        taken.emplace_back(stream, std::move(item));
      }
      std::erase_if(active_streams_, [](const Stream* stream) { return stream->end_taken; });
      if (frames >= max_batch) return;
      if (took) continue;
      const bool others_may_deliver = std::any_of(active_streams_.begin(), active_streams_.end(), [&](const Stream* s) {
        return std::find(contributed.begin(), contributed.end(), s) == contributed.end();
      });
      if (!others_may_deliver || frames == 0) return;
      if (inbox_cv_.wait_until(lock, deadline) == std::cv_status::timeout && !any_ready()) return;
    }
  }

  void run_batch(std::vector<std::pair<Stream*, InboxItem>>& taken) {
    std::vector<engine::Image> images;
    for (auto& [stream, item] : taken) {
      if (const auto* frame = std::get_if<video::Frame>(&item)) {
        images.push_back({frame->bgr.data(), frame->width, frame->height, frame->width * 3, engine::PixelFormat::kBgr});
      }
    }
    FrameStamps stamps;
    stamps.inference_start_us = video::now_us();
    std::vector<std::vector<engine::Person>> people = infer(images);
    stamps.inference_end_us = video::now_us();
    size_t next_image = 0;
    for (auto& [stream, item] : taken) {
      Inferred result;
      result.stream = stream;
      if (auto* frame = std::get_if<video::Frame>(&item)) {
        result.stamps = stamps;
        result.stamps.decoded_us = frame->arrival_us;
        result.people = std::move(people[next_image++]);
        result.batch_size = static_cast<int>(images.size());
        result.frame = std::move(*frame);
      } else {
        auto& end = std::get<StreamEnd>(item);
        result.status = StreamStatusEvent{stream->spec.id, end.state, std::move(end.message), video::now_us()};
      }
      push_result(std::move(result));
    }
  }

  // One call for the batch; when it fails, frame by frame, so one bad frame costs only itself.
  std::vector<std::vector<engine::Person>> infer(const std::vector<engine::Image>& images) {
    if (images.empty()) return {};
    auto batch = estimator_->estimate_batch(images);
    if (batch) return std::move(*batch);
    options_.logger.warn("inference of a batch of " + std::to_string(images.size()) +
                         " failed, retrying frame by frame: " + batch.error().message);
    std::vector<std::vector<engine::Person>> people(images.size());
    for (size_t i = 0; i < images.size(); ++i) {
      auto single = estimator_->estimate_batch(std::span<const engine::Image>(&images[i], 1));
      if (single)
        people[i] = std::move(single->front());
      else
        options_.logger.error("a frame failed inference: " + single.error().message);
    }
    return people;
  }

  void push_result(Inferred item) {
    std::unique_lock lock(results_mutex_);
    // Bounded: a slow subscriber holds the scheduler back, and through it the decoders (files) or the newest-wins
    // drops (live) — never memory.
    const size_t capacity = 4 * static_cast<size_t>(std::max(1, options_.max_batch)) + 16;
    results_space_cv_.wait(lock, [&] { return results_.size() < capacity; });
    results_.push_back(std::move(item));
    lock.unlock();
    results_cv_.notify_one();
  }

  // The analysis thread: tracking, exercise analysis, publishing.
  void analyse() {
    while (true) {
      Inferred item;
      {
        std::unique_lock lock(results_mutex_);
        results_cv_.wait(lock, [this] { return results_closed_ || !results_.empty(); });
        if (results_.empty()) return;
        item = std::move(results_.front());
        results_.pop_front();
      }
      results_space_cv_.notify_one();
      if (item.status) {
        publish_status(*item.stream, std::move(*item.status));
      } else {
        publish_frame(item);
      }
    }
  }

  void publish_status(Stream& stream, StreamStatusEvent status) {
    const bool final = status.state == StreamState::kEnded || status.state == StreamState::kFailed ||
                       status.state == StreamState::kStopped;
    stream.state = status.state;
    if (status.state == StreamState::kFailed) {
      options_.logger.error("stream " + stream.spec.id + " failed: " + status.message);
    }
    publish(Event(std::move(status)));
    if (final) {
      std::shared_ptr<Stream> forgotten;  // destroyed outside the lock
      {
        std::lock_guard lock(streams_mutex_);
        stream.finished = true;
        if (stream.forget) forgotten = take(stream);
      }
      streams_cv_.notify_all();
    }
  }

  void publish_frame(Inferred& item) {
    FrameResult result;
    std::vector<analysis::Event> events;
    {
      std::lock_guard lock(analysis_mutex_);
      Stream& stream = *item.stream;
      const video::Frame& frame = *item.frame;
      const track::TrackUpdate update = stream.tracker->update(item.people, frame.pts_us);
      analysis::AnalyzerOutput output = stream.analyzer->update(update.tracks, update.ended_ids, frame.pts_us);
      result.stream_id = stream.spec.id;
      result.frame_index = frame.index;
      result.pts_us = frame.pts_us;
      result.width = frame.width;
      result.height = frame.height;
      result.source_width = stream.source_width;
      result.source_height = stream.source_height;
      result.source_fps = stream.source_fps;
      result.batch_size = item.batch_size;
      result.stamps = item.stamps;
      for (size_t i = 0; i < update.tracks.size(); ++i) {
        PersonResult person{update.tracks[i], {}};
        if (i < output.people.size()) person.state = std::move(output.people[i]);
        result.people.push_back(std::move(person));
      }
      events = std::move(output.events);
      stream.frames_analysed.fetch_add(1);
    }
    if (options_.keep_frames) result.frame = std::make_shared<const video::Frame>(std::move(*item.frame));
    result.stamps.published_us = video::now_us();
    const std::string stream_id = result.stream_id;
    publish(Event(std::move(result)));
    for (auto& event : events) publish(Event(AnalysisEvent{stream_id, std::move(event)}));
  }

  void publish(const Event& event) {
    std::lock_guard lock(subscribers_mutex_);
    for (const auto& subscriber : subscribers_) subscriber(event);
  }

  PipelineOptions options_;
  std::unique_ptr<engine::Estimator> estimator_;

  mutable std::mutex streams_mutex_;
  std::condition_variable streams_cv_;
  std::vector<std::shared_ptr<Stream>> streams_;
  size_t streams_added_ = 0;  // for default ids
  bool stopped_ = false;

  mutable std::mutex inbox_mutex_;
  std::condition_variable inbox_cv_;  // frames arrived, or shutting down
  std::condition_variable space_cv_;  // a blocking decoder may push again
  std::vector<Stream*> active_streams_;
  size_t next_first_stream_ = 0;  // round-robin start of the next batch
  bool shutting_down_ = false;

  std::mutex results_mutex_;
  std::condition_variable results_cv_;
  std::condition_variable results_space_cv_;
  std::deque<Inferred> results_;
  bool results_closed_ = false;

  mutable std::mutex analysis_mutex_;
  std::mutex subscribers_mutex_;
  std::vector<Subscriber> subscribers_;

  std::promise<core::Result<void>> warmed_;
  std::future<core::Result<void>> warmed_future_ = warmed_.get_future();
  std::thread scheduler_;
  std::thread analyser_;
};

}  // namespace

core::Result<std::unique_ptr<Pipeline>> Pipeline::create(const PipelineOptions& options) {
  if (options.max_batch < 1 || options.queue_frames < 1 || options.max_wait_us < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "max_batch and queue_frames must be at least 1 and max_wait_us not negative");
  }
  if (options.exercises.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "no exercises loaded: nothing to analyse against");
  }
  auto estimator = engine::Estimator::create(options.estimator);
  if (!estimator) return estimator.error();
  auto pipeline = std::make_unique<PipelineImpl>(options, std::move(*estimator));
  if (auto warmed = pipeline->warmed(); !warmed) return warmed.error();
  return std::unique_ptr<Pipeline>(std::move(pipeline));
}

}  // namespace pose::runtime
