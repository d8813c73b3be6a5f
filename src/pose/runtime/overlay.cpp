// What an annotated frame shows: the pipeline's results as plain drawing instructions for pose::video.
#include <cmath>

#include "pose/runtime/runtime.h"

namespace pose::runtime {

video::Overlay overlay_for(const FrameResult& frame, const std::string& exercise) {
  video::Overlay overlay;
  overlay.banner.push_back(frame.stream_id + "  " + exercise +
                           "  t=" + std::to_string(static_cast<double>(frame.pts_us) / 1e6).substr(0, 5) + " s");
  for (const auto& person : frame.people) {
    video::OverlayPerson drawn;
    drawn.id = person.track.id;
    for (const auto& keypoint : person.track.keypoints)
      drawn.keypoints.push_back({keypoint.x, keypoint.y, keypoint.visible});
    const auto& state = person.state;
    drawn.labels.push_back((state.exercise.empty() ? std::string("?") : state.exercise) + "  reps " +
                           std::to_string(state.reps) + (state.phase.empty() ? "" : "  " + state.phase));
    if (state.hold_us > 0) drawn.labels.push_back("hold " + std::to_string(state.hold_us / 1'000'000) + " s");
    for (const auto& [name, degrees] : state.angles_deg) {
      drawn.labels.push_back(name + " " + std::to_string(static_cast<int>(std::lround(degrees))) + " deg");
    }
    drawn.issues = state.active_issues;
    overlay.people.push_back(std::move(drawn));
  }
  return overlay;
}

}  // namespace pose::runtime
