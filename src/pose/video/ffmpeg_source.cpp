// The FFmpeg back-end: video files and network streams through libavformat and libavcodec directly, decoded in
// software (codec threads) or on NVIDIA's NVDEC (the `cuda` hwaccel, whose frames are copied to the host as NV12),
// then converted to packed BGR and downscaled to the delivered size by one sws_scale pass.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include "pose/video/sources.h"

namespace pose::video::detail {
namespace {

// Area averaging when downscaling: cheaper than bilinear in this one-pass conversion (1080p yuv420p -> 640x360
// BGR: 0.67 ms against 0.97 ms on one Xeon core), and the OpenCV back-end's INTER_AREA does the same.
constexpr int kDownscaleFlags = SWS_AREA;
// At the native size only the chroma is resampled: bicubic, as OpenCV's back-end does, so both give the same
// pixels.
constexpr int kNativeSizeFlags = SWS_BICUBIC;
// Errors from avcodec_receive_frame in a row after which a stream is taken to have ended: each consumes
// nothing, so without a bound a decoder stuck in an error state would loop.
constexpr int kMaxReceiveErrorsInARow = 64;
// Bytes swscale's vector stores may reach past the last row (a 64-byte vector at most, twice for safety).
constexpr size_t kScalerOverrunBytes = 128;
constexpr int kMaxAutoThreads = 4;  // frame threads add a frame of latency and memory each; 4 saturate 1080p

struct FormatCloser {
  void operator()(AVFormatContext* context) const { avformat_close_input(&context); }
};
struct CodecFreer {
  void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
struct PacketFreer {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct FrameFreer {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct ScalerFreer {
  void operator()(SwsContext* context) const { sws_freeContext(context); }
};
struct BufferUnref {
  void operator()(AVBufferRef* buffer) const { av_buffer_unref(&buffer); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using ScalerPtr = std::unique_ptr<SwsContext, ScalerFreer>;
using BufferPtr = std::unique_ptr<AVBufferRef, BufferUnref>;

std::string av_error(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

// FFmpeg logs to stderr at INFO by default (every damaged macroblock, every probe guess). Process-wide, as OpenCV's
// back-end does the same when it loads: errors only.
void quiet_ffmpeg_logs() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_ERROR); });
}

// What FFmpeg's callbacks see. Heap-allocated by open so that its address outlives every context pointing at it.
struct CallbackState {
  StopSignal* stop = nullptr;  // may be null (files)
  int64_t timeout_us = 0;      // network: each open and each read must finish within this; 0: no bound
  int64_t deadline_us = 0;     // of the blocking call in progress
  std::atomic<bool> nvdec_refused{false};

  void arm() { deadline_us = timeout_us > 0 ? now_us() + timeout_us : 0; }

  // FFmpeg polls this while its I/O waits; non-zero abandons the wait (AVERROR_EXIT).
  static int interrupted(void* opaque) {
    const auto* state = static_cast<const CallbackState*>(opaque);
    const bool stopped = state->stop != nullptr && state->stop->stopped();
    return stopped || (state->deadline_us > 0 && now_us() > state->deadline_us) ? 1 : 0;
  }

  // NVDEC or nothing: when the cuda hwaccel fails to start FFmpeg offers the software formats instead, and taking
  // one would be the silent fallback that decoder=nvdec promises not to make.
  static AVPixelFormat pick_cuda(AVCodecContext* context, const AVPixelFormat* formats) {
    for (const AVPixelFormat* format = formats; *format != AV_PIX_FMT_NONE; ++format) {
      if (*format == AV_PIX_FMT_CUDA) return *format;
    }
    static_cast<CallbackState*>(context->opaque)->nvdec_refused = true;
    return AV_PIX_FMT_NONE;
  }
};

std::string fourcc_or_name(const AVCodecParameters& parameters) {
  std::string text;
  for (int shift = 0; shift < 32; shift += 8) {
    const auto c = static_cast<char>((parameters.codec_tag >> shift) & 0xFFu);
    if (c < 0x20 || c > 0x7E) return avcodec_get_name(parameters.codec_id);
    text += c;
  }
  return text;
}

// Frame rate and count as OpenCV's FFmpeg back-end derives them, so both back-ends describe a file alike.
void describe_stream(const AVFormatContext& format, const AVStream& stream, SourceInfo* info) {
  AVRational rate = stream.avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = stream.r_frame_rate;
  info->fps = rate.num > 0 && rate.den > 0 ? plausible_fps(av_q2d(rate)) : 0;
  if (stream.nb_frames > 0) {
    info->frame_count = stream.nb_frames;
    return;
  }
  double duration_s = format.duration > 0 ? static_cast<double>(format.duration) / AV_TIME_BASE : 0;
  if (duration_s <= 0 && stream.duration > 0)
    duration_s = static_cast<double>(stream.duration) * av_q2d(stream.time_base);
  const double count = std::floor(duration_s * info->fps + 0.5);
  info->frame_count = count > 0 ? static_cast<int64_t>(count) : -1;
}

core::Error nvdec_unavailable(const Target& target, const std::string& why) {
  return core::make_error(core::ErrorCode::kUnavailable, std::string(to_string(target.kind)) + " " + target.redacted +
                                                             ": NVDEC unavailable: " + why +
                                                             "; use decoder ffmpeg (or auto) to decode in software");
}

// The CUDA device context every NVDEC decoder of the process shares. With a context per stream the GPU
// time-slices between the contexts, and 8 streams got 24 fps each on an H100. Created at the first NVDEC open
// and kept until the process ends; a failed creation is not remembered, so a later open tries again.
core::Result<BufferPtr> shared_cuda_device(const Target& target) {
  static std::mutex mutex;
  static AVBufferRef* device = nullptr;
  const std::lock_guard lock(mutex);
  if (device == nullptr) {
    const int created = av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_CUDA, nullptr, nullptr, 0);
    if (created < 0) {
      device = nullptr;
      return nvdec_unavailable(target, "no CUDA device could be opened (" + av_error(created) +
                                           "): needs an NVIDIA GPU with its driver's libcuda.so.1 and libnvcuvid.so.1");
    }
  }
  BufferPtr reference(av_buffer_ref(device));
  if (!reference) return core::make_error(core::ErrorCode::kOutOfMemory, "NVDEC: out of memory");
  return reference;
}

// Points the codec at the shared CUDA device and makes it decode there or not at all.
core::Status attach_nvdec(const Target& target, const AVCodec& codec, AVCodecContext* context) {
  bool supported = false;
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* config = avcodec_get_hw_config(&codec, i);
    if (config == nullptr) break;
    supported |= config->device_type == AV_HWDEVICE_TYPE_CUDA &&
                 (config->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) != 0;
  }
  if (!supported) {
    return nvdec_unavailable(target, std::string("this FFmpeg build has no NVDEC (cuda hwaccel) for codec ") +
                                         codec.name + " (NVDEC decodes H.264, HEVC, VP8, VP9, AV1, MPEG-1/2/4)");
  }
  auto device = shared_cuda_device(target);
  if (!device) return device.error();
  context->hw_device_ctx = av_buffer_ref(device->get());
  if (context->hw_device_ctx == nullptr) return core::make_error(core::ErrorCode::kOutOfMemory, "NVDEC: out of memory");
  context->get_format = &CallbackState::pick_cuda;
  context->thread_count = 1;  // the GPU decodes; CPU frame threads would only add latency and surfaces
  return {};
}

int software_threads(const SourceOptions& options) {
  if (options.decode_threads > 0) return options.decode_threads;
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, kMaxAutoThreads);
}

class FfmpegDecoder final : public Decoder {
 public:
  struct Parts {
    std::unique_ptr<CallbackState> state;
    FormatPtr format;
    CodecPtr codec;
    int stream_index = -1;
    SourceInfo stream;
    Target target;
    int max_side_px = 0;
  };

  explicit FfmpegDecoder(Parts parts)
      : parts_(std::move(parts)), packet_(av_packet_alloc()), decoded_(av_frame_alloc()), host_(av_frame_alloc()) {}

  bool allocated() const { return packet_ && decoded_ && host_; }
  const SourceInfo& stream() const override { return parts_.stream; }

  core::Result<Read> read(Frame* frame) override {
    Read read;
    int receive_errors = 0;
    for (;;) {
      const int received = avcodec_receive_frame(parts_.codec.get(), decoded_.get());
      if (parts_.state->nvdec_refused) return nvdec_refused();
      if (received == 0) {
        auto converted = convert(frame);
        av_frame_unref(decoded_.get());
        if (!converted) return converted.error();
        read.frame = true;
        return read;
      }
      if (received == AVERROR_EOF) return read;
      if (received != AVERROR(EAGAIN)) {
        ++read.corrupt_skipped;
        if (++receive_errors >= kMaxReceiveErrorsInARow) return read;
        continue;
      }
      if (draining_) return read;
      parts_.state->arm();
      if (av_read_frame(parts_.format.get(), packet_.get()) < 0) {
        // The end, a damaged container, a network failure, a timeout or stop(): hand out what the decoder holds.
        draining_ = true;
        avcodec_send_packet(parts_.codec.get(), nullptr);
        continue;
      }
      if (packet_->stream_index != parts_.stream_index) {
        av_packet_unref(packet_.get());
        continue;
      }
      const int sent = avcodec_send_packet(parts_.codec.get(), packet_.get());
      av_packet_unref(packet_.get());
      if (parts_.state->nvdec_refused) return nvdec_refused();
      if (sent < 0 && sent != AVERROR(EAGAIN)) ++read.corrupt_skipped;
    }
  }

 private:
  core::Error nvdec_refused() const {
    const AVCodecContext& codec = *parts_.codec;
    const char* profile = avcodec_profile_name(codec.codec_id, codec.profile);
    return nvdec_unavailable(parts_.target, std::string("the cuda hwaccel did not start for ") +
                                                avcodec_get_name(codec.codec_id) + " " + (profile ? profile : "") +
                                                " " + std::to_string(codec.width) + "x" + std::to_string(codec.height) +
                                                " (libnvcuvid.so.1 missing from the driver install, or this GPU's "
                                                "NVDEC does not support the codec, profile or size)");
  }

  // Pixels of `decoded_` into frame->bgr at the delivered size; media time into frame->pts_us.
  core::Status convert(Frame* frame) {
    const AVFrame* image = decoded_.get();
    if (image->format == AV_PIX_FMT_CUDA) {
      av_frame_unref(host_.get());
      const int copied = av_hwframe_transfer_data(host_.get(), image, 0);
      if (copied < 0) {
        return nvdec_unavailable(parts_.target,
                                 "a decoded frame could not be copied from the GPU (" + av_error(copied) + ")");
      }
      image = host_.get();
    }
    const auto format = static_cast<AVPixelFormat>(image->format);
    const Size size = fit_size(image->width, image->height, parts_.max_side_px);
    const int flags = size == Size{image->width, image->height} ? kNativeSizeFlags : kDownscaleFlags;
    scaler_.reset(sws_getCachedContext(scaler_.release(), image->width, image->height, format, size.width, size.height,
                                       AV_PIX_FMT_BGR24, flags, nullptr, nullptr, nullptr));
    if (!scaler_) {
      const char* name = av_get_pix_fmt_name(format);
      return core::make_error(core::ErrorCode::kUnsupported,
                              std::string(to_string(parts_.target.kind)) + " " + parts_.target.redacted +
                                  ": pixel format " + (name ? name : "unknown") + " cannot be converted to BGR");
    }
    frame->width = size.width;
    frame->height = size.height;
    // swscale's SIMD converters write whole vectors of pixels: given a stride no longer than the row they leave
    // its last pixels unconverted. So they get rows padded to a multiple of 16 pixels and 32 bytes (and slack
    // after the last row), and the rows are packed afterwards in place.
    const auto width = static_cast<size_t>(size.width);
    const size_t row_bytes = width * 3;
    const size_t stride_bytes = ((width + 15) / 16 * 16 * 3 + 31) / 32 * 32;
    frame->bgr.resize(stride_bytes * static_cast<size_t>(size.height) + kScalerOverrunBytes);
    uint8_t* const planes[4] = {frame->bgr.data(), nullptr, nullptr, nullptr};
    const int strides[4] = {static_cast<int>(stride_bytes), 0, 0, 0};
    sws_scale(scaler_.get(), image->data, image->linesize, 0, image->height, planes, strides);
    if (stride_bytes != row_bytes) {
      for (size_t y = 1; y < static_cast<size_t>(size.height); ++y) {
        std::memmove(frame->bgr.data() + y * row_bytes, frame->bgr.data() + y * stride_bytes, row_bytes);
      }
    }
    frame->bgr.resize(row_bytes * static_cast<size_t>(size.height));

    const AVStream& stream = *parts_.format->streams[parts_.stream_index];
    const int64_t pts = decoded_->best_effort_timestamp;
    const int64_t start = stream.start_time == AV_NOPTS_VALUE ? 0 : stream.start_time;
    frame->pts_us = pts == AV_NOPTS_VALUE ? 0 : av_rescale_q(pts - start, stream.time_base, AVRational{1, 1'000'000});
    return {};
  }

  Parts parts_;
  PacketPtr packet_;
  FramePtr decoded_;
  FramePtr host_;  // NVDEC: the frame copied from the GPU
  ScalerPtr scaler_;
  bool draining_ = false;
};

}  // namespace

core::Result<std::unique_ptr<Decoder>> open_ffmpeg(const Target& target, const SourceOptions& options,
                                                   StopSignal* stop) {
  quiet_ffmpeg_logs();
  const bool network = target.kind == SourceKind::kNetwork;
  if (!network && target.kind != SourceKind::kFile) {
    return core::make_error(core::ErrorCode::kUnsupported, std::string(to_string(target.kind)) + " " + target.redacted +
                                                               ": the FFmpeg back-end reads files and network "
                                                               "streams only; use decoder opencv");
  }
  const int64_t timeout_ms = network_timeout_ms(options);
  auto state = std::make_unique<CallbackState>();
  state->stop = stop;
  state->timeout_us = network ? timeout_ms * 1000 : 0;

  AVFormatContext* raw_format = avformat_alloc_context();
  if (raw_format == nullptr) return core::make_error(core::ErrorCode::kOutOfMemory, "FFmpeg: out of memory");
  raw_format->interrupt_callback = AVIOInterruptCB{&CallbackState::interrupted, state.get()};
  AVDictionary* settings = nullptr;
  // As OpenCV's back-end: RTSP over TCP, since UDP loses packets (smeared frames) and rarely passes NAT.
  if (network) av_dict_set(&settings, "rtsp_transport", "tcp", 0);
  state->arm();
  const int opened = avformat_open_input(&raw_format, target.uri.c_str(), nullptr, &settings);  // frees on failure
  av_dict_free(&settings);
  if (opened < 0) return network ? stream_unopenable(target, timeout_ms) : file_unopenable(target);
  FormatPtr format(raw_format);

  state->arm();
  if (avformat_find_stream_info(format.get(), nullptr) < 0) {
    if (network) return stream_unopenable(target, timeout_ms);
    return core::make_error(core::ErrorCode::kCorrupt,
                            "video file " + target.redacted + ": its streams cannot be read (damaged or truncated)");
  }
  const AVCodec* codec = nullptr;
  const int stream_index = av_find_best_stream(format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
  if (stream_index == AVERROR_STREAM_NOT_FOUND) {
    return core::make_error(core::ErrorCode::kUnsupported, std::string(to_string(target.kind)) + " " + target.redacted +
                                                               " has no video stream (audio only?)");
  }
  if (stream_index < 0 || codec == nullptr) {
    return core::make_error(
        core::ErrorCode::kUnsupported,
        std::string(to_string(target.kind)) + " " + target.redacted + ": no decoder for its codec " +
            (stream_index >= 0 ? avcodec_get_name(format->streams[stream_index]->codecpar->codec_id) : "") +
            " in this FFmpeg build; re-encode with ffmpeg -i in.x -c:v libx264 out.mp4");
  }
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_index) format->streams[i]->discard = AVDISCARD_ALL;  // demux video only
  }
  AVStream& stream = *format->streams[stream_index];

  CodecPtr context(avcodec_alloc_context3(codec));
  if (!context || avcodec_parameters_to_context(context.get(), stream.codecpar) < 0) {
    return core::make_error(core::ErrorCode::kOutOfMemory, "FFmpeg: out of memory");
  }
  context->pkt_timebase = stream.time_base;
  context->opaque = state.get();
  if (target.backend == Backend::kNvdec) {
    if (auto attached = attach_nvdec(target, *codec, context.get()); !attached) return attached.error();
  } else {
    context->thread_count = software_threads(options);
  }
  if (const int ready = avcodec_open2(context.get(), codec, nullptr); ready < 0) {
    return core::make_error(core::ErrorCode::kUnsupported, std::string(to_string(target.kind)) + " " + target.redacted +
                                                               ": the " + codec->name + " decoder does not open (" +
                                                               av_error(ready) + ")");
  }

  SourceInfo info;
  info.decoder = to_string(target.backend);
  info.source_width = context->width;
  info.source_height = context->height;
  const Size size = fit_size(info.source_width, info.source_height, options.max_side_px);
  info.width = size.width;
  info.height = size.height;
  info.codec = fourcc_or_name(*stream.codecpar);
  describe_stream(*format, stream, &info);

  FfmpegDecoder::Parts parts{std::move(state), std::move(format),  std::move(context), stream_index, std::move(info),
                             target,           options.max_side_px};
  auto decoder = std::make_unique<FfmpegDecoder>(std::move(parts));
  if (!decoder->allocated()) return core::make_error(core::ErrorCode::kOutOfMemory, "FFmpeg: out of memory");
  return std::unique_ptr<Decoder>(std::move(decoder));
}

}  // namespace pose::video::detail
