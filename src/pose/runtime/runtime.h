#pragma once
// The analysis pipeline: several streams (files, folders, cameras, RTSP/HTTP) analysed at once. Each stream decodes
// on its own thread into a small bounded queue; one scheduler thread owns the estimator (and the GPU) and batches
// frames across streams (up to max_batch, waiting at most max_wait_us to fill a batch); one analysis thread tracks
// people, runs the exercise analysis and publishes the results as an event stream to subscribers.
//
//   frames:  source --(queue per stream)--> scheduler: estimate_batch --(queue)--> analysis: track, analyse --> events
//
// Drop policy, explicit: a file read as fast as possible loses nothing (a full queue blocks its decoder); a live
// source or a file paced at real time keeps the newest frames (a full queue drops its oldest frame, counted). A
// stream that fails (missing file, refused connection, corrupt data, camera gone) ends with a kFailed status event and
// never touches the others.
//
// Every frame is stamped at each stage (decoded, inference start and end, published); latency is decoded ->
// published.
//
// Thread-safety: add_stream, stop, stats and wait may be called from any thread. Subscribers are called on the
// analysis thread, one event at a time, in order per stream; a subscriber must return quickly (hand slow work to
// its own thread), since the analysis thread waits for it.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "pose/analysis/analysis.h"
#include "pose/engine/engine.h"
#include "pose/track/tracker.h"
#include "pose/video/video.h"

namespace pose::runtime {

struct StreamSpec {
  std::string id;  // unique within the pipeline; "" picks "s1", "s2", ...
  video::SourceOptions source;
  std::string exercise = "auto";  // a loaded exercise's name, or "auto"
  // The exercises this stream may name, when not the pipeline's (a service whose definitions change at run time).
  std::vector<std::shared_ptr<const analysis::Exercise>> exercises;
};

enum class StreamState { kOpening, kRunning, kEnded, kFailed, kStopped };
const char* to_string(StreamState state);

struct StreamStatusEvent {
  std::string stream_id;
  StreamState state = StreamState::kOpening;
  std::string message;  // the error for kFailed; the source's description for kRunning
  int64_t timestamp_us = 0;
};

struct PersonResult {
  track::Track track;  // keypoints in the analysed frame's pixels
  analysis::PersonState state;
};

struct FrameStamps {
  int64_t decoded_us = 0;          // the frame left the decoder (video::Frame::arrival_us)
  int64_t inference_start_us = 0;  // its batch went into the estimator
  int64_t inference_end_us = 0;
  int64_t published_us = 0;  // just before subscribers are called
};

struct FrameResult {
  std::string stream_id;
  int64_t frame_index = 0;
  int64_t pts_us = 0;
  int width = 0, height = 0;                // of the analysed frame (after SourceOptions::max_side_px)
  int source_width = 0, source_height = 0;  // of the stream
  double source_fps = 0;                    // nominal frame rate of the stream; 0 when unknown
  int batch_size = 0;                       // frames in the inference batch this frame was in
  FrameStamps stamps;
  std::vector<PersonResult> people;
  // The analysed pixels, when PipelineOptions::keep_frames (annotation, live view). Shared: every subscriber may
  // read it after the pipeline has moved on.
  std::shared_ptr<const video::Frame> frame;
};

struct AnalysisEvent {
  std::string stream_id;
  analysis::Event event;
};

using Event = std::variant<FrameResult, AnalysisEvent, StreamStatusEvent>;
using Subscriber = std::function<void(const Event&)>;

struct PipelineOptions {
  engine::EstimatorOptions estimator;
  std::vector<std::shared_ptr<const analysis::Exercise>> exercises;  // what streams may name
  analysis::AnalyzerOptions analyzer;                                // its exercise and exercises are set per stream
  track::TrackerOptions tracker;
  int max_batch = 8;           // frames per inference call, across streams
  int64_t max_wait_us = 2000;  // how long a partial batch waits for more frames
  int queue_frames = 2;        // per file stream, between its decoder and the scheduler (live streams: 1)
  bool keep_frames = false;    // attach the pixels to every FrameResult
  core::Logger logger;
};

struct StreamStats {
  std::string stream_id;
  StreamState state = StreamState::kOpening;
  int64_t frames_decoded = 0;
  int64_t frames_analysed = 0;
  int64_t frames_dropped = 0;  // by the source (live, newest wins) and by the queue (oldest dropped)
  int64_t reconnects = 0;
  int64_t queued_frames = 0;  // decoded, waiting for inference now
};

// What an annotated frame shows (pose analyze --annotate, the service's live images): each person's skeleton,
// exercise, reps, phase, angles and form issues, and a banner with the stream, `exercise` and the time.
video::Overlay overlay_for(const FrameResult& frame, const std::string& exercise);

class Pipeline {
 public:
  // Loads the estimator; fails for a bad model, missing model files or CUDA unavailable. On CUDA it also runs the
  // network once per batch shape (powers of two up to max_batch) on the scheduler thread, which takes seconds per
  // shape, so that no stream's frames wait for cuDNN to build its plans.
  static core::Result<std::unique_ptr<Pipeline>> create(const PipelineOptions& options);
  virtual ~Pipeline() = default;
  Pipeline() = default;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Before the first add_stream.
  virtual void subscribe(Subscriber subscriber) = 0;
  // Starts the stream: its source opens on the stream's thread, so a slow or refused source reports through a
  // status event and never blocks the caller. Fails at once for an unknown exercise or an id whose stream has not
  // finished (published its final status); a finished stream's id is taken over by the new stream.
  virtual core::Result<std::string> add_stream(const StreamSpec& spec) = 0;
  // Stops one stream (its final status follows, kStopped unless it ended first). kNotFound for an unknown id.
  virtual core::Status stop_stream(const std::string& id) = 0;
  // Stops the stream and forgets it once finished (its stats and summary go with it). kNotFound for an unknown id.
  virtual core::Status remove_stream(const std::string& id) = 0;
  // Blocks until every stream added so far has finished (files end; live sources run until stopped).
  virtual void wait() = 0;
  // Stops every stream; the events already decoded are still published. Idempotent.
  virtual void stop() = 0;
  virtual std::vector<StreamStats> stats() const = 0;
  // Per person, per stream, after wait() or stop().
  virtual std::vector<std::pair<std::string, std::vector<analysis::PersonSummary>>> summaries() const = 0;
};

}  // namespace pose::runtime
