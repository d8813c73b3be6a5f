// The OpenCV back-end: video files, cameras (V4L2) and network streams through cv::VideoCapture, and image folders
// through imread.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "pose/video/sources.h"

namespace pose::video::detail {
namespace {

namespace fs = std::filesystem;

cv::Size cv_size(Size size) { return {size.width, size.height}; }

// Writes `image` (any 8-bit 1, 3 or 4 channel Mat, continuous or not) into frame->bgr as packed BGR, downscaled
// with INTER_AREA to fit max_side_px. frame->bgr's allocation is reused when it is large enough.
void store_bgr(const cv::Mat& image, int max_side_px, Frame* frame) {
  cv::Mat bgr = image;
  if (image.type() == CV_8UC1) cv::cvtColor(image, bgr, cv::COLOR_GRAY2BGR);
  if (image.type() == CV_8UC4) cv::cvtColor(image, bgr, cv::COLOR_BGRA2BGR);
  const cv::Size size = cv_size(fit_size(bgr.cols, bgr.rows, max_side_px));
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

// Reads the next frame of `capture` into frame->bgr. When no downscale is needed the capture decodes straight
// into the vector's memory (OpenCV keeps an output Mat whose size and type already match); otherwise `scratch`
// holds the decoded image between reads so its allocation is reused.
bool read_frame(cv::VideoCapture& capture, int max_side_px, cv::Mat* scratch, Frame* frame) {
  const int width = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  const int height = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  if (width > 0 && height > 0 && fit_size(width, height, max_side_px) == Size{width, height}) {
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

// "avc1" from CAP_PROP_FOURCC; empty when the back-end does not say.
std::string fourcc_string(double fourcc) {
  const auto code = static_cast<uint32_t>(fourcc);
  std::string text;
  for (int shift = 0; shift < 32; shift += 8) {
    const char c = static_cast<char>((code >> shift) & 0xFF);
    if (std::isprint(static_cast<unsigned char>(c))) text += c;
  }
  return code == 0 ? std::string() : text;
}

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
  if (target.kind == SourceKind::kFile) {
    if (!capture.open(target.uri, cv::CAP_FFMPEG) || !capture.isOpened()) return file_unopenable(target);
    return capture;
  }
  // Bounded connect and reads: FFmpeg otherwise waits 30 s on a dead host and forever on a stalled stream.
  const int timeout_ms = static_cast<int>(network_timeout_ms(options));
  const std::vector<int> parameters = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv::CAP_PROP_READ_TIMEOUT_MSEC,
                                       timeout_ms};
  if (!capture.open(target.uri, cv::CAP_FFMPEG, parameters) || !capture.isOpened()) {
    return stream_unopenable(target, timeout_ms);
  }
  return capture;
}

class OpenCvDecoder final : public Decoder {
 public:
  // cv::VideoCapture shares its back-end between copies: the copy is the handle, not the stream.
  OpenCvDecoder(const cv::VideoCapture& capture, const SourceOptions& options)
      : capture_(capture), max_side_px_(options.max_side_px) {
    stream_.decoder = to_string(Backend::kOpenCv);
    stream_.source_width = static_cast<int>(capture_.get(cv::CAP_PROP_FRAME_WIDTH));
    stream_.source_height = static_cast<int>(capture_.get(cv::CAP_PROP_FRAME_HEIGHT));
    const Size size = fit_size(stream_.source_width, stream_.source_height, max_side_px_);
    stream_.width = size.width;
    stream_.height = size.height;
    stream_.fps = plausible_fps(capture_.get(cv::CAP_PROP_FPS));
    const double count = capture_.get(cv::CAP_PROP_FRAME_COUNT);
    stream_.frame_count = count > 0 ? static_cast<int64_t>(std::llround(count)) : -1;
    stream_.codec = fourcc_string(capture_.get(cv::CAP_PROP_FOURCC));
  }

  const SourceInfo& stream() const override { return stream_; }

  // OpenCV's FFmpeg back-end skips packets that fail to decode without saying so: corrupt_skipped stays 0.
  core::Result<Read> read(Frame* frame) override {
    if (!read_frame(capture_, max_side_px_, &scratch_, frame)) return Read{};
    if (stream_.source_width <= 0 || stream_.source_height <= 0) {  // the back-end did not announce the size
      stream_.source_width = scratch_.empty() ? frame->width : scratch_.cols;
      stream_.source_height = scratch_.empty() ? frame->height : scratch_.rows;
    }
    // POS_MSEC is the decoded frame's presentation time since the stream's start.
    frame->pts_us = static_cast<int64_t>(std::llround(capture_.get(cv::CAP_PROP_POS_MSEC) * 1000.0));
    return Read{.frame = true};
  }

 private:
  cv::VideoCapture capture_;
  int max_side_px_;
  cv::Mat scratch_;
  SourceInfo stream_;
};

bool is_image(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png" || extension == ".bmp" ||
         extension == ".webp";
}

// "frame2" before "frame10": runs of digits compare by value, everything else by character.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool a_digit = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool b_digit = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (a_digit && b_digit) {
      size_t a_end = i, b_end = j;
      while (a_end < a.size() && std::isdigit(static_cast<unsigned char>(a[a_end]))) ++a_end;
      while (b_end < b.size() && std::isdigit(static_cast<unsigned char>(b[b_end]))) ++b_end;
      size_t a_start = i, b_start = j;
      while (a_start + 1 < a_end && a[a_start] == '0') ++a_start;
      while (b_start + 1 < b_end && b[b_start] == '0') ++b_start;
      const std::string_view a_run(a.data() + a_start, a_end - a_start);
      const std::string_view b_run(b.data() + b_start, b_end - b_start);
      if (a_run.size() != b_run.size()) return a_run.size() < b_run.size();
      if (a_run != b_run) return a_run < b_run;
      i = a_end;
      j = b_end;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

class FolderSource final : public Source {
 public:
  FolderSource(std::vector<fs::path> images, SourceInfo info, const SourceOptions& options)
      : images_(std::move(images)), info_(std::move(info)), options_(options) {}

  core::Result<std::optional<Frame>> next() override {
    while (!stop_.stopped()) {
      std::optional<Frame> frame = std::exchange(pending_, std::nullopt);
      if (!frame && next_ < images_.size()) frame = decode(next_++);
      if (!frame) {
        if (next_ < images_.size()) continue;  // skipped an image that does not decode
        break;
      }
      if (options_.realtime) {
        if (!pacer_.wait_for_pts(frame->pts_us, stop_)) break;
        frame->arrival_us = now_us();
      }
      return frame;
    }
    return std::optional<Frame>();
  }

  void stop() override { stop_.stop(); }
  const SourceInfo& info() const override { return info_; }
  SourceStats stats() const override { return counters_.snapshot(); }

  // An image that does not decode is skipped and counted; the others keep the timestamps of their positions.
  std::optional<Frame> decode(size_t position) {
    const cv::Mat image = cv::imread(images_[position].string(), cv::IMREAD_COLOR);
    if (image.empty()) {
      ++counters_.decode_errors;
      options_.logger.warn("image folder ", info_.uri, ": skipping ", images_[position].filename().string(),
                           " (not a decodable image)");
      return std::nullopt;
    }
    Frame frame;
    store_bgr(image, options_.max_side_px, &frame);
    frame.arrival_us = now_us();
    frame.index = static_cast<int64_t>(position);
    frame.pts_us = static_cast<int64_t>(std::llround(static_cast<double>(position) * 1e6 / options_.folder_fps));
    ++counters_.frames_decoded;
    if (info_.source_width == 0) {
      info_.source_width = image.cols;
      info_.source_height = image.rows;
    }
    return frame;
  }

  // open(): the first image that decodes sets the info's size and is kept for the first next().
  core::Status probe() {
    while (next_ < images_.size()) {
      pending_ = decode(next_++);
      if (!pending_) continue;
      info_.width = pending_->width;
      info_.height = pending_->height;
      return {};
    }
    return core::make_error(core::ErrorCode::kCorrupt, "image folder " + info_.uri + ": none of its " +
                                                           std::to_string(images_.size()) + " images decodes");
  }

 private:
  std::vector<fs::path> images_;
  size_t next_ = 0;
  std::optional<Frame> pending_;
  SourceInfo info_;
  SourceOptions options_;
  Counters counters_;
  StopSignal stop_;
  Pacer pacer_;
};

}  // namespace

core::Result<std::unique_ptr<Decoder>> open_opencv(const Target& target, const SourceOptions& options) {
  auto capture = open_capture(target, options);
  if (!capture) return capture.error();
  return std::unique_ptr<Decoder>(std::make_unique<OpenCvDecoder>(std::move(*capture), options));
}

core::Result<std::unique_ptr<Source>> open_folder(const Target& target, const SourceOptions& options) {
  if (!(options.folder_fps > 0)) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "image folder " + target.redacted + ": folder_fps must be positive");
  }
  std::vector<fs::path> images;
  std::error_code error;
  for (fs::directory_iterator it(target.uri, error), end; !error && it != end; it.increment(error)) {
    if (it->is_regular_file(error) && is_image(it->path())) images.push_back(it->path());
  }
  if (error) {
    return core::make_error(core::ErrorCode::kIo,
                            "image folder " + target.redacted + " cannot be listed: " + error.message());
  }
  if (images.empty()) {
    return core::make_error(core::ErrorCode::kNotFound,
                            "image folder " + target.redacted +
                                " has no images (jpg, jpeg, png, bmp or webp); point the source at a video file "
                                "or a folder of frames");
  }
  std::sort(images.begin(), images.end(), [](const fs::path& a, const fs::path& b) {
    return natural_less(a.filename().string(), b.filename().string());
  });
  SourceInfo info;
  info.kind = SourceKind::kImageFolder;
  info.uri = target.redacted;
  info.fps = options.folder_fps;
  info.frame_count = static_cast<int64_t>(images.size());
  info.codec = "image";
  auto source = std::make_unique<FolderSource>(std::move(images), std::move(info), options);
  if (auto probed = source->probe(); !probed) return probed.error();
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace pose::video::detail
