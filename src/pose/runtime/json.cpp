#include "pose/runtime/json.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace pose::runtime {
namespace {

using nlohmann::json;

// Three decimals: keypoints and angles are not more precise than that, and the JSONL stays small.
double round3(double value) { return std::round(value * 1000.0) / 1000.0; }

json angle_map(const std::map<std::string, double>& angles) {
  json out = json::object();
  for (const auto& [name, value] : angles) out[name] = round3(value);
  return out;
}

json person_json(const PersonResult& person, const JsonOptions& options) {
  const track::Track& track = person.track;
  json out = {{"id", track.id},
              {"score", round3(track.score)},
              {"box", {round3(track.box.x), round3(track.box.y), round3(track.box.width), round3(track.box.height)}}};
  if (options.keypoints) {
    json keypoints = json::array();
    for (const auto& keypoint : track.keypoints) {
      json point = {round3(keypoint.x), round3(keypoint.y), round3(keypoint.score), keypoint.visible};
      keypoints.push_back(std::move(point));
    }
    out["keypoints"] = std::move(keypoints);  // [x, y, score, visible] in COCO-17 order
  }
  const analysis::PersonState& state = person.state;
  out["exercise"] = state.exercise;
  out["phase"] = state.phase;
  out["reps"] = state.reps;
  out["angles_deg"] = angle_map(state.angles_deg);
  out["angular_velocity_deg_per_s"] = angle_map(state.angular_velocity_deg_per_s);
  out["symmetry_deg"] = state.symmetry_deg ? json(round3(*state.symmetry_deg)) : json(nullptr);
  if (state.hold_us > 0) out["hold_s"] = round3(static_cast<double>(state.hold_us) / 1e6);
  out["issues"] = state.active_issues;
  return out;
}

json frame_json(const FrameResult& frame, const JsonOptions& options) {
  json people = json::array();
  for (const auto& person : frame.people) people.push_back(person_json(person, options));
  const FrameStamps& stamps = frame.stamps;
  return {{"type", "frame"},
          {"stream", frame.stream_id},
          {"frame", frame.frame_index},
          {"pts_s", round3(static_cast<double>(frame.pts_us) / 1e6)},
          {"size", {frame.width, frame.height}},
          {"source_size", {frame.source_width, frame.source_height}},
          {"batch", frame.batch_size},
          {"latency_ms",
           {{"queue", round3(static_cast<double>(stamps.inference_start_us - stamps.decoded_us) / 1e3)},
            {"inference", round3(static_cast<double>(stamps.inference_end_us - stamps.inference_start_us) / 1e3)},
            {"total", round3(static_cast<double>(stamps.published_us - stamps.decoded_us) / 1e3)}}},
          {"people", std::move(people)}};
}

double seconds(int64_t us) { return round3(static_cast<double>(us) / 1e6); }

json analysis_json(const std::string& stream, const analysis::Event& event) {
  return std::visit(
      [&](const auto& e) -> json {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, analysis::RepEvent>) {
          json angles = json::object();
          for (const auto& [name, range] : e.angles) {
            angles[name] = {{"min_deg", round3(range.min_deg)},
                            {"max_deg", round3(range.max_deg)},
                            {"range_of_motion_deg", round3(range.range_of_motion_deg)}};
          }
          return {{"type", "rep"},
                  {"stream", stream},
                  {"person", e.track_id},
                  {"exercise", e.exercise},
                  {"rep", e.rep_index},
                  {"side", e.side},
                  {"start_s", seconds(e.start_us)},
                  {"end_s", seconds(e.end_us)},
                  {"duration_s", seconds(e.end_us - e.start_us)},
                  {"eccentric_s", seconds(e.eccentric_us)},
                  {"concentric_s", seconds(e.concentric_us)},
                  {"angles", std::move(angles)},
                  {"form_issues", e.form_issues},
                  {"anomaly_score", e.anomaly_score ? json(round3(*e.anomaly_score)) : json(nullptr)},
                  {"anomalous", e.anomalous}};
        } else if constexpr (std::is_same_v<T, analysis::FormEvent>) {
          return {{"type", "form"},
                  {"stream", stream},
                  {"person", e.track_id},
                  {"exercise", e.exercise},
                  {"t_s", seconds(e.timestamp_us)},
                  {"rule", e.rule},
                  {"message", e.message},
                  {"severity", analysis::to_string(e.severity)},
                  {"rep", e.rep_index}};
        } else {
          return {{"type", "anomaly"},        {"stream", stream},
                  {"person", e.track_id},     {"exercise", e.exercise},
                  {"rep", e.rep_index},       {"t_s", seconds(e.timestamp_us)},
                  {"score", round3(e.score)}, {"threshold", round3(e.threshold)}};
        }
      },
      event);
}

}  // namespace

std::string event_json(const Event& event, const JsonOptions& options) {
  json out = std::visit(
      [&](const auto& e) -> json {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, FrameResult>) {
          return frame_json(e, options);
        } else if constexpr (std::is_same_v<T, AnalysisEvent>) {
          return analysis_json(e.stream_id, e.event);
        } else {
          return {{"type", "status"}, {"stream", e.stream_id}, {"state", to_string(e.state)}, {"message", e.message}};
        }
      },
      event);
  if (options.event_id > 0) out["id"] = options.event_id;
  return out.dump();
}

std::string summary_json(const std::string& model, const std::vector<StreamSummary>& streams) {
  json all = json::array();
  for (const auto& stream : streams) {
    json people = json::array();
    for (const auto& person : stream.people) {
      json issues = json::object();
      for (const auto& [rule, count] : person.form_issue_counts) issues[rule] = count;
      people.push_back({{"id", person.track_id},
                        {"exercise", person.exercise},
                        {"reps", person.reps},
                        {"longest_hold_s", seconds(person.longest_hold_us)},
                        {"first_seen_s", seconds(person.first_seen_us)},
                        {"last_seen_s", seconds(person.last_seen_us)},
                        {"mean_rep_s", round3(person.mean_rep_duration_s)},
                        {"mean_eccentric_s", round3(person.mean_eccentric_s)},
                        {"mean_concentric_s", round3(person.mean_concentric_s)},
                        {"mean_range_of_motion_deg", round3(person.mean_range_of_motion_deg)},
                        {"form_issues", std::move(issues)},
                        {"anomalous_reps", person.anomalous_reps}});
    }
    all.push_back({{"id", stream.stream_id},
                   {"source", stream.source},
                   {"exercise", stream.exercise},
                   {"state", to_string(stream.stats.state)},
                   {"error", stream.error.empty() ? json(nullptr) : json(stream.error)},
                   {"frames_decoded", stream.stats.frames_decoded},
                   {"frames_analysed", stream.stats.frames_analysed},
                   {"frames_dropped", stream.stats.frames_dropped},
                   {"reconnects", stream.stats.reconnects},
                   {"media_duration_s", round3(stream.media_duration_s)},
                   {"people", std::move(people)}});
  }
  const json out = {{"schema", "pose-analyze/1"}, {"model", model}, {"streams", std::move(all)}};
  return out.dump(2);
}

}  // namespace pose::runtime
