#pragma once
// Private to pose/video: the sources behind Source::open and the pieces they share. Two back-ends decode (OpenCV's
// VideoCapture, FFmpeg's libraries directly); each implements Decoder, and the file and live sources run over any
// Decoder, so pacing, truncation checks, newest-wins delivery and reconnects exist once. No back-end's types are
// visible here.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "pose/video/video.h"

namespace pose::video::detail {

struct Size {
  int width = 0;
  int height = 0;
  bool operator==(const Size&) const = default;
};

// The size a w x h image becomes when its longer side is limited to max_side_px (0: unchanged); aspect kept.
Size fit_size(int width, int height, int max_side_px);

enum class Backend { kOpenCv, kFfmpeg, kNvdec };
const char* to_string(Backend backend);

// What Source::open decided the uri is and which back-end decodes it.
struct Target {
  SourceKind kind = SourceKind::kFile;
  std::string uri;        // as given (with credentials, which only the back-end sees)
  std::string redacted;   // for messages
  int camera_index = -1;  // kCamera
  Backend backend = Backend::kOpenCv;
};

// Counters that stats() reads from any thread while the decoding thread updates them.
struct Counters {
  std::atomic<int64_t> frames_decoded{0};
  std::atomic<int64_t> frames_dropped{0};
  std::atomic<int64_t> reconnects{0};
  std::atomic<int64_t> decode_errors{0};
  SourceStats snapshot() const;
};

// A stop flag that also interrupts waits: stop() wakes a pacing or backoff wait at once instead of leaving it to
// run out, and FFmpeg's I/O polls stopped() to abandon a blocked read. Thread-safe.
class StopSignal {
 public:
  void stop();
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  // Waits until `deadline` or stop(); returns false when stopped.
  bool wait_until(std::chrono::steady_clock::time_point deadline);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopped_{false};  // lock-free to read: FFmpeg's interrupt callback asks on every I/O wait
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

// One opened video stream of one back-end, demuxed and decoded on the calling thread. Not thread-safe; only the
// StopSignal given when it was opened reaches it from another thread.
class Decoder {
 public:
  struct Read {
    bool frame = false;           // false: the stream ended or reading failed (a live source reopens then)
    int64_t corrupt_skipped = 0;  // packets that failed to decode and were skipped on the way
  };

  virtual ~Decoder() = default;
  Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // The stream as opened: source and delivered sizes, fps (0: unknown), frame_count (-1: unknown) and codec;
  // kind and uri are left to the source.
  virtual const SourceInfo& stream() const = 0;
  // Decodes the next frame into frame->bgr, width, height and pts_us (media time since the stream's start, as the
  // container says; the file source repairs missing or repeated ones). An error only when the back-end can never
  // decode this stream (NVDEC missing): retrying or reopening would not help.
  virtual core::Result<Read> read(Frame* frame) = 0;
};

// What both back-ends say when a file or stream will not open, so that messages do not depend on the back-end.
core::Error file_unopenable(const Target& target);
core::Error stream_unopenable(const Target& target, int64_t timeout_ms);
// Network sources: the bound on connecting and on each read, from SourceOptions::open_timeout_ms.
int64_t network_timeout_ms(const SourceOptions& options);
// Rates outside (0, 1000) fps are unknown (0): some RTSP servers report their timebase as the frame rate.
double plausible_fps(double fps);

// Opens target.uri with target.backend. `stop` (may be null) abandons network I/O blocked in open or read.
core::Result<std::unique_ptr<Decoder>> open_decoder(const Target& target, const SourceOptions& options,
                                                    StopSignal* stop);
// The back-ends, defined where the build has them (WB_HAVE_OPENCV, WB_HAVE_FFMPEG); open_decoder picks.
core::Result<std::unique_ptr<Decoder>> open_opencv(const Target& target, const SourceOptions& options);
core::Result<std::unique_ptr<Decoder>> open_ffmpeg(const Target& target, const SourceOptions& options,
                                                   StopSignal* stop);

core::Result<std::unique_ptr<Source>> open_file(const Target& target, const SourceOptions& options);
core::Result<std::unique_ptr<Source>> open_folder(const Target& target, const SourceOptions& options);  // OpenCV
core::Result<std::unique_ptr<Source>> open_live(const Target& target, const SourceOptions& options);

}  // namespace pose::video::detail
