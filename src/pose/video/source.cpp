// Source::open: deciding what a uri names, and the helpers every source shares.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <system_error>

#include "pose/video/sources.h"

namespace pose::video {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* to_string(SourceKind kind) {
  switch (kind) {
    case SourceKind::kFile: return "file";
    case SourceKind::kImageFolder: return "image folder";
    case SourceKind::kCamera: return "camera";
    case SourceKind::kNetwork: return "network stream";
  }
  return "unknown";
}

std::string redact_uri(std::string_view uri) {
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return std::string(uri);
  const size_t authority_begin = scheme_end + 3;
  const size_t authority_end = std::min(uri.find_first_of("/?#", authority_begin), uri.size());
  const std::string_view authority = uri.substr(authority_begin, authority_end - authority_begin);
  // The last '@' ends the user information: a password may itself contain '@' when not percent-encoded.
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(uri);
  std::string redacted(uri.substr(0, authority_begin));
  redacted += "***";
  redacted += uri.substr(authority_begin + at);
  return redacted;
}

namespace detail {
namespace {

bool parse_index(std::string_view text, int* index) {
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *index);
  return error == std::errc() && end == text.data() + text.size();
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

core::Result<Target> classify(const std::string& uri) {
  Target target{SourceKind::kFile, uri, redact_uri(uri), -1};
  if (uri.empty()) return core::make_error(core::ErrorCode::kInvalidArgument, "video source: the uri is empty");
  const size_t scheme_end = uri.find("://");
  if (scheme_end != std::string::npos) {
    const std::string scheme = lower(std::string_view(uri).substr(0, scheme_end));
    if (scheme == "rtsp" || scheme == "rtsps" || scheme == "http" || scheme == "https") {
      target.kind = SourceKind::kNetwork;
      return target;
    }
    return core::make_error(core::ErrorCode::kUnsupported,
                            "video source " + target.redacted + ": unsupported scheme '" + scheme +
                                "'; use rtsp://, rtsps://, http:// or https://, or a file, folder or camera");
  }
  const std::string_view view(uri);
  constexpr std::string_view kDevVideo = "/dev/video";
  constexpr std::string_view kCameraPrefix = "camera:";
  if ((view.starts_with(kDevVideo) && parse_index(view.substr(kDevVideo.size()), &target.camera_index)) ||
      (view.starts_with(kCameraPrefix) && parse_index(view.substr(kCameraPrefix.size()), &target.camera_index)) ||
      parse_index(view, &target.camera_index)) {
    target.kind = SourceKind::kCamera;
    return target;
  }
  if (view.starts_with(kCameraPrefix)) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + uri + ": a camera is 'camera:N' with N a number, e.g. camera:0");
  }
  std::error_code error;
  if (std::filesystem::is_directory(uri, error)) target.kind = SourceKind::kImageFolder;
  return target;
}

}  // namespace

Size fit_size(int width, int height, int max_side_px) {
  const int longer = std::max(width, height);
  if (max_side_px <= 0 || longer <= max_side_px) return {width, height};
  const double scale = static_cast<double>(max_side_px) / longer;
  return {std::max(1, static_cast<int>(std::lround(width * scale))),
          std::max(1, static_cast<int>(std::lround(height * scale)))};
}

core::Error file_unopenable(const Target& target) {
  return core::make_error(core::ErrorCode::kUnsupported,
                          "video file " + target.redacted +
                              " cannot be opened: not a video, damaged, or a container or codec this FFmpeg "
                              "build cannot decode (mp4, mkv, avi, webm and mov with H.264, HEVC, VP8/9, "
                              "MPEG-4 or MJPEG work; re-encode others with ffmpeg -i in.x -c:v libx264 out.mp4)");
}

core::Error stream_unopenable(const Target& target, int64_t timeout_ms) {
  return core::make_error(core::ErrorCode::kUnavailable,
                          "network stream " + target.redacted + " cannot be opened within " +
                              std::to_string(timeout_ms) +
                              " ms: connection refused or timed out, wrong path or credentials, or no video "
                              "in the stream; check that the server is up and that the address plays in ffplay");
}

int64_t network_timeout_ms(const SourceOptions& options) {
  return std::clamp<int64_t>(options.open_timeout_ms, 1, 3'600'000);
}

double plausible_fps(double fps) { return fps > 0 && fps < 1000 ? fps : 0; }

const char* to_string(Backend backend) {
  switch (backend) {
    case Backend::kOpenCv: return "opencv";
    case Backend::kFfmpeg: return "ffmpeg";
    case Backend::kNvdec: return "nvdec";
  }
  return "unknown";
}

SourceStats Counters::snapshot() const {
  return SourceStats{frames_decoded.load(), frames_dropped.load(), reconnects.load(), decode_errors.load()};
}

void StopSignal::stop() {
  {
    // Set under the mutex so a waiter cannot miss the wake between testing the flag and sleeping.
    std::lock_guard lock(mutex_);
    stopped_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
}

bool StopSignal::wait_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_until(lock, deadline, [this] { return stopped(); });
}

bool Pacer::wait_for_pts(int64_t pts_us, StopSignal& stop) {
  if (!started_) {
    started_ = true;
    origin_pts_us_ = pts_us;
    origin_ = std::chrono::steady_clock::now();
    return !stop.stopped();
  }
  return stop.wait_until(origin_ + std::chrono::microseconds(pts_us - origin_pts_us_));
}

}  // namespace detail

namespace detail {
namespace {

constexpr bool kHaveOpenCv =
#ifdef WB_HAVE_OPENCV
    true;
#else
    false;
#endif
constexpr bool kHaveFfmpeg =
#ifdef WB_HAVE_FFMPEG
    true;
#else
    false;
#endif

// SourceOptions::decoder, checked against what the build has and what the source needs: cameras and image
// folders only decode through OpenCV (V4L2, imread).
core::Result<Backend> choose_backend(const std::string& decoder, const Target& target) {
  const auto no_build = [&](const char* library, const char* instead) {
    return core::make_error(core::ErrorCode::kUnsupported, "video source " + target.redacted + ": decoder '" + decoder +
                                                               "' needs " + library +
                                                               ", which this build does not have; " + instead);
  };
  Backend backend = Backend::kOpenCv;
  if (decoder == "auto") {
    // FFmpeg directly when the build has it: decoding, colour conversion and downscaling in one pass costs about
    // half of OpenCV's full-size conversion followed by a resize (bench/video_decode_bench).
    backend = kHaveFfmpeg ? Backend::kFfmpeg : Backend::kOpenCv;
  } else if (decoder == "opencv") {
    backend = Backend::kOpenCv;
  } else if (decoder == "ffmpeg") {
    backend = Backend::kFfmpeg;
  } else if (decoder == "nvdec") {
    backend = Backend::kNvdec;
  } else {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + target.redacted + ": unknown decoder '" + decoder +
                                "'; use auto, opencv, ffmpeg (software) or nvdec (FFmpeg with NVIDIA's decoder)");
  }
  const bool opencv_only = target.kind == SourceKind::kCamera || target.kind == SourceKind::kImageFolder;
  if (opencv_only && !kHaveOpenCv) {
    return core::make_error(core::ErrorCode::kUnsupported,
                            std::string(to_string(target.kind)) + " " + target.redacted +
                                ": this build has no OpenCV, which cameras and image folders need; use a video "
                                "file or a network stream");
  }
  if (opencv_only) return Backend::kOpenCv;  // the choice of decoder concerns video files and streams
  if (backend == Backend::kOpenCv && !kHaveOpenCv) return no_build("OpenCV", "use decoder ffmpeg or nvdec");
  if (backend != Backend::kOpenCv && !kHaveFfmpeg) {
    return no_build("the FFmpeg libraries (libavformat, libavcodec, libswscale)", "use decoder opencv");
  }
  return backend;
}

}  // namespace

core::Result<std::unique_ptr<Decoder>> open_decoder(const Target& target, const SourceOptions& options,
                                                    StopSignal* stop) {
#ifdef WB_HAVE_OPENCV
  if (target.backend == Backend::kOpenCv) return open_opencv(target, options);
#endif
#ifdef WB_HAVE_FFMPEG
  if (target.backend != Backend::kOpenCv) return open_ffmpeg(target, options, stop);
#endif
  (void)options;
  (void)stop;
  return core::make_error(core::ErrorCode::kInternal,
                          "video source: back-end " + std::string(to_string(target.backend)) + " is not in this build");
}

}  // namespace detail

core::Result<std::unique_ptr<Source>> Source::open(const SourceOptions& options) {
  auto target = detail::classify(options.uri);
  if (!target) return target.error();
  if (options.max_side_px < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + target->redacted + ": max_side_px must be 0 (keep) or positive");
  }
  if (options.loops < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + target->redacted + ": loops must be 0 (forever) or positive");
  }
  if (options.decode_threads < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + target->redacted + ": decode_threads must be 0 (automatic) or positive");
  }
  auto backend = detail::choose_backend(options.decoder, *target);
  if (!backend) return backend.error();
  target->backend = *backend;
  switch (target->kind) {
    case SourceKind::kFile: return detail::open_file(*target, options);
    case SourceKind::kImageFolder:
#ifdef WB_HAVE_OPENCV
      return detail::open_folder(*target, options);
#else
      break;  // refused by choose_backend
#endif
    case SourceKind::kCamera:
    case SourceKind::kNetwork: return detail::open_live(*target, options);
  }
  return core::make_error(core::ErrorCode::kInternal, "video source: unknown kind");
}

}  // namespace pose::video
