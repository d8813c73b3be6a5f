#pragma once
// Private to pose/video: the source implementations behind Source::open and the pieces they share (frame
// conversion, pacing, counters). OpenCV is visible here, never in video.h.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include "pose/video/video.h"

namespace pose::video::detail {

// The size a w x h image becomes when its longer side is limited to max_side_px (0: unchanged); aspect kept.
cv::Size fit_size(int width, int height, int max_side_px);

// Writes `image` (any 8-bit 1, 3 or 4 channel Mat, continuous or not) into frame->bgr as packed BGR, downscaled
// with INTER_AREA to fit max_side_px. frame->bgr's allocation is reused when it is large enough.
void store_bgr(const cv::Mat& image, int max_side_px, Frame* frame);

// Reads the next frame of `capture` into frame->bgr. When no downscale is needed the capture decodes straight
// into the vector's memory (OpenCV keeps an output Mat whose size and type already match); otherwise `scratch`
// holds the decoded image between reads so its allocation is reused.
bool read_frame(cv::VideoCapture& capture, int max_side_px, cv::Mat* scratch, Frame* frame);

// "avc1" from CAP_PROP_FOURCC; empty when the back-end does not say.
std::string fourcc_string(double fourcc);

// Counters that stats() reads from any thread while the decoding thread updates them.
struct Counters {
  std::atomic<int64_t> frames_decoded{0};
  std::atomic<int64_t> frames_dropped{0};
  std::atomic<int64_t> reconnects{0};
  std::atomic<int64_t> decode_errors{0};
  SourceStats snapshot() const;
};

// A stop flag that also interrupts waits: stop() wakes a pacing or backoff wait at once instead of leaving it to
// run out. Thread-safe.
class StopSignal {
 public:
  void stop();
  bool stopped() const;
  // Waits until `deadline` or stop(); returns false when stopped.
  bool wait_until(std::chrono::steady_clock::time_point deadline);

 private:
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
};

// Files and folders: delivery times for realtime pacing. The first frame sets the origin; frame k is due when
// its media time has passed on the steady clock since then.
class Pacer {
 public:
  // Returns false when stopped while waiting.
  bool wait_for_pts(int64_t pts_us, StopSignal& stop);

 private:
  bool started_ = false;
  int64_t origin_pts_us_ = 0;
  std::chrono::steady_clock::time_point origin_;
};

// What Source::open decided the uri is.
struct Target {
  SourceKind kind = SourceKind::kFile;
  std::string uri;        // as given (with credentials, which only the back-end sees)
  std::string redacted;   // for messages
  int camera_index = -1;  // kCamera
};

core::Result<std::unique_ptr<Source>> open_file(const Target& target, const SourceOptions& options);
core::Result<std::unique_ptr<Source>> open_folder(const Target& target, const SourceOptions& options);
core::Result<std::unique_ptr<Source>> open_live(const Target& target, const SourceOptions& options);

}  // namespace pose::video::detail
