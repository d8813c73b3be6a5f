// Cameras and network streams: a grabber thread decodes as fast as the source delivers into a one-frame slot
// where the newest frame wins, and reopens the source with exponential backoff when reading fails.

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "pose/video/sources.h"

namespace pose::video::detail {
namespace {

// Frame rates above this are timebases that some RTSP servers report, not frame rates.
constexpr double kMaxPlausibleFps = 1000;

std::string describe(const Target& target) { return std::string(to_string(target.kind)) + " " + target.redacted; }

core::Result<cv::VideoCapture> open_capture(const Target& target, const SourceOptions& options) {
  cv::VideoCapture capture;
  if (target.kind == SourceKind::kCamera) {
    const std::string device = "/dev/video" + std::to_string(target.camera_index);
    std::error_code error;
    if (!std::filesystem::exists(device, error)) {
      return core::make_error(core::ErrorCode::kNotFound,
                              "camera " + device +
                                  " not found: no such device (ls /dev/video* lists the cameras; "
                                  "in a container pass it with --device " +
                                  device + ")");
    }
    if (!capture.open(target.camera_index, cv::CAP_V4L2) || !capture.isOpened()) {
      return core::make_error(core::ErrorCode::kUnavailable,
                              "camera " + device +
                                  " cannot be opened: in use by another program, no permission "
                                  "(join the video group), or not a capture device");
    }
    return capture;
  }
  // Bounded connect and reads: FFmpeg otherwise waits 30 s on a dead host and forever on a stalled stream.
  const int timeout_ms = static_cast<int>(std::clamp<int64_t>(options.open_timeout_ms, 1, 3'600'000));
  const std::vector<int> parameters = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv::CAP_PROP_READ_TIMEOUT_MSEC,
                                       timeout_ms};
  if (!capture.open(target.uri, cv::CAP_FFMPEG, parameters) || !capture.isOpened()) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            "network stream " + target.redacted + " cannot be opened within " +
                                std::to_string(timeout_ms) +
                                " ms: connection refused or timed out, wrong path or credentials, or no video "
                                "in the stream; check that the server is up and that the address plays in ffplay");
  }
  return capture;
}

class LiveSource final : public Source {
 public:
  LiveSource(Target target, const SourceOptions& options, cv::VideoCapture capture, SourceInfo info)
      : target_(std::move(target)),
        options_(options),
        info_(std::move(info)),
        capture_(std::move(capture)),
        opened_us_(now_us()) {
    thread_ = std::thread([this] { grab(); });
  }

  ~LiveSource() override {
    stop();
    thread_.join();
  }

  core::Result<std::optional<Frame>> next() override {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stopped_ || slot_ || failure_; });
    if (stopped_) return std::optional<Frame>();
    // A frame decoded before the source failed for good is still delivered.
    if (slot_) return std::exchange(slot_, std::nullopt);
    return *failure_;
  }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    wake_.notify_all();
  }

  const SourceInfo& info() const override { return info_; }
  SourceStats stats() const override { return counters_.snapshot(); }

 private:
  // The grabber thread. `attempts` counts reopen attempts since the last frame that decoded, so a server that
  // accepts connections but sends nothing is given up on too.
  void grab() {
    Frame frame;
    cv::Mat scratch;
    int64_t index = 0;
    int attempts = 0;
    int64_t backoff_ms = std::max<int64_t>(1, options_.reconnect_initial_ms);
    while (!stopping()) {
      if (capture_.isOpened() && read_frame(capture_, options_.max_side_px, &scratch, &frame)) {
        attempts = 0;
        backoff_ms = std::max<int64_t>(1, options_.reconnect_initial_ms);
        frame.arrival_us = now_us();
        frame.pts_us = frame.arrival_us - opened_us_;
        frame.index = index++;
        ++counters_.frames_decoded;
        publish(&frame);
        continue;
      }
      if (capture_.isOpened()) {
        capture_.release();
        options_.logger.warn(describe(target_), ": reading failed; reopening");
      }
      if (options_.max_reconnects >= 0 && attempts >= options_.max_reconnects) {
        fail(core::make_error(core::ErrorCode::kUnavailable,
                              describe(target_) + " failed and could not be reopened (" + std::to_string(attempts) +
                                  " attempts in a row); check the camera or the stream's server"));
        return;
      }
      if (!wait_ms(backoff_ms)) return;
      backoff_ms = std::min(backoff_ms * 2, std::max(options_.reconnect_max_ms, options_.reconnect_initial_ms));
      ++attempts;
      ++counters_.reconnects;
      auto reopened = open_capture(target_, options_);
      if (reopened) {
        capture_ = std::move(*reopened);
        options_.logger.info(describe(target_), ": reopened (attempt ", attempts, ")");
      } else {
        options_.logger.warn(describe(target_), ": reopen attempt ", attempts, " failed: ", reopened.error().message);
      }
    }
  }

  // Newest wins: a frame still in the slot was never taken and is dropped. The swap hands its buffer back to the
  // grabber to decode into.
  void publish(Frame* frame) {
    {
      std::lock_guard lock(mutex_);
      if (slot_) {
        ++counters_.frames_dropped;
        std::swap(*slot_, *frame);
      } else {
        slot_ = std::move(*frame);
        *frame = Frame();
      }
    }
    wake_.notify_all();
  }

  void fail(core::Error error) {
    options_.logger.error(error.message);
    {
      std::lock_guard lock(mutex_);
      failure_ = std::move(error);
    }
    wake_.notify_all();
  }

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopped_;
  }

  // A backoff that stop() cuts short; false when stopped.
  bool wait_ms(int64_t ms) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopped_; });
  }

  const Target target_;
  const SourceOptions options_;
  const SourceInfo info_;
  cv::VideoCapture capture_;  // the grabber thread's alone once it runs
  const int64_t opened_us_;
  Counters counters_;

  std::mutex mutex_;  // guards the three below
  std::condition_variable wake_;
  std::optional<Frame> slot_;
  std::optional<core::Error> failure_;
  bool stopped_ = false;

  std::thread thread_;  // the grabber: started by the constructor's body once every member exists
};

}  // namespace

core::Result<std::unique_ptr<Source>> open_live(const Target& target, const SourceOptions& options) {
  auto capture = open_capture(target, options);
  if (!capture) return capture.error();
  SourceInfo info;
  info.kind = target.kind;
  info.uri = target.redacted;
  info.source_width = static_cast<int>(capture->get(cv::CAP_PROP_FRAME_WIDTH));
  info.source_height = static_cast<int>(capture->get(cv::CAP_PROP_FRAME_HEIGHT));
  const cv::Size size = fit_size(info.source_width, info.source_height, options.max_side_px);
  info.width = size.width;
  info.height = size.height;
  const double fps = capture->get(cv::CAP_PROP_FPS);
  info.fps = fps > 0 && fps < kMaxPlausibleFps ? fps : 0;
  info.codec = fourcc_string(capture->get(cv::CAP_PROP_FOURCC));
  options.logger.info("opened ", describe(target), ": ", info.source_width, "x", info.source_height, " ", info.codec,
                      " at ", info.fps, " fps");
  return std::unique_ptr<Source>(std::make_unique<LiveSource>(target, options, std::move(*capture), std::move(info)));
}

}  // namespace pose::video::detail
