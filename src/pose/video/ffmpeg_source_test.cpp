// The FFmpeg back-end (decoder "ffmpeg", and "nvdec" where a GPU is) against real clips
// (../shared/testdata/videos): the same frames, sizes, rates and timestamps as the OpenCV back-end where the build
// has it, damaged and missing files, network streams that are refused, stall or die, and choosing the back-end.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pose/video/http_test_server.h"
#include "pose/video/source_test_support.h"
#include "pose/video/video.h"

namespace pose::video {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using test_support::closed_port;
using test_support::HttpServer;
using test_support::kPushUp;
using test_support::kSquat;
using test_support::open_or_die;
using test_support::read_bytes;
using test_support::read_frames;
using test_support::TempDir;
using test_support::write_bytes;

const std::string kPortrait =
    test_support::kVideos + "jumping_jacks_portrait.mp4";  // 406x720: rows not a multiple of 16

double mean_abs_diff(const Frame& a, const Frame& b) {
  EXPECT_EQ(a.bgr.size(), b.bgr.size());
  if (a.bgr.size() != b.bgr.size() || a.bgr.empty()) return 255;
  double sum = 0;
  for (size_t i = 0; i < a.bgr.size(); ++i) sum += std::abs(int{a.bgr[i]} - int{b.bgr[i]});
  return sum / static_cast<double>(a.bgr.size());
}

// Every frame of a clip through the FFmpeg back-end: a frame per index, increasing media time spanning the
// clip's duration, and as many frames as the container announces.
void expect_whole_clip(const std::string& path, int max_side_px, std::vector<Frame>* frames_out) {
  auto source = open_or_die({.uri = path, .max_side_px = max_side_px, .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  const SourceInfo& info = source->info();
  EXPECT_EQ(info.kind, SourceKind::kFile);
  EXPECT_EQ(info.decoder, "ffmpeg");
  EXPECT_EQ(info.codec, "avc1");
  EXPECT_GT(info.fps, 20.0);
  std::optional<core::Error> error;
  std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  EXPECT_FALSE(error) << error->message;
  ASSERT_EQ(static_cast<int64_t>(frames.size()), info.frame_count);
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(frames[i].width, info.width);
    ASSERT_EQ(frames[i].height, info.height);
    ASSERT_EQ(frames[i].bgr.size(), static_cast<size_t>(info.width * info.height * 3));
    ASSERT_EQ(frames[i].index, static_cast<int64_t>(i));
    if (i > 0) {
      ASSERT_GT(frames[i].pts_us, frames[i - 1].pts_us) << "frame " << i;
    }
  }
  const double duration_s = static_cast<double>(frames.back().pts_us - frames.front().pts_us) * 1e-6;
  EXPECT_NEAR(duration_s, static_cast<double>(info.frame_count - 1) / info.fps, 0.1);
  EXPECT_EQ(source->stats().frames_decoded, info.frame_count);
  EXPECT_EQ(source->stats().decode_errors, 0);
  auto after_end = source->next();
  ASSERT_TRUE(after_end.ok());
  EXPECT_FALSE(*after_end);
  *frames_out = std::move(frames);
}

TEST(FfmpegSourceTest, DeliversEveryFrameOfRealClips) {
  for (const std::string& path : {kSquat, kPushUp, kPortrait}) {
    SCOPED_TRACE(path);
    std::vector<Frame> frames;
    expect_whole_clip(path, 0, &frames);
  }
}

// A looped file plays again from the start with timestamps running on, as a camera would: what benchmarks use
// to hold many streams at a clip's frame rate for longer than the clip.
TEST(FfmpegSourceTest, LoopsPlayTheFileAgainWithTimestampsRunningOn) {
  SourceOptions options;
  options.uri = kPushUp;
  options.decoder = "ffmpeg";
  options.max_side_px = 160;
  options.loops = 3;
  auto source = Source::open(options);
  ASSERT_TRUE(source.ok()) << source.error().message;
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(**source, 100'000, &error);
  EXPECT_FALSE(error);
  const int64_t per_loop = (*source)->info().frame_count;
  ASSERT_EQ(static_cast<int64_t>(frames.size()), 3 * per_loop);
  for (size_t i = 1; i < frames.size(); ++i) {
    ASSERT_GT(frames[i].pts_us, frames[i - 1].pts_us) << "frame " << i;
    ASSERT_EQ(frames[i].index, static_cast<int64_t>(i));
  }
  // The second loop's first frame is the file's first frame again, one frame interval after the first loop's end.
  const auto first = static_cast<size_t>(per_loop);
  EXPECT_EQ(frames[first].bgr, frames[0].bgr);
  EXPECT_NEAR(static_cast<double>(frames[first].pts_us - frames[first - 1].pts_us), 1e6 / (*source)->info().fps,
              1000.0);
  options.loops = -1;
  EXPECT_EQ(Source::open(options).error().code, core::ErrorCode::kInvalidArgument);
}

#ifdef WB_HAVE_OPENCV
// The two back-ends describe and decode a clip alike: the same info, timestamps and nearly the same pixels (both
// convert with BT.601 coefficients; they differ in rounding and, when downscaling, in the filter's arithmetic).
TEST(FfmpegSourceTest, MatchesTheOpenCvBackEnd) {
  for (const int max_side_px : {0, 640}) {
    for (const std::string& path : {kSquat, kPushUp, kPortrait}) {
      SCOPED_TRACE(path + " max_side_px " + std::to_string(max_side_px));
      std::vector<Frame> ffmpeg;
      expect_whole_clip(path, max_side_px, &ffmpeg);
      auto reference = open_or_die({.uri = path, .max_side_px = max_side_px, .decoder = "opencv"});
      ASSERT_TRUE(reference);
      auto ours = open_or_die({.uri = path, .max_side_px = max_side_px, .decoder = "ffmpeg"});
      ASSERT_TRUE(ours);
      EXPECT_EQ(reference->info().decoder, "opencv");
      EXPECT_EQ(ours->info().width, reference->info().width);
      EXPECT_EQ(ours->info().height, reference->info().height);
      EXPECT_EQ(ours->info().source_width, reference->info().source_width);
      EXPECT_EQ(ours->info().source_height, reference->info().source_height);
      EXPECT_DOUBLE_EQ(ours->info().fps, reference->info().fps);
      EXPECT_EQ(ours->info().frame_count, reference->info().frame_count);
      EXPECT_EQ(ours->info().codec, reference->info().codec);

      const std::vector<Frame> expected = read_frames(*reference, 100'000);
      ASSERT_EQ(ffmpeg.size(), expected.size());
      double worst = 0;
      for (size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(ffmpeg[i].width, expected[i].width);
        ASSERT_EQ(ffmpeg[i].height, expected[i].height);
        EXPECT_NEAR(static_cast<double>(ffmpeg[i].pts_us), static_cast<double>(expected[i].pts_us), 1000) << i;
        if (i % 10 == 0) worst = std::max(worst, mean_abs_diff(ffmpeg[i], expected[i]));
      }
      // Identical at the native size (the same swscale conversion); the downscaling filters round differently.
      EXPECT_LT(worst, max_side_px == 0 ? 0.01 : 2.0);
      std::printf("%s max_side %d: worst mean abs diff %.3f\n", fs::path(path).filename().c_str(), max_side_px, worst);
    }
  }
}
#endif

TEST(FfmpegSourceTest, MaxSideDownscalesKeepingTheAspectRatio) {
  auto source = open_or_die({.uri = kPushUp, .max_side_px = 640, .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->info().width, 640);
  EXPECT_EQ(source->info().height, 360);
  EXPECT_EQ(source->info().source_width, 1920);
  EXPECT_EQ(source->info().source_height, 1080);
  const std::vector<Frame> frames = read_frames(*source, 3);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].width, 640);
  EXPECT_EQ(frames[0].height, 360);
  EXPECT_EQ(frames[0].bgr.size(), 640u * 360u * 3u);

  auto portrait = open_or_die({.uri = kSquat, .max_side_px = 480, .decoder = "ffmpeg"});
  ASSERT_TRUE(portrait);
  EXPECT_EQ(portrait->info().width, 270);
  EXPECT_EQ(portrait->info().height, 480);
  auto unchanged = open_or_die({.uri = kSquat, .max_side_px = 4000, .decoder = "ffmpeg"});
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(unchanged->info().height, 960);
}

TEST(FfmpegSourceTest, RealtimePacesAndStopEndsAtOnce) {
  auto source = open_or_die({.uri = kSquat, .realtime = true, .max_side_px = 320, .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  const auto start = Clock::now();
  const std::vector<Frame> frames = read_frames(*source, 20);
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(frames.size(), 20u);
  const double media_s = static_cast<double>(frames.back().pts_us - frames.front().pts_us) * 1e-6;
  EXPECT_GE(elapsed_s, 0.8 * media_s);
  source->stop();
  auto after = source->next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);
}

TEST(FfmpegSourceTest, TruncatedFileGivesSomeFramesThenEndsCleanlyOrWithAnError) {
  TempDir dir;
  const std::string bytes = read_bytes(kSquat);
  for (const size_t tenths : {3u, 7u}) {
    const std::string truncated = dir / ("truncated" + std::to_string(tenths) + ".mp4");
    write_bytes(truncated, std::string_view(bytes).substr(0, bytes.size() * tenths / 10));
    auto source = open_or_die({.uri = truncated, .max_side_px = 320, .decoder = "ffmpeg"});
    ASSERT_TRUE(source);
    std::optional<core::Error> error;
    const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
    EXPECT_GT(frames.size(), 10u);
    EXPECT_LT(static_cast<int64_t>(frames.size()), source->info().frame_count);
    if (error) {
      EXPECT_EQ(error->code, core::ErrorCode::kCorrupt);
      EXPECT_NE(error->message.find(fs::path(truncated).filename().string()), std::string::npos) << error->message;
      EXPECT_FALSE(source->next().ok());
    }
  }
}

TEST(FfmpegSourceTest, DamagedPacketsAreSkippedNotFatal) {
  // Noise over the middle of the media data: the decoder skips or conceals what it cannot decode.
  TempDir dir;
  std::string bytes = read_bytes(kSquat);
  std::mt19937 random(11);
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 20'000; ++i) bytes[i] = static_cast<char>(random() & 0xFF);
  write_bytes(dir / "damaged.mp4", bytes);
  auto source = open_or_die({.uri = dir / "damaged.mp4", .max_side_px = 160, .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  EXPECT_GT(static_cast<int64_t>(frames.size()), source->info().frame_count / 2);
  if (error) {
    EXPECT_EQ(error->code, core::ErrorCode::kCorrupt) << error->message;
  }
}

TEST(FfmpegSourceTest, FilesThatAreNotVideosFailToOpenNamingTheFile) {
  TempDir dir;
  std::mt19937 random(7);
  std::string noise(200'000, '\0');
  for (char& c : noise) c = static_cast<char>(random() & 0xFF);
  write_bytes(dir / "noise.mp4", noise);
  write_bytes(dir / "notes.txt", "squat 3x5 at 100 kg\nthen lunges\n");
  write_bytes(dir / "empty.mp4", "");
  for (const std::string& path : {dir / "noise.mp4", dir / "notes.txt", dir / "empty.mp4"}) {
    auto source = Source::open({.uri = path, .decoder = "ffmpeg"});
    ASSERT_FALSE(source.ok()) << path;
    EXPECT_TRUE(source.error().code == core::ErrorCode::kUnsupported ||
                source.error().code == core::ErrorCode::kCorrupt)
        << source.error().message;
    EXPECT_NE(source.error().message.find(fs::path(path).filename().string()), std::string::npos)
        << source.error().message;
  }
  auto missing = Source::open({.uri = dir / "nowhere.mp4", .decoder = "ffmpeg"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("nowhere.mp4"), std::string::npos);
}

TEST(FfmpegSourceTest, RefusedStreamFailsInBoundedTimeWithoutCredentials) {
  for (const std::string scheme : {"rtsp", "http"}) {
    const std::string uri = scheme + "://admin:hunter2@127.0.0.1:" + std::to_string(closed_port()) + "/stream";
    const auto start = Clock::now();
    auto source = Source::open({.uri = uri, .open_timeout_ms = 2000, .decoder = "ffmpeg"});
    const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    ASSERT_FALSE(source.ok());
    EXPECT_LT(elapsed_s, 5.0);
    EXPECT_EQ(source.error().code, core::ErrorCode::kUnavailable);
    EXPECT_EQ(source.error().message.find("hunter2"), std::string::npos) << source.error().message;
    EXPECT_EQ(source.error().message.find("admin"), std::string::npos) << source.error().message;
    EXPECT_NE(source.error().message.find(scheme + "://***@127.0.0.1"), std::string::npos) << source.error().message;
  }
}

TEST(FfmpegSourceTest, ServerThatNeverAnswersTimesOutAtOpen) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string uri = "rtsp://viewer:pa55@127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/live";
  const auto start = Clock::now();
  auto source = Source::open({.uri = uri, .open_timeout_ms = 1000, .decoder = "ffmpeg"});
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  close(fd);
  ASSERT_FALSE(source.ok());
  EXPECT_GE(elapsed_s, 0.9);
  EXPECT_LT(elapsed_s, 3.0);
  EXPECT_EQ(source.error().message.find("pa55"), std::string::npos) << source.error().message;
  EXPECT_NE(source.error().message.find("1000 ms"), std::string::npos) << source.error().message;
}

TEST(FfmpegSourceTest, LiveStreamThatDiesIsReopenedWithBackoffThenFails) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 3, HttpServer::AtLimit::kDie);
  auto source = open_or_die({.uri = server.url(),
                             .max_side_px = 320,
                             .reconnect_initial_ms = 50,
                             .reconnect_max_ms = 200,
                             .max_reconnects = 3,
                             .open_timeout_ms = 3000,
                             .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->info().kind, SourceKind::kNetwork);
  EXPECT_EQ(source->info().decoder, "ffmpeg");
  EXPECT_EQ(source->info().width, 180);
  EXPECT_EQ(source->info().frame_count, -1);
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  ASSERT_TRUE(error) << "the stream should fail for good after its server died";
  EXPECT_EQ(error->code, core::ErrorCode::kUnavailable);
  EXPECT_NE(error->message.find("could not be reopened"), std::string::npos) << error->message;
  EXPECT_GT(frames.size(), 0u);
  for (size_t i = 1; i < frames.size(); ++i) EXPECT_GT(frames[i].index, frames[i - 1].index);
  const SourceStats stats = source->stats();
  EXPECT_EQ(stats.reconnects, 3);
  EXPECT_EQ(stats.frames_decoded, static_cast<int64_t>(frames.size()) + stats.frames_dropped);
}

// Unlike OpenCV's, the FFmpeg back-end's blocked read is abandoned by stop(): the destructor does not wait for
// the server or the read timeout.
TEST(FfmpegSourceTest, StopAbandonsAStalledReadAtOnce) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 4, HttpServer::AtLimit::kStall);
  auto source = open_or_die({.uri = server.url(), .max_side_px = 160, .open_timeout_ms = 30'000, .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a deadline for the test, not a sync
    source->stop();
  });
  const auto start = Clock::now();
  const std::vector<Frame> frames = read_frames(*source, 100'000);
  stopper.join();
  EXPECT_GT(frames.size(), 0u);
  const auto stopped = Clock::now();
  EXPECT_LT(std::chrono::duration<double>(stopped - start).count(), 5.0);
  source.reset();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - stopped).count(), 1.0);
  server.shut_down();
}

TEST(FfmpegSourceTest, StalledStreamTimesOutAndIsGivenUp) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 4, HttpServer::AtLimit::kStall);
  auto source = open_or_die({.uri = server.url(),
                             .max_side_px = 160,
                             .reconnect_initial_ms = 50,
                             .max_reconnects = 1,
                             .open_timeout_ms = 1000,
                             .decoder = "ffmpeg"});
  ASSERT_TRUE(source);
  const auto start = Clock::now();
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 6.0);
  EXPECT_GT(frames.size(), 0u);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(source->stats().reconnects, 1);
  server.shut_down();
}

TEST(DecoderChoiceTest, UnknownNamesAndUnsupportedSourcesAreRefused) {
  auto unknown = Source::open({.uri = kSquat, .decoder = "gstreamer"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, core::ErrorCode::kInvalidArgument);
  for (const char* choice : {"gstreamer", "auto", "opencv", "ffmpeg", "nvdec"}) {
    EXPECT_NE(unknown.error().message.find(choice), std::string::npos) << unknown.error().message;
  }
  auto threads = Source::open({.uri = kSquat, .decoder = "ffmpeg", .decode_threads = -1});
  ASSERT_FALSE(threads.ok());
  EXPECT_EQ(threads.error().code, core::ErrorCode::kInvalidArgument);

  // One thread decodes the same frames.
  auto single = open_or_die({.uri = kSquat, .max_side_px = 160, .decoder = "ffmpeg", .decode_threads = 1});
  ASSERT_TRUE(single);
  EXPECT_EQ(read_frames(*single, 100'000).size(), static_cast<size_t>(single->info().frame_count));

  // Files go to FFmpeg whenever the build has it (one pass to BGR at the delivered size is the cheaper path).
  auto automatic = open_or_die({.uri = kSquat, .max_side_px = 160});
  ASSERT_TRUE(automatic);
  EXPECT_EQ(automatic->info().decoder, "ffmpeg");
}

// Passes on both kinds of machine: without a usable NVDEC the open fails with kUnavailable naming what is missing
// (never a silent software fallback); with one, the frames match software decoding.
TEST(NvdecSourceTest, DecodesLikeSoftwareOrFailsClearly) {
  auto source = Source::open({.uri = kPushUp, .max_side_px = 640, .decoder = "nvdec"});
  if (!source.ok()) {
    std::printf("NVDEC unavailable here: %s\n", source.error().message.c_str());
    EXPECT_EQ(source.error().code, core::ErrorCode::kUnavailable) << source.error().message;
    EXPECT_NE(source.error().message.find("NVDEC"), std::string::npos) << source.error().message;
    EXPECT_NE(source.error().message.find("push-up_12.mp4"), std::string::npos) << source.error().message;
    EXPECT_NE(source.error().message.find("decoder ffmpeg"), std::string::npos) << source.error().message;
    return;
  }
  EXPECT_EQ((*source)->info().decoder, "nvdec");
  EXPECT_EQ((*source)->info().width, 640);
  std::optional<core::Error> error;
  const std::vector<Frame> gpu = read_frames(**source, 100'000, &error);
  EXPECT_FALSE(error) << error->message;
  auto software = open_or_die({.uri = kPushUp, .max_side_px = 640, .decoder = "ffmpeg"});
  ASSERT_TRUE(software);
  const std::vector<Frame> cpu = read_frames(*software, 100'000);
  ASSERT_EQ(gpu.size(), cpu.size());
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); i += 10) {
    EXPECT_EQ(gpu[i].pts_us, cpu[i].pts_us);
    worst = std::max(worst, mean_abs_diff(gpu[i], cpu[i]));
  }
  std::printf("NVDEC vs software: %zu frames, worst mean abs diff %.3f\n", gpu.size(), worst);
  EXPECT_LT(worst, 2.0);
}

}  // namespace
}  // namespace pose::video
