// Source::open: deciding what a uri names, and the helpers every source shares.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <system_error>

#include <opencv2/imgproc.hpp>

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

cv::Size fit_size(int width, int height, int max_side_px) {
  const int longer = std::max(width, height);
  if (max_side_px <= 0 || longer <= max_side_px) return {width, height};
  const double scale = static_cast<double>(max_side_px) / longer;
  return {std::max(1, static_cast<int>(std::lround(width * scale))),
          std::max(1, static_cast<int>(std::lround(height * scale)))};
}

void store_bgr(const cv::Mat& image, int max_side_px, Frame* frame) {
  cv::Mat bgr = image;
  if (image.type() == CV_8UC1) cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
  if (image.type() == CV_8UC4) cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
  const cv::Size size = fit_size(bgr.cols, bgr.rows, max_side_px);
  frame->width = size.width;
  frame->height = size.height;
  frame->bgr.resize(static_cast<size_t>(size.area()) * 3);
  // A Mat over the vector's memory: resize and copyTo write into it since its size and type already match.
  cv::Mat packed(size, CV_8UC3, frame->bgr.data());
  if (size != bgr.size()) {
    cv::resize(bgr, packed, size, 0, 0, cv::INTER_AREA);
  } else {
    bgr.copyTo(packed);
  }
}

bool read_frame(cv::VideoCapture& capture, int max_side_px, cv::Mat* scratch, Frame* frame) {
  const int width = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  const int height = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  if (width > 0 && height > 0 && fit_size(width, height, max_side_px) == cv::Size(width, height)) {
    frame->bgr.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
    cv::Mat packed(height, width, CV_8UC3, frame->bgr.data());
    if (!capture.read(packed)) return false;
    // The back-end reallocated: the stream's size or pixel format is not what it announced.
    if (packed.data != frame->bgr.data() || !packed.isContinuous()) {
      *scratch = packed;
      store_bgr(*scratch, max_side_px, frame);
      return true;
    }
    frame->width = width;
    frame->height = height;
    return true;
  }
  if (!capture.read(*scratch) || scratch->empty()) return false;
  store_bgr(*scratch, max_side_px, frame);
  return true;
}

std::string fourcc_string(double fourcc) {
  const auto code = static_cast<uint32_t>(fourcc);
  std::string text;
  for (int shift = 0; shift < 32; shift += 8) {
    const char c = static_cast<char>((code >> shift) & 0xFF);
    if (std::isprint(static_cast<unsigned char>(c))) text += c;
  }
  return code == 0 ? std::string() : text;
}

SourceStats Counters::snapshot() const {
  return SourceStats{frames_decoded.load(), frames_dropped.load(), reconnects.load(), decode_errors.load()};
}

void StopSignal::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  wake_.notify_all();
}

bool StopSignal::stopped() const {
  std::lock_guard lock(mutex_);
  return stopped_;
}

bool StopSignal::wait_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_until(lock, deadline, [this] { return stopped_; });
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

core::Result<std::unique_ptr<Source>> Source::open(const SourceOptions& options) {
  auto target = detail::classify(options.uri);
  if (!target) return target.error();
  if (options.max_side_px < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + target->redacted + ": max_side_px must be 0 (keep) or positive");
  }
  switch (target->kind) {
    case SourceKind::kFile: return detail::open_file(*target, options);
    case SourceKind::kImageFolder: return detail::open_folder(*target, options);
    case SourceKind::kCamera:
    case SourceKind::kNetwork: return detail::open_live(*target, options);
  }
  return core::make_error(core::ErrorCode::kInternal, "video source: unknown kind");
}

}  // namespace pose::video
