// Cameras and network streams, over either back-end: a grabber thread decodes as fast as the source delivers into a
// one-frame slot where the newest frame wins, and reopens the source with exponential backoff when reading fails.

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "pose/video/sources.h"

namespace pose::video::detail {
namespace {

std::string describe(const Target& target) { return std::string(to_string(target.kind)) + " " + target.redacted; }

class LiveSource final : public Source {
 public:
  // `decoder` was opened watching `grabber_stop`.
  LiveSource(Target target, const SourceOptions& options, std::unique_ptr<StopSignal> grabber_stop,
             std::unique_ptr<Decoder> decoder, SourceInfo info)
      : target_(std::move(target)),
        options_(options),
        info_(std::move(info)),
        grabber_stop_(std::move(grabber_stop)),
        decoder_(std::move(decoder)),
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

  // Also abandons a network read blocked in the FFmpeg back-end (OpenCV's ends at its read timeout).
  void stop() override {
    grabber_stop_->stop();
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
    int64_t index = 0;
    int attempts = 0;
    int64_t backoff_ms = std::max<int64_t>(1, options_.reconnect_initial_ms);
    while (!grabber_stop_->stopped()) {
      if (decoder_) {
        auto read = decoder_->read(&frame);
        if (!read) {
          fail(read.error());  // this stream can never decode here: reopening would not help
          return;
        }
        counters_.decode_errors += read->corrupt_skipped;
        if (read->frame) {
          attempts = 0;
          backoff_ms = std::max<int64_t>(1, options_.reconnect_initial_ms);
          frame.arrival_us = now_us();
          frame.pts_us = frame.arrival_us - opened_us_;
          frame.index = index++;
          ++counters_.frames_decoded;
          publish(&frame);
          continue;
        }
        decoder_.reset();
        if (grabber_stop_->stopped()) return;
        options_.logger.warn(describe(target_), ": reading failed; reopening");
      }
      if (options_.max_reconnects >= 0 && attempts >= options_.max_reconnects) {
        fail(core::make_error(core::ErrorCode::kUnavailable,
                              describe(target_) + " failed and could not be reopened (" + std::to_string(attempts) +
                                  " attempts in a row); check the camera or the stream's server"));
        return;
      }
      // A backoff that stop() cuts short.
      if (!grabber_stop_->wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(backoff_ms))) return;
      backoff_ms = std::min(backoff_ms * 2, std::max(options_.reconnect_max_ms, options_.reconnect_initial_ms));
      ++attempts;
      ++counters_.reconnects;
      auto reopened = open_decoder(target_, options_, grabber_stop_.get());
      if (reopened) {
        decoder_ = std::move(*reopened);
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

  const Target target_;
  const SourceOptions options_;
  const SourceInfo info_;
  // What the grabber's backoff and FFmpeg's blocked I/O watch; on the heap because the first decoder is opened,
  // watching it, before this source exists.
  const std::unique_ptr<StopSignal> grabber_stop_;
  std::unique_ptr<Decoder> decoder_;  // the grabber thread's alone once it runs; null between failure and reopen
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
  auto stop = std::make_unique<StopSignal>();
  auto decoder = open_decoder(target, options, stop.get());
  if (!decoder) return decoder.error();
  SourceInfo info = (*decoder)->stream();
  info.kind = target.kind;
  info.uri = target.redacted;
  info.frame_count = -1;  // a live source has no end
  options.logger.info("opened ", describe(target), " (", info.decoder, "): ", info.source_width, "x",
                      info.source_height, " ", info.codec, " at ", info.fps, " fps");
  return std::unique_ptr<Source>(
      std::make_unique<LiveSource>(target, options, std::move(stop), std::move(*decoder), std::move(info)));
}

}  // namespace pose::video::detail
