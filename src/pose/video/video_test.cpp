// pose/video against real clips (../shared/testdata/videos), files the tests write, and a tiny HTTP server that
// streams a real clip and then dies or stalls.

#include "pose/video/video.h"
#include "pose/video/http_test_server.h"
#include "pose/video/source_test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

namespace pose::video {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using test_support::closed_port;
using test_support::HttpServer;
using test_support::kPushUp;
using test_support::kSquat;
using test_support::kVideos;
using test_support::open_or_die;
using test_support::read_bytes;
using test_support::read_frames;
using test_support::TempDir;
using test_support::write_bytes;

cv::Mat as_mat(const Frame& frame) {
  return cv::Mat(frame.height, frame.width, CV_8UC3, const_cast<uint8_t*>(frame.bgr.data()));
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  const cv::Scalar mean = cv::mean(diff);
  return (mean[0] + mean[1] + mean[2]) / 3;
}

TEST(FileSourceTest, DeliversEveryFrameOfRealClipsAsOpenCvCountsThem) {
  for (const std::string& path : {kSquat, kPushUp}) {
    SCOPED_TRACE(path);
    cv::VideoCapture reference(path, cv::CAP_FFMPEG);
    ASSERT_TRUE(reference.isOpened());
    const int width = static_cast<int>(reference.get(cv::CAP_PROP_FRAME_WIDTH));
    const int height = static_cast<int>(reference.get(cv::CAP_PROP_FRAME_HEIGHT));
    const double fps = reference.get(cv::CAP_PROP_FPS);
    const auto count = static_cast<int64_t>(reference.get(cv::CAP_PROP_FRAME_COUNT));
    cv::Mat first_reference;
    ASSERT_TRUE(reference.read(first_reference));

    auto source = open_or_die({.uri = path});
    ASSERT_TRUE(source);
    const SourceInfo& info = source->info();
    EXPECT_EQ(info.kind, SourceKind::kFile);
    EXPECT_EQ(info.width, width);
    EXPECT_EQ(info.height, height);
    EXPECT_EQ(info.source_width, width);
    EXPECT_DOUBLE_EQ(info.fps, fps);
    EXPECT_EQ(info.frame_count, count);
    EXPECT_EQ(info.codec, "avc1");

    std::optional<core::Error> error;
    const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
    EXPECT_FALSE(error) << error->message;
    ASSERT_EQ(static_cast<int64_t>(frames.size()), count);
    // Decoded straight into the frame's vector: identical to OpenCV's own decode.
    EXPECT_EQ(mean_abs_diff(as_mat(frames[0]), first_reference), 0.0);
    for (size_t i = 0; i < frames.size(); ++i) {
      ASSERT_EQ(frames[i].width, width);
      ASSERT_EQ(frames[i].height, height);
      ASSERT_EQ(frames[i].bgr.size(), static_cast<size_t>(width * height * 3));
      ASSERT_EQ(frames[i].index, static_cast<int64_t>(i));
      if (i > 0) {
        ASSERT_GT(frames[i].pts_us, frames[i - 1].pts_us) << "frame " << i;
      }
    }
    const double duration_s = static_cast<double>(frames.back().pts_us - frames.front().pts_us) * 1e-6;
    EXPECT_NEAR(duration_s, static_cast<double>(count - 1) / fps, 0.1);
    EXPECT_EQ(source->stats().frames_decoded, count);
    EXPECT_EQ(source->stats().decode_errors, 0);
    auto after_end = source->next();
    ASSERT_TRUE(after_end.ok());
    EXPECT_FALSE(*after_end);
  }
}

TEST(FileSourceTest, MaxSideDownscalesWithInterAreaKeepingTheAspectRatio) {
  cv::VideoCapture reference(kPushUp, cv::CAP_FFMPEG);
  cv::Mat original;
  ASSERT_TRUE(reference.read(original));
  cv::Mat expected;
  cv::resize(original, expected, cv::Size(640, 360), 0, 0, cv::INTER_AREA);

  auto source = open_or_die({.uri = kPushUp, .max_side_px = 640, .decoder = "opencv"});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->info().width, 640);
  EXPECT_EQ(source->info().height, 360);
  EXPECT_EQ(source->info().source_width, 1920);
  EXPECT_EQ(source->info().source_height, 1080);
  const std::vector<Frame> frames = read_frames(*source, 5);
  ASSERT_EQ(frames.size(), 5u);
  EXPECT_EQ(frames[0].width, 640);
  EXPECT_EQ(frames[0].height, 360);
  EXPECT_EQ(mean_abs_diff(as_mat(frames[0]), expected), 0.0);

  // Portrait: the height is the longer side.
  auto portrait = open_or_die({.uri = kSquat, .max_side_px = 480});
  ASSERT_TRUE(portrait);
  EXPECT_EQ(portrait->info().width, 270);
  EXPECT_EQ(portrait->info().height, 480);
  // A limit above the size keeps it.
  auto unchanged = open_or_die({.uri = kSquat, .max_side_px = 4000});
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(unchanged->info().height, 960);
}

TEST(FileSourceTest, RealtimePacesDeliveryAtTheFrameRate) {
  auto source = open_or_die({.uri = kSquat, .realtime = true, .max_side_px = 320});
  ASSERT_TRUE(source);
  const auto start = Clock::now();
  const std::vector<Frame> frames = read_frames(*source, 30);
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(frames.size(), 30u);
  const double media_s = static_cast<double>(frames.back().pts_us - frames.front().pts_us) * 1e-6;
  EXPECT_GT(media_s, 1.0);
  EXPECT_GE(elapsed_s, 0.8 * media_s);

  // Without realtime the same frames come as fast as they decode (far faster than 25 fps at this size).
  auto fast = open_or_die({.uri = kSquat, .max_side_px = 320});
  ASSERT_TRUE(fast);
  const auto fast_start = Clock::now();
  EXPECT_EQ(read_frames(*fast, 30).size(), 30u);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - fast_start).count(), elapsed_s);
}

TEST(FileSourceTest, StopEndsAPacedFileAtOnce) {
  auto source = open_or_die({.uri = kSquat, .realtime = true, .max_side_px = 320});
  ASSERT_TRUE(source);
  ASSERT_EQ(read_frames(*source, 2).size(), 2u);
  source->stop();
  auto after = source->next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);
}

TEST(FileSourceTest, TruncatedFileGivesSomeFramesThenEndsCleanlyOrWithAnError) {
  TempDir dir;
  const std::string bytes = read_bytes(kSquat);
  const std::string truncated = dir / "truncated.mp4";
  write_bytes(truncated, std::string_view(bytes).substr(0, bytes.size() * 3 / 10));
  auto source = open_or_die({.uri = truncated, .max_side_px = 320});
  ASSERT_TRUE(source);
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  EXPECT_GT(frames.size(), 10u);
  EXPECT_LT(static_cast<int64_t>(frames.size()), source->info().frame_count);
  if (error) {
    EXPECT_EQ(error->code, core::ErrorCode::kCorrupt);
    EXPECT_NE(error->message.find("truncated.mp4"), std::string::npos) << error->message;
    // The failure stays: the caller is not handed frames after it.
    EXPECT_FALSE(source->next().ok());
  }
}

TEST(FileSourceTest, FilesThatAreNotVideosFailToOpen) {
  TempDir dir;
  std::mt19937 random(7);
  std::string noise(200'000, '\0');
  for (char& c : noise) c = static_cast<char>(random() & 0xFF);
  write_bytes(dir / "noise.mp4", noise);
  write_bytes(dir / "notes.txt", "squat 3x5 at 100 kg\nthen lunges\n");
  for (const std::string& path : {dir / "noise.mp4", dir / "notes.txt"}) {
    auto source = Source::open({.uri = path});
    ASSERT_FALSE(source.ok()) << path;
    EXPECT_NE(source.error().message.find(fs::path(path).filename().string()), std::string::npos)
        << source.error().message;
  }
  auto missing = Source::open({.uri = dir / "nowhere.mp4"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("nowhere.mp4"), std::string::npos);
}

TEST(FolderSourceTest, ReadsImagesBackInNaturalOrder) {
  TempDir dir;
  auto clip = open_or_die({.uri = kSquat, .max_side_px = 160});
  ASSERT_TRUE(clip);
  const std::vector<Frame> written = read_frames(*clip, 12);
  ASSERT_EQ(written.size(), 12u);
  // Unpadded numbers: "img_10" sorts after "img_9", not after "img_1".
  for (size_t i = 0; i < written.size(); ++i) {
    ASSERT_TRUE(cv::imwrite(dir / ("img_" + std::to_string(i) + ".png"), as_mat(written[i])));
  }
  write_bytes(dir / "readme.txt", "not an image");

  auto source = open_or_die({.uri = dir.path(), .folder_fps = 10});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->info().kind, SourceKind::kImageFolder);
  EXPECT_EQ(source->info().frame_count, 12);
  EXPECT_EQ(source->info().codec, "image");
  EXPECT_EQ(source->info().width, written[0].width);
  const std::vector<Frame> frames = read_frames(*source, 100);
  ASSERT_EQ(frames.size(), written.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(frames[i].pts_us, static_cast<int64_t>(i) * 100'000);
    EXPECT_EQ(frames[i].bgr, written[i].bgr) << "image " << i;  // PNG is lossless
  }

  auto small = open_or_die({.uri = dir.path(), .max_side_px = 80});
  ASSERT_TRUE(small);
  EXPECT_EQ(small->info().height, 80);
  EXPECT_EQ(small->info().source_height, 160);
}

TEST(FolderSourceTest, EmptyFolderFails) {
  TempDir dir;
  write_bytes(dir / "notes.txt", "no frames here");
  auto source = Source::open({.uri = dir.path()});
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(source.error().message.find("no images"), std::string::npos) << source.error().message;
}

TEST(CameraSourceTest, AbsentCameraFailsClearly) {
  for (const std::string uri : {"/dev/video99", "camera:99", "99"}) {
    auto source = Source::open({.uri = uri});
    ASSERT_FALSE(source.ok()) << uri;
    EXPECT_EQ(source.error().code, core::ErrorCode::kNotFound) << uri;
    EXPECT_NE(source.error().message.find("/dev/video99"), std::string::npos) << source.error().message;
  }
}

TEST(NetworkSourceTest, RefusedStreamFailsInBoundedTimeWithoutCredentials) {
  const std::string uri = "rtsp://admin:hunter2@127.0.0.1:" + std::to_string(closed_port()) + "/stream";
  const auto start = Clock::now();
  auto source = Source::open({.uri = uri, .open_timeout_ms = 3000});
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_FALSE(source.ok());
  EXPECT_LT(elapsed_s, 15.0);
  EXPECT_EQ(source.error().code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(source.error().message.find("hunter2"), std::string::npos) << source.error().message;
  EXPECT_EQ(source.error().message.find("admin"), std::string::npos) << source.error().message;
  EXPECT_NE(source.error().message.find("rtsp://***@127.0.0.1"), std::string::npos) << source.error().message;
}

TEST(NetworkSourceTest, StreamThatDiesIsReopenedWithBackoffThenFails) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 3, HttpServer::AtLimit::kDie);
  std::vector<std::string> warnings;
  std::mutex log_mutex;
  const core::Logger logger(
      [&](const core::LogRecord& record) {
        std::lock_guard lock(log_mutex);
        if (record.level >= core::LogLevel::kWarn) warnings.emplace_back(record.message);
      },
      core::LogLevel::kInfo);
  auto source = open_or_die({.uri = server.url(),
                             .max_side_px = 320,
                             .reconnect_initial_ms = 50,
                             .reconnect_max_ms = 200,
                             .max_reconnects = 3,
                             .open_timeout_ms = 3000,
                             .logger = logger});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->info().kind, SourceKind::kNetwork);
  EXPECT_EQ(source->info().width, 180);
  const auto start = Clock::now();
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(error) << "the stream should fail for good after its server died";
  EXPECT_EQ(error->code, core::ErrorCode::kUnavailable);
  EXPECT_NE(error->message.find("could not be reopened"), std::string::npos) << error->message;
  EXPECT_TRUE(server.died());
  EXPECT_GT(frames.size(), 0u);
  for (size_t i = 1; i < frames.size(); ++i) EXPECT_GT(frames[i].index, frames[i - 1].index);
  const SourceStats stats = source->stats();
  EXPECT_EQ(stats.reconnects, 3);
  EXPECT_EQ(stats.frames_decoded, static_cast<int64_t>(frames.size()) + stats.frames_dropped);
  EXPECT_GE(elapsed_s, (50 + 100 + 200) / 1000.0 * 0.9);  // the backoff was waited, doubling up to its cap
  std::lock_guard lock(log_mutex);
  EXPECT_GE(warnings.size(), 4u);  // the failed read and each failed reopen
}

TEST(NetworkSourceTest, StopUnblocksNextAndTheDestructorDoesNotWaitOutTheBackoff) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 4, HttpServer::AtLimit::kDie);
  auto source =
      open_or_die({.uri = server.url(), .max_side_px = 160, .reconnect_initial_ms = 60'000, .open_timeout_ms = 3000});
  ASSERT_TRUE(source);
  // Frames until the server dies; then next() blocks while the grabber waits out a minute of backoff.
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a deadline for the test, not a sync
    source->stop();
  });
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  const auto stopped = Clock::now();
  stopper.join();
  EXPECT_FALSE(error);
  EXPECT_GT(frames.size(), 0u);
  auto after = source->next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(*after);
  source.reset();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - stopped).count(), 2.0);
}

TEST(NetworkSourceTest, StopUnblocksNextWhileTheStreamStalls) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 4, HttpServer::AtLimit::kStall);
  auto source = open_or_die({.uri = server.url(), .max_side_px = 160, .open_timeout_ms = 20'000});
  ASSERT_TRUE(source);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    source->stop();
  });
  const auto start = Clock::now();
  const std::vector<Frame> frames = read_frames(*source, 100'000);
  stopper.join();
  EXPECT_GT(frames.size(), 0u);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 10.0);  // not the 20 s read timeout
  // The grabber is inside a read that only the server can end; closing the connection lets it go.
  server.shut_down();
  const auto closing = Clock::now();
  source.reset();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - closing).count(), 5.0);
}

TEST(NetworkSourceTest, StalledStreamTimesOutAndIsGivenUp) {
  const std::string clip = read_bytes(kSquat);
  HttpServer server(clip, clip.size() / 4, HttpServer::AtLimit::kStall);
  auto source = open_or_die({.uri = server.url(),
                             .max_side_px = 160,
                             .reconnect_initial_ms = 50,
                             .max_reconnects = 1,
                             .open_timeout_ms = 1000});
  ASSERT_TRUE(source);
  const auto start = Clock::now();
  std::optional<core::Error> error;
  const std::vector<Frame> frames = read_frames(*source, 100'000, &error);
  // A read that times out, one reopen that gets no answer in time, then the error.
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 10.0);
  EXPECT_GT(frames.size(), 0u);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(source->stats().reconnects, 1);
  server.shut_down();
}

TEST(NetworkSourceTest, ServerThatNeverAnswersTimesOutAtOpen) {
  // The kernel completes connections into the backlog of a socket that listens but never accepts.
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
  auto source = Source::open({.uri = uri, .open_timeout_ms = 1000});
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  close(fd);
  ASSERT_FALSE(source.ok());
  EXPECT_LT(elapsed_s, 8.0);
  EXPECT_EQ(source.error().message.find("pa55"), std::string::npos) << source.error().message;
  EXPECT_NE(source.error().message.find("1000 ms"), std::string::npos) << source.error().message;
}

TEST(RedactUriTest, RemovesUserInformationOnly) {
  EXPECT_EQ(redact_uri("rtsp://user:secret@cam/stream"), "rtsp://***@cam/stream");
  EXPECT_EQ(redact_uri("rtsp://admin@10.0.0.2:554/h264"), "rtsp://***@10.0.0.2:554/h264");
  EXPECT_EQ(redact_uri("rtsps://u:p@ss@cam.local"), "rtsps://***@cam.local");
  EXPECT_EQ(redact_uri("https://cam.local/live?owner=a@b.c"), "https://cam.local/live?owner=a@b.c");
  EXPECT_EQ(redact_uri("http://cam.local:8080/x#me@here"), "http://cam.local:8080/x#me@here");
  EXPECT_EQ(redact_uri("/videos/me@gym.mp4"), "/videos/me@gym.mp4");
  EXPECT_EQ(redact_uri("camera:0"), "camera:0");
  EXPECT_EQ(redact_uri(""), "");
}

Frame grey_frame(int width, int height) {
  Frame frame;
  frame.width = width;
  frame.height = height;
  frame.bgr.assign(static_cast<size_t>(width) * static_cast<size_t>(height) * 3, 100);
  return frame;
}

// A standing person in a w x h frame, scaled from a 640x480 layout; the left ankle is hidden far to the right.
OverlayPerson standing_person(double scale) {
  OverlayPerson person;
  person.id = 7;
  const std::vector<std::array<float, 2>> layout = {
      {150, 100}, {145, 95},  {155, 95},  {140, 100}, {160, 100}, {130, 140}, {170, 140}, {120, 200}, {180, 200},
      {115, 250}, {185, 250}, {135, 260}, {165, 260}, {135, 330}, {165, 330}, {560, 420}, {165, 400}};
  for (const auto& [x, y] : layout) {
    person.keypoints.push_back({static_cast<float>(x * scale), static_cast<float>(y * scale), true});
  }
  person.keypoints[15].visible = false;
  person.labels = {"knee 92 deg", "reps 3"};
  person.issues = {"knees caving in"};
  return person;
}

bool changed(const Frame& frame, int x, int y) {
  const size_t at = (static_cast<size_t>(y) * static_cast<size_t>(frame.width) + static_cast<size_t>(x)) * 3;
  return frame.bgr[at] != 100 || frame.bgr[at + 1] != 100 || frame.bgr[at + 2] != 100;
}

int changed_in_column(const Frame& frame, int x, int y_from, int y_to) {
  int count = 0;
  for (int y = y_from; y < y_to; ++y) count += changed(frame, x, y) ? 1 : 0;
  return count;
}

TEST(OverlayTest, DrawsVisibleSkeletonLabelsAndBannerOnly) {
  Frame frame = grey_frame(640, 480);
  draw_overlay(frame, Overlay{{standing_person(1.0)}, {"stream cam-1", "fps 30", "exercise squat"}});
  EXPECT_TRUE(changed(frame, 165, 295));  // the right thigh's middle (hip 165,260 - knee 165,330)
  EXPECT_TRUE(changed(frame, 130, 140));  // a joint
  EXPECT_TRUE(changed(frame, 150, 140));  // the shoulder bone
  // The hidden ankle: neither its joint nor the bone to the knee.
  EXPECT_FALSE(changed(frame, 560, 420));
  EXPECT_FALSE(changed(frame, 347, 375));
  // Far from everything: the bottom-right corner is untouched.
  for (int y = 440; y < 480; y += 3) {
    for (int x = 400; x < 640; x += 3) ASSERT_FALSE(changed(frame, x, y)) << x << "," << y;
  }
  // The banner darkens the top-left corner; the labels sit beside the person, on the right.
  EXPECT_LT(frame.bgr[(10UL * 640 + 10) * 3], 100);
  int label_pixels = 0;
  for (int y = 90; y < 200; ++y) {
    for (int x = 200; x < 400; ++x) label_pixels += changed(frame, x, y) ? 1 : 0;
  }
  EXPECT_GT(label_pixels, 1000);
  // The warning colour (red dominant) appears somewhere.
  bool warning = false;
  for (size_t i = 0; i + 2 < frame.bgr.size() && !warning; i += 3) {
    warning = frame.bgr[i + 2] > 200 && frame.bgr[i] < 120 && frame.bgr[i + 1] < 120;
  }
  EXPECT_TRUE(warning);
}

TEST(OverlayTest, LinesScaleWithTheFrame) {
  Frame small = grey_frame(640, 480);
  Frame large = grey_frame(1440, 1080);  // 2.25x
  draw_overlay(small, Overlay{{standing_person(1.0)}, {}});
  draw_overlay(large, Overlay{{standing_person(2.25)}, {}});
  // Across the hip bone (135,260)-(165,260): its thickness in pixels, anti-aliased edges included (which is
  // why it does not grow the full 2.25x).
  const int small_px = changed_in_column(small, 150, 240, 280);
  const int large_px = changed_in_column(large, 337, 540, 630);
  EXPECT_GT(small_px, 2);
  EXPECT_GE(large_px, small_px + 2);
  EXPECT_LT(large_px, 4 * small_px);
}

TEST(OverlayTest, ClipsOutOfFrameAndIgnoresMalformedInput) {
  Frame frame = grey_frame(320, 240);
  OverlayPerson wild;
  wild.keypoints = {{-1e9f, 1e9f, true}, {NAN, 3, true}, {5000, -5000, true}, {10, 10, true}};
  wild.labels = {"far away"};
  draw_overlay(frame, Overlay{{wild, OverlayPerson{}}, {std::string(500, 'x')}});
  Frame broken = grey_frame(320, 240);
  broken.bgr.resize(10);
  draw_overlay(broken, Overlay{{standing_person(1.0)}, {"banner"}});
  EXPECT_EQ(broken.bgr.size(), 10u);
}

TEST(WriterTest, RoundTripsThroughEveryFormat) {
  TempDir dir;
  auto clip = open_or_die({.uri = kSquat, .max_side_px = 480});
  ASSERT_TRUE(clip);
  const std::vector<Frame> frames = read_frames(*clip, 20);
  ASSERT_EQ(frames.size(), 20u);
  for (const std::string name : {"out.mp4", "out.avi", "frames"}) {
    SCOPED_TRACE(name);
    const std::string path = dir / name;
    auto writer = Writer::create(path, frames[0].width, frames[0].height, 25);
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    for (const Frame& frame : frames) ASSERT_TRUE((*writer)->write(frame).ok());
    ASSERT_TRUE((*writer)->close().ok());
    ASSERT_TRUE((*writer)->close().ok());  // twice is harmless

    auto source = open_or_die({.uri = path, .folder_fps = 25});
    ASSERT_TRUE(source);
    const std::vector<Frame> back = read_frames(*source, 100);
    ASSERT_EQ(back.size(), frames.size());
    EXPECT_NEAR(source->info().fps, 25, 0.01);
    for (size_t i = 0; i < back.size(); ++i) {
      ASSERT_EQ(back[i].width, frames[i].width);
      ASSERT_EQ(back[i].height, frames[i].height);
      EXPECT_LT(mean_abs_diff(as_mat(back[i]), as_mat(frames[i])), 6.0) << "frame " << i;
    }
  }
}

TEST(WriterTest, RefusesWhatItCannotWrite) {
  TempDir dir;
  auto no_folder = Writer::create(dir / "missing/out.mp4", 64, 48, 25);
  ASSERT_FALSE(no_folder.ok());
  EXPECT_EQ(no_folder.error().code, core::ErrorCode::kNotFound);
  EXPECT_NE(no_folder.error().message.find("missing"), std::string::npos);

  auto unknown = Writer::create(dir / "out.xyz", 64, 48, 25);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, core::ErrorCode::kUnsupported);

  EXPECT_FALSE(Writer::create(dir / "out.mp4", 0, 48, 25).ok());

  auto writer = Writer::create(dir / "out.mp4", 64, 48, 25);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto wrong = (*writer)->write(grey_frame(48, 64));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, core::ErrorCode::kInvalidArgument);
  EXPECT_NE(wrong.error().message.find("48x64"), std::string::npos) << wrong.error().message;
}

}  // namespace
}  // namespace pose::video
