// Files and image folders: every frame in order, decoded on the caller's thread when next() asks, optionally
// paced at the media's frame rate.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <opencv2/imgcodecs.hpp>

#include "pose/video/sources.h"

namespace pose::video::detail {
namespace {

namespace fs = std::filesystem;

// When a file stops decoding this many frames (or 5%) short of the count its container announced, it is reported
// as truncated rather than ended: containers estimate counts, so a small shortfall is normal.
constexpr int64_t kMinMissingFramesForError = 3;
// Reads retried after a failure before deciding the file has ended; the FFmpeg back-end already skips packets that
// fail to decode, so these catch a failed frame that the next one recovers from.
constexpr int kReadRetries = 3;

int64_t frame_interval_us(double fps) { return fps > 0 ? static_cast<int64_t>(std::llround(1e6 / fps)) : 33'333; }

class FileSource final : public Source {
 public:
  FileSource(cv::VideoCapture capture, SourceInfo info, const SourceOptions& options, Frame first)
      : capture_(std::move(capture)), info_(std::move(info)), options_(options), pending_(std::move(first)) {
    counters_.frames_decoded = 1;
    last_pts_us_ = pending_->pts_us;
  }

  core::Result<std::optional<Frame>> next() override {
    if (stop_.stopped() || ended_) return std::optional<Frame>();
    if (failure_) return *failure_;
    std::optional<Frame> frame = std::exchange(pending_, std::nullopt);
    if (!frame) {
      auto decoded = decode();
      if (!decoded) {
        failure_ = decoded.error();
        return *failure_;
      }
      frame = std::move(*decoded);
      if (!frame) {
        ended_ = true;
        return frame;
      }
    }
    if (options_.realtime) {
      if (!pacer_.wait_for_pts(frame->pts_us, stop_)) return std::optional<Frame>();
      frame->arrival_us = now_us();  // a paced frame arrives when it is due, as a live one would
    }
    return frame;
  }

  void stop() override { stop_.stop(); }
  const SourceInfo& info() const override { return info_; }
  SourceStats stats() const override { return counters_.snapshot(); }

  // The first frame, read by open() so that a file with no decodable video fails there.
  static bool read(cv::VideoCapture& capture, int max_side_px, int64_t index, double fps, int64_t last_pts_us,
                   cv::Mat* scratch, Frame* frame) {
    if (!read_frame(capture, max_side_px, scratch, frame)) return false;
    frame->arrival_us = now_us();
    frame->index = index;
    // POS_MSEC is the decoded frame's presentation time; some containers report 0 or repeat it, so fall back to
    // one frame interval after the previous frame to keep timestamps increasing.
    const double pos_ms = capture.get(cv::CAP_PROP_POS_MSEC);
    const auto pts_us = static_cast<int64_t>(std::llround(pos_ms * 1000.0));
    frame->pts_us = (index == 0 || pts_us > last_pts_us) ? pts_us : last_pts_us + frame_interval_us(fps);
    return true;
  }

 private:
  // A frame, nullopt at a clean end, or an error when the file stops decoding well before its announced end.
  core::Result<std::optional<Frame>> decode() {
    Frame frame;
    const int64_t index = counters_.frames_decoded.load() + counters_.decode_errors.load();
    for (int failed = 0; failed <= kReadRetries; ++failed) {
      if (read(capture_, options_.max_side_px, index + failed, info_.fps, last_pts_us_, &scratch_, &frame)) {
        counters_.decode_errors += failed;  // frames skipped to reach this one
        ++counters_.frames_decoded;
        last_pts_us_ = frame.pts_us;
        return std::optional<Frame>(std::move(frame));
      }
      if (!frames_missing(index)) return std::optional<Frame>();
    }
    options_.logger.warn("video file ", info_.uri, ": decoding stopped at frame ", index, " of ", info_.frame_count);
    return core::make_error(core::ErrorCode::kCorrupt,
                            "video file " + info_.uri + ": decoding stopped at frame " + std::to_string(index) +
                                " of " + std::to_string(info_.frame_count) +
                                "; the file is truncated or corrupt (re-download or re-encode it)");
  }

  bool frames_missing(int64_t index) const {
    if (info_.frame_count <= 0) return false;
    const int64_t missing = info_.frame_count - index;
    return missing >= std::max(kMinMissingFramesForError, info_.frame_count / 20);
  }

  cv::VideoCapture capture_;
  SourceInfo info_;
  SourceOptions options_;
  std::optional<Frame> pending_;
  cv::Mat scratch_;
  int64_t last_pts_us_ = 0;
  std::optional<core::Error> failure_;
  bool ended_ = false;
  Counters counters_;
  StopSignal stop_;
  Pacer pacer_;
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

core::Result<std::unique_ptr<Source>> open_file(const Target& target, const SourceOptions& options) {
  std::error_code error;
  if (!fs::exists(target.uri, error)) {
    return core::make_error(core::ErrorCode::kNotFound, "video file " + target.redacted +
                                                            " not found (relative paths start at " +
                                                            fs::current_path(error).string() + "); check the path");
  }
  if (!fs::is_regular_file(target.uri, error)) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video source " + target.redacted + " is neither a regular file nor a folder");
  }
  cv::VideoCapture capture;
  if (!capture.open(target.uri, cv::CAP_FFMPEG) || !capture.isOpened()) {
    return core::make_error(core::ErrorCode::kUnsupported,
                            "video file " + target.redacted +
                                " cannot be opened: not a video, damaged, or a container or codec this FFmpeg "
                                "build cannot decode (mp4, mkv, avi, webm and mov with H.264, HEVC, VP8/9, "
                                "MPEG-4 or MJPEG work; re-encode others with ffmpeg -i in.x -c:v libx264 out.mp4)");
  }
  SourceInfo info;
  info.kind = SourceKind::kFile;
  info.uri = target.redacted;
  info.source_width = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_WIDTH));
  info.source_height = static_cast<int>(capture.get(cv::CAP_PROP_FRAME_HEIGHT));
  info.fps = std::max(0.0, capture.get(cv::CAP_PROP_FPS));
  const double count = capture.get(cv::CAP_PROP_FRAME_COUNT);
  info.frame_count = count > 0 ? static_cast<int64_t>(std::llround(count)) : -1;
  info.codec = fourcc_string(capture.get(cv::CAP_PROP_FOURCC));

  Frame first;
  cv::Mat scratch;
  if (!FileSource::read(capture, options.max_side_px, 0, info.fps, 0, &scratch, &first)) {
    return core::make_error(core::ErrorCode::kCorrupt, "video file " + target.redacted +
                                                           " has no decodable video frame (damaged, empty, or "
                                                           "audio only)");
  }
  info.width = first.width;
  info.height = first.height;
  if (info.source_width <= 0 || info.source_height <= 0) {
    info.source_width = scratch.empty() ? first.width : scratch.cols;
    info.source_height = scratch.empty() ? first.height : scratch.rows;
  }
  options.logger.info("opened video file ", info.uri, ": ", info.source_width, "x", info.source_height, " ", info.codec,
                      " at ", info.fps, " fps, ", info.frame_count, " frames");
  return std::unique_ptr<Source>(
      std::make_unique<FileSource>(std::move(capture), std::move(info), options, std::move(first)));
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
