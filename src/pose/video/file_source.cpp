// Video files, over either back-end: every frame in order, decoded on the caller's thread when next() asks,
// optionally paced at the media's frame rate.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

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
  FileSource(Target target, std::unique_ptr<Decoder> decoder, SourceInfo info, const SourceOptions& options)
      : target_(std::move(target)), decoder_(std::move(decoder)), info_(std::move(info)), options_(options) {}

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

  // open(): the first frame, decoded so that a file with no decodable video fails there, and kept for next().
  core::Status probe() {
    auto first = decode();
    if (!first) return first.error();
    if (!*first) {
      return core::make_error(core::ErrorCode::kCorrupt, "video file " + info_.uri +
                                                             " has no decodable video frame (damaged, empty, or "
                                                             "audio only)");
    }
    pending_ = std::move(*first);
    const SourceInfo& stream = decoder_->stream();
    info_.width = pending_->width;
    info_.height = pending_->height;
    info_.source_width = stream.source_width;
    info_.source_height = stream.source_height;
    return {};
  }

 private:
  // A frame, nullopt at a clean end, or an error when the file stops decoding well before its announced end.
  core::Result<std::optional<Frame>> decode() {
    Frame frame;
    const int64_t index = counters_.frames_decoded.load() + counters_.decode_errors.load();
    for (int failed = 0; failed <= kReadRetries; ++failed) {
      auto read = decoder_->read(&frame);
      if (!read) return read.error();
      counters_.decode_errors += read->corrupt_skipped;
      if (read->frame) {
        counters_.decode_errors += failed;  // reads that failed to reach this one
        ++counters_.frames_decoded;
        frame.arrival_us = now_us();
        frame.index = index + failed + read->corrupt_skipped;
        frame.pts_us += pts_offset_us_;
        // Some containers give no time or repeat it: one frame interval after the previous frame keeps
        // timestamps increasing.
        if (frame.index > 0 && frame.pts_us <= last_pts_us_) frame.pts_us = last_pts_us_ + frame_interval_us(info_.fps);
        last_pts_us_ = frame.pts_us;
        return std::optional<Frame>(std::move(frame));
      }
      if (!frames_missing(index - loop_start_index_)) {
        if (!another_loop()) return std::optional<Frame>();
        // The file again from its start, its timestamps continuing one frame after the last.
        auto reopened = open_decoder(target_, options_, nullptr);
        if (!reopened) return reopened.error();
        decoder_ = std::move(*reopened);
        ++loops_done_;
        pts_offset_us_ = last_pts_us_ + frame_interval_us(info_.fps);
        loop_start_index_ = index;
        failed = -1;
        continue;
      }
    }
    options_.logger.warn("video file ", info_.uri, ": decoding stopped at frame ", index, " of ", info_.frame_count);
    return core::make_error(core::ErrorCode::kCorrupt,
                            "video file " + info_.uri + ": decoding stopped at frame " + std::to_string(index) +
                                " of " + std::to_string(info_.frame_count) +
                                "; the file is truncated or corrupt (re-download or re-encode it)");
  }

  bool another_loop() const { return options_.loops == 0 || loops_done_ + 1 < options_.loops; }

  bool frames_missing(int64_t index) const {
    if (info_.frame_count <= 0) return false;
    const int64_t missing = info_.frame_count - index;
    return missing >= std::max(kMinMissingFramesForError, info_.frame_count / 20);
  }

  Target target_;
  std::unique_ptr<Decoder> decoder_;
  SourceInfo info_;
  SourceOptions options_;
  std::optional<Frame> pending_;
  int64_t last_pts_us_ = 0;
  int loops_done_ = 0;
  int64_t pts_offset_us_ = 0;     // media time of the loops before this one
  int64_t loop_start_index_ = 0;  // frame index where this loop began
  std::optional<core::Error> failure_;
  bool ended_ = false;
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
  // A local file's reads do not block for long: stop() is checked between frames, not inside a read.
  auto decoder = open_decoder(target, options, nullptr);
  if (!decoder) return decoder.error();
  SourceInfo info = (*decoder)->stream();
  info.kind = SourceKind::kFile;
  info.uri = target.redacted;
  auto source = std::make_unique<FileSource>(target, std::move(*decoder), std::move(info), options);
  if (auto probed = source->probe(); !probed) return probed.error();
  const SourceInfo& opened = source->info();
  options.logger.info("opened video file ", opened.uri, " (", opened.decoder, "): ", opened.source_width, "x",
                      opened.source_height, " ", opened.codec, " at ", opened.fps, " fps, ", opened.frame_count,
                      " frames");
  return std::unique_ptr<Source>(std::move(source));
}

}  // namespace pose::video::detail
