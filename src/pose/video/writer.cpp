// Writer: annotated frames out as a video file (FFmpeg back-end) or a folder of numbered JPEGs.

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "pose/video/video.h"

namespace pose::video {
namespace {

namespace fs = std::filesystem;

constexpr int kJpegQuality = 92;

std::string size_text(int width, int height) { return std::to_string(width) + "x" + std::to_string(height); }

// The packed bytes seen as a Mat without copying; OpenCV's writers only read it.
core::Result<cv::Mat> as_mat(const Frame& frame, int width, int height, const std::string& path) {
  if (frame.width != width || frame.height != height) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "video writer " + path + ": frame is " + size_text(frame.width, frame.height) +
                                " but the writer was created for " + size_text(width, height));
  }
  if (frame.bgr.size() != static_cast<size_t>(width) * static_cast<size_t>(height) * 3) {
    return core::make_error(
        core::ErrorCode::kInvalidArgument,
        "video writer " + path + ": frame has " + std::to_string(frame.bgr.size()) + " bytes, not width * height * 3");
  }
  return cv::Mat(height, width, CV_8UC3, const_cast<uint8_t*>(frame.bgr.data()));
}

class FileWriter final : public Writer {
 public:
  // cv::VideoWriter shares its back-end between copies: the copy is the handle, not the file.
  FileWriter(const cv::VideoWriter& writer, std::string path, int width, int height)
      : writer_(writer), path_(std::move(path)), width_(width), height_(height) {}
  ~FileWriter() override { (void)close(); }

  core::Result<void> write(const Frame& frame) override {
    if (!writer_.isOpened()) {
      return core::make_error(core::ErrorCode::kInvalidArgument, "video writer " + path_ + " is closed");
    }
    auto image = as_mat(frame, width_, height_, path_);
    if (!image) return image.error();
    writer_.write(*image);
    return {};
  }

  core::Result<void> close() override {
    if (!writer_.isOpened()) return {};
    writer_.release();
    std::error_code error;
    if (fs::file_size(path_, error) == 0 || error) {
      return core::make_error(core::ErrorCode::kIo, "video writer " + path_ + ": nothing was written (disk full?)");
    }
    return {};
  }

 private:
  cv::VideoWriter writer_;
  std::string path_;
  int width_, height_;
};

class FolderWriter final : public Writer {
 public:
  FolderWriter(std::string path, int width, int height) : path_(std::move(path)), width_(width), height_(height) {}

  core::Result<void> write(const Frame& frame) override {
    auto image = as_mat(frame, width_, height_, path_);
    if (!image) return image.error();
    std::array<char, 32> name{};
    std::snprintf(name.data(), name.size(), "frame_%06lld.jpg", static_cast<long long>(written_));
    const std::string file = (fs::path(path_) / name.data()).string();
    if (!cv::imwrite(file, *image, {cv::IMWRITE_JPEG_QUALITY, kJpegQuality})) {
      return core::make_error(core::ErrorCode::kIo, "video writer: cannot write " + file + " (disk full?)");
    }
    ++written_;
    return {};
  }

  core::Result<void> close() override { return {}; }

 private:
  std::string path_;
  int width_, height_;
  int64_t written_ = 0;
};

std::string lower_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

}  // namespace

core::Result<std::vector<uint8_t>> encode_jpeg(const Frame& frame, int quality) {
  if (frame.width <= 0 || frame.height <= 0 ||
      frame.bgr.size() != static_cast<size_t>(frame.width) * static_cast<size_t>(frame.height) * 3) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "encode_jpeg: the frame has no pixels");
  }
  // imencode only reads: the const_cast lets the Mat wrap the frame's pixels without a copy.
  const cv::Mat image(frame.height, frame.width, CV_8UC3, const_cast<uint8_t*>(frame.bgr.data()));
  std::vector<uint8_t> jpeg;
  const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, std::clamp(quality, 1, 100)};
  if (!cv::imencode(".jpg", image, jpeg, params)) {
    return core::make_error(core::ErrorCode::kInternal, "encode_jpeg: OpenCV could not encode the frame");
  }
  return jpeg;
}

core::Result<std::unique_ptr<Writer>> Writer::create(const std::string& path, int width, int height, double fps) {
  if (width <= 0 || height <= 0 || !(fps > 0)) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "video writer " + path + ": size " +
                                                                   size_text(width, height) + " at " +
                                                                   std::to_string(fps) + " fps is not valid");
  }
  const fs::path target(path);
  const fs::path parent = target.parent_path();
  std::error_code error;
  if (!parent.empty() && !fs::is_directory(parent, error)) {
    return core::make_error(core::ErrorCode::kNotFound,
                            "video writer " + path + ": folder " + parent.string() + " does not exist; create it");
  }
  const std::string extension = lower_extension(target);
  if (extension.empty()) {
    if (!fs::is_directory(target, error) && !fs::create_directory(target, error)) {
      return core::make_error(core::ErrorCode::kIo,
                              "video writer: cannot create image folder " + path + ": " + error.message());
    }
    return std::unique_ptr<Writer>(std::make_unique<FolderWriter>(path, width, height));
  }
  // H.264 plays everywhere; MPEG-4 part 2 is the fallback when FFmpeg was built without an H.264 encoder.
  std::vector<std::string> codecs;
  if (extension == ".mp4" || extension == ".m4v" || extension == ".mov" || extension == ".mkv") {
    codecs = {"avc1", "mp4v"};
  } else if (extension == ".avi") {
    codecs = {"MJPG"};
  } else {
    return core::make_error(core::ErrorCode::kUnsupported, "video writer " + path + ": unknown extension '" +
                                                               extension +
                                                               "'; use .mp4, .mov, .mkv, .avi, or no extension "
                                                               "for a folder of JPEGs");
  }
  for (const auto& codec : codecs) {
    cv::VideoWriter writer;
    const int fourcc = cv::VideoWriter::fourcc(codec[0], codec[1], codec[2], codec[3]);
    if (writer.open(path, cv::CAP_FFMPEG, fourcc, fps, cv::Size(width, height), true) && writer.isOpened()) {
      return std::unique_ptr<Writer>(std::make_unique<FileWriter>(std::move(writer), path, width, height));
    }
  }
  std::string tried;
  for (const auto& codec : codecs) tried += (tried.empty() ? "" : ", ") + codec;
  return core::make_error(core::ErrorCode::kUnsupported,
                          "video writer " + path + ": no encoder available (tried " + tried +
                              " through FFmpeg); install an FFmpeg with libx264, or write a folder of JPEGs "
                              "(a path without extension)");
}

}  // namespace pose::video
