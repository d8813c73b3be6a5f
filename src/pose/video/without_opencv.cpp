// A build without OpenCV: the pieces of video.h that draw and encode, which only OpenCV provides here, say so
// instead of failing to link.

#include "pose/video/video.h"

namespace pose::video {

void draw_overlay(Frame& /*frame*/, const Overlay& /*overlay*/) {}

core::Result<std::unique_ptr<Writer>> Writer::create(const std::string& path, int /*width*/, int /*height*/,
                                                     double /*fps*/) {
  return core::make_error(core::ErrorCode::kUnsupported,
                          "video writer " + path +
                              ": this build has no OpenCV, which annotated video output needs; "
                              "rebuild where OpenCV is installed (libopencv-dev) or leave the output off");
}

core::Result<std::vector<uint8_t>> encode_jpeg(const Frame& /*frame*/, int /*quality*/) {
  return core::make_error(core::ErrorCode::kUnsupported, "JPEG encoding needs OpenCV, which this build lacks");
}

}  // namespace pose::video
