// draw_overlay: the skeleton, labels and banner drawn onto a frame. Sizes scale with the frame's shorter side so a
// 480p preview and a 1080p recording look alike.

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "pose/engine/person.h"
#include "pose/video/video.h"

namespace pose::video {
namespace {

// The shorter side at which the sizes below are used as they are.
constexpr double kReferenceSidePx = 720;
// People are told apart by colour (BGR), chosen by id.
constexpr std::array<std::array<int, 3>, 6> kPersonColours = {
    {{255, 180, 0}, {0, 220, 120}, {255, 0, 200}, {0, 200, 255}, {200, 120, 255}, {120, 255, 255}}};
const cv::Scalar kTextColour(240, 240, 240);
const cv::Scalar kWarningColour(40, 60, 255);
const cv::Scalar kJointColour(255, 255, 255);
// What a text block's background keeps of the picture beneath: dark, but the scene still shows through.
constexpr double kBackgroundKeep = 0.35;
// Keypoints far outside the frame are clipped by OpenCV; this bound keeps the float-to-int conversion defined.
constexpr float kCoordinateLimit = 1e5f;

struct Style {
  int bone_px, joint_px, text_thickness, pad_px, line_gap_px;
  double font_scale;
};

Style style_for(const cv::Mat& image) {
  const double unit = std::min(image.cols, image.rows) / kReferenceSidePx;
  const auto scaled = [unit](double px, int minimum) {
    return std::max(minimum, static_cast<int>(std::lround(px * unit)));
  };
  return Style{scaled(4, 1), scaled(5, 2), scaled(1.6, 1), scaled(6, 2), scaled(8, 2), std::max(0.3, 0.65 * unit)};
}

std::optional<cv::Point> to_point(const OverlayPerson::Point& point) {
  if (!point.visible || !std::isfinite(point.x) || !std::isfinite(point.y)) return std::nullopt;
  return cv::Point(static_cast<int>(std::lround(std::clamp(point.x, -kCoordinateLimit, kCoordinateLimit))),
                   static_cast<int>(std::lround(std::clamp(point.y, -kCoordinateLimit, kCoordinateLimit))));
}

struct Line {
  const std::string* text;
  cv::Scalar colour;
};

// Lines of text on a darkened box whose top-left corner is `origin`, moved inside the frame where it would not fit.
void draw_text_block(cv::Mat& image, const std::vector<Line>& lines, cv::Point origin, const Style& style) {
  if (lines.empty()) return;
  int width = 0, line_height = 0, baseline = 0;
  for (const Line& line : lines) {
    const cv::Size size =
        cv::getTextSize(*line.text, cv::FONT_HERSHEY_SIMPLEX, style.font_scale, style.text_thickness, &baseline);
    width = std::max(width, size.width);
    line_height = std::max(line_height, size.height + baseline);
  }
  const int count = static_cast<int>(lines.size());
  const cv::Size block(width + 2 * style.pad_px,
                       count * line_height + (count - 1) * style.line_gap_px + 2 * style.pad_px);
  origin.x = std::clamp(origin.x, 0, std::max(0, image.cols - block.width));
  origin.y = std::clamp(origin.y, 0, std::max(0, image.rows - block.height));
  const cv::Rect box = cv::Rect(origin, block) & cv::Rect(0, 0, image.cols, image.rows);
  if (box.empty()) return;
  cv::Mat background = image(box);
  background.convertTo(background, -1, kBackgroundKeep, 0);
  int y = origin.y + style.pad_px;
  for (const Line& line : lines) {
    y += line_height;
    cv::putText(image, *line.text, cv::Point(origin.x + style.pad_px, y - baseline), cv::FONT_HERSHEY_SIMPLEX,
                style.font_scale, line.colour, style.text_thickness, cv::LINE_AA);
    y += style.line_gap_px;
  }
}

void draw_person(cv::Mat& image, const OverlayPerson& person, const Style& style) {
  const auto& rgb = kPersonColours[static_cast<size_t>(person.id < 0 ? -person.id : person.id) % kPersonColours.size()];
  const cv::Scalar colour(rgb[0], rgb[1], rgb[2]);
  std::vector<std::optional<cv::Point>> points;
  points.reserve(person.keypoints.size());
  for (const auto& keypoint : person.keypoints) points.push_back(to_point(keypoint));
  const auto at = [&points](int joint) {
    return static_cast<size_t>(joint) < points.size() ? points[static_cast<size_t>(joint)] : std::nullopt;
  };
  for (const auto& [from, to] : engine::kBones) {
    const auto a = at(from), b = at(to);
    if (a && b) cv::line(image, *a, *b, colour, style.bone_px, cv::LINE_AA);
  }
  std::optional<cv::Rect> bounds;
  for (const auto& point : points) {
    if (!point) continue;
    cv::circle(image, *point, style.joint_px, kJointColour, cv::FILLED, cv::LINE_AA);
    cv::circle(image, *point, style.joint_px, colour, std::max(1, style.bone_px / 2), cv::LINE_AA);
    const cv::Rect spot(*point, cv::Size(1, 1));
    bounds = bounds ? (*bounds | spot) : spot;
  }
  if (!bounds) return;  // nothing visible: no place to anchor the text

  const std::string id = "#" + std::to_string(person.id);
  std::vector<Line> lines{{&id, colour}};
  for (const auto& label : person.labels) lines.push_back({&label, kTextColour});
  for (const auto& issue : person.issues) lines.push_back({&issue, kWarningColour});
  // Beside the person, on the right; draw_text_block moves it back inside the frame at the right edge.
  draw_text_block(image, lines, cv::Point(bounds->x + bounds->width + 2 * style.joint_px, bounds->y), style);
}

}  // namespace

void draw_overlay(Frame& frame, const Overlay& overlay) {
  if (frame.width <= 0 || frame.height <= 0 ||
      frame.bgr.size() != static_cast<size_t>(frame.width) * static_cast<size_t>(frame.height) * 3) {
    return;
  }
  cv::Mat image(frame.height, frame.width, CV_8UC3, frame.bgr.data());
  const Style style = style_for(image);
  for (const auto& person : overlay.people) draw_person(image, person, style);
  std::vector<Line> banner;
  for (const auto& line : overlay.banner) banner.push_back({&line, kTextColour});
  draw_text_block(image, banner, cv::Point(style.pad_px, style.pad_px), style);
}

}  // namespace pose::video
