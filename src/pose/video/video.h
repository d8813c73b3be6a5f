#pragma once
// Frames in and out of the analyzer: video files (mp4, mkv, avi, webm, mov), image folders, V4L2 cameras and
// RTSP/HTTP streams; an annotated video out (skeleton, angles, rep counter and feedback drawn on the frames).
// Two decoding back-ends, chosen by SourceOptions::decoder: OpenCV (its FFmpeg and V4L2 back-ends; also the one
// that reads image folders and cameras) and FFmpeg's libraries directly, in software or on NVIDIA's NVDEC. A build
// may have either or both: without OpenCV there are no image folders, cameras, overlays or writers (draw_overlay
// does nothing, Writer::create fails with kUnsupported). Neither library is visible through this header.
//
// Live sources (cameras, network streams) decode on their own thread and keep only the newest frame: a frame
// not taken before the next one arrives is dropped and counted. When a live source drops it is reopened with
// exponential backoff. Files and folders give every frame, as fast as the caller takes them or paced at the
// file's frame rate.
//
//   auto source = pose::video::Source::open({.uri = "squat.mp4"});
//   while (auto frame = (*source)->next()) { if (!*frame) break; /* end */ use(**frame); }
//
// Thread-safety: next() from one thread; stop(), stats() and info() from any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/result.h"

namespace pose::video {

struct Frame {
  std::vector<uint8_t> bgr;  // width * height * 3 bytes, rows packed, BGR
  int width = 0;
  int height = 0;
  int64_t index = 0;       // 0-based, in decode order (counts dropped live frames too)
  int64_t pts_us = 0;      // media time: from the container for files, since the source opened for live ones
  int64_t arrival_us = 0;  // steady clock (now_us()) when the frame was decoded: where latency starts
};

// Microseconds of the steady clock every stage stamps with.
int64_t now_us();

enum class SourceKind { kFile, kImageFolder, kCamera, kNetwork };
const char* to_string(SourceKind kind);

struct SourceOptions {
  // A file or folder path, a camera ("/dev/video0", "camera:0" or "0"), or rtsp://, rtsps://, http(s)://.
  std::string uri;
  bool realtime = false;   // files and folders: pace at the frame rate (live sources always are)
  int loops = 1;           // video files: play this many times, timestamps running on (0: forever, until stop())
  int max_side_px = 0;     // downscale so the longer side is at most this many pixels (0: keep the size)
  double folder_fps = 30;  // image folders: the frame rate their timestamps assume
  // Live sources: reopen after a failure, waiting initial, doubling up to max; give up after max_reconnects in a
  // row (-1: never give up).
  int64_t reconnect_initial_ms = 500;
  int64_t reconnect_max_ms = 8000;
  int max_reconnects = 5;
  int64_t open_timeout_ms = 5000;  // network sources: connecting and each read
  // Video files and network streams: "auto" (FFmpeg where the build has it, else OpenCV), "opencv", "ffmpeg"
  // (software) or "nvdec" (FFmpeg with NVIDIA's hardware decoder: fails with kUnavailable where there is no
  // CUDA driver, libnvcuvid or NVDEC support for the codec; never falls back to software). Cameras and image
  // folders always decode through OpenCV.
  std::string decoder = "auto";
  int decode_threads = 0;  // FFmpeg software decoding: codec threads per source (0: min(4, cores))
  core::Logger logger{};   // discards by default
};

struct SourceInfo {
  SourceKind kind = SourceKind::kFile;
  std::string uri;            // credentials removed (redact_uri)
  int width = 0, height = 0;  // of the frames delivered (after max_side_px)
  int source_width = 0, source_height = 0;
  double fps = 0;            // nominal; 0 when unknown
  int64_t frame_count = -1;  // files and folders; -1 when unknown
  std::string decoder;       // the back-end that decodes: "opencv", "ffmpeg" or "nvdec"
  std::string codec;         // FourCC ("avc1"), the codec's name when the container has none, or "image"
};

struct SourceStats {
  int64_t frames_decoded = 0;
  int64_t frames_dropped = 0;  // live: overwritten before taken
  int64_t reconnects = 0;      // live: reopen attempts, whether they succeeded or not
  int64_t decode_errors = 0;   // corrupt frames skipped
};

class Source {
 public:
  // Fails with a message naming the source when it does not exist, cannot be opened, refuses the connection or
  // has no decodable video.
  static core::Result<std::unique_ptr<Source>> open(const SourceOptions& options);
  virtual ~Source() = default;
  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // The next frame; nullopt at the end (files, folders, or after stop()); an error when the source failed for
  // good (a file that stops decoding mid-way, a live source that could not be reopened).
  virtual core::Result<std::optional<Frame>> next() = 0;
  // Makes a blocked or later next() return nullopt. Thread-safe.
  virtual void stop() = 0;
  virtual const SourceInfo& info() const = 0;
  virtual SourceStats stats() const = 0;  // thread-safe
};

// "rtsp://user:secret@cam/stream" -> "rtsp://***@cam/stream": what logs, errors and APIs show.
std::string redact_uri(std::string_view uri);

// What the annotator draws on a frame; plain values so the drawing knows nothing of tracking or analysis.
struct OverlayPerson {
  int64_t id = 0;
  struct Point {
    float x = 0, y = 0;
    bool visible = false;
  };
  std::vector<Point> keypoints;     // COCO-17 order, frame pixels
  std::vector<std::string> labels;  // drawn beside the person ("knee 92 deg", "reps 3", "phase down")
  std::vector<std::string> issues;  // form feedback, drawn in the warning colour
};

struct Overlay {
  std::vector<OverlayPerson> people;
  std::vector<std::string> banner;  // top-left lines (stream, fps, exercise)
};

// Draws in place; coordinates outside the frame are clipped. Does nothing in a build without OpenCV.
void draw_overlay(Frame& frame, const Overlay& overlay);

// The frame as a JPEG (quality 1..100), for live views. kUnsupported in a build without OpenCV.
core::Result<std::vector<uint8_t>> encode_jpeg(const Frame& frame, int quality);

class Writer {
 public:
  // mp4 (H.264 when the FFmpeg build has an encoder, else MPEG-4 part 2), avi (MJPG), or an image folder when the
  // path has no extension. Fails when the path's folder does not exist or no encoder is available, and always
  // (kUnsupported) in a build without OpenCV.
  static core::Result<std::unique_ptr<Writer>> create(const std::string& path, int width, int height, double fps);
  virtual ~Writer() = default;
  virtual core::Result<void> write(const Frame& frame) = 0;  // frame size must match create()
  virtual core::Result<void> close() = 0;                    // also done by the destructor
};

}  // namespace pose::video
