#pragma once
// Tests only: what the tests of both decoding back-ends share — the clips, a temporary folder, file bytes, and
// opening and draining a source.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/test_support/temp_dir.h"
#include "pose/video/video.h"

namespace pose::video::test_support {

using core::test_support::TempDir;

inline const std::string kVideos = WB_SHARED_DIR "/testdata/videos/";
inline const std::string kSquat = kVideos + "squat_side_3reps.mp4";  // 540x960, 25 fps, moov first
inline const std::string kPushUp = kVideos + "push-up_12.mp4";       // 1920x1080, 29.97 fps

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::unique_ptr<Source> open_or_die(const SourceOptions& options) {
  auto source = Source::open(options);
  EXPECT_TRUE(source.ok()) << (source.ok() ? "" : source.error().message);
  return source.ok() ? std::move(*source) : nullptr;
}

// Up to `limit` frames; stops at the end or at an error, which `error` receives.
inline std::vector<Frame> read_frames(Source& source, size_t limit, std::optional<core::Error>* error = nullptr) {
  std::vector<Frame> frames;
  while (frames.size() < limit) {
    auto frame = source.next();
    if (!frame) {
      if (error) *error = frame.error();
      break;
    }
    if (!*frame) break;
    frames.push_back(std::move(**frame));
  }
  return frames;
}

}  // namespace pose::video::test_support
