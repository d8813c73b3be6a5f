#include "pose/track/tracker.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

namespace pose::track {
namespace {

constexpr size_t kKeypointCount = static_cast<size_t>(engine::kCocoKeypointCount);

// COCO's per-keypoint sigmas (cocoapi): how far human annotators disagree on each joint, relative to the person's
// size. A hip may be off by four times as much as an eye and still be the same joint.
constexpr std::array<double, kKeypointCount> kCocoSigmas = {0.026, 0.025, 0.025, 0.035, 0.035, 0.079,
                                                            0.079, 0.072, 0.072, 0.062, 0.062, 0.107,
                                                            0.107, 0.087, 0.087, 0.089, 0.089};

// A coasting track is extrapolated at most this far: beyond it a person has more likely stopped or turned than
// kept walking, and a far-flung prediction would miss them where they reappear.
constexpr int64_t kMaxPredictionUs = 500'000;

// Coordinates are divided by the track's size when it starts; when the person's size has drifted past this factor
// (walking toward or away from the camera) the filters move to the new size. Not on every frame: a box's size
// jitters, and each move restarts the filters' speed estimate.
constexpr double kRescaleFactor = 1.5;

// A Person has depth when its landmarks reach every BlazePose landmark that a COCO keypoint comes from.
constexpr size_t kLandmarksForDepth =
    static_cast<size_t>(*std::max_element(engine::kCocoFromBlazePose.begin(), engine::kCocoFromBlazePose.end())) + 1;

bool has_depth(const engine::Person& person) { return person.landmarks.size() >= kLandmarksForDepth; }

float keypoint_depth(const engine::Person& person, size_t keypoint) {
  return person.landmarks[static_cast<size_t>(engine::kCocoFromBlazePose[keypoint])].z;
}

double box_iou(const engine::Box& a, const engine::Box& b) {
  const double width = std::min(a.x + a.width, b.x + b.width) - std::max(a.x, b.x);
  const double height = std::min(a.y + a.height, b.y + b.height) - std::max(a.y, b.y);
  if (width <= 0 || height <= 0) return 0;
  const double intersection = width * height;
  const double union_area = double{a.width} * a.height + double{b.width} * b.height - intersection;
  return union_area > 0 ? intersection / union_area : 0;
}

// The box around the keypoints at or above min_score (for a detection whose box is empty).
engine::Box keypoint_extent(const std::array<engine::Keypoint, kKeypointCount>& keypoints, float min_score) {
  float left = std::numeric_limits<float>::max(), top = left;
  float right = std::numeric_limits<float>::lowest(), bottom = right;
  for (const engine::Keypoint& keypoint : keypoints) {
    if (keypoint.score < min_score) continue;
    left = std::min(left, keypoint.x);
    right = std::max(right, keypoint.x);
    top = std::min(top, keypoint.y);
    bottom = std::max(bottom, keypoint.y);
  }
  if (right < left) return {};
  return {left, top, right - left, bottom - top};
}

// A person's box, or the extent of the visible keypoints when the estimator gave no box.
engine::Box usable_box(const engine::Box& box, const std::array<engine::Keypoint, kKeypointCount>& keypoints,
                       float min_score) {
  return box.width > 0 && box.height > 0 ? box : keypoint_extent(keypoints, min_score);
}

// The size coordinates are divided by: the box diagonal, which (unlike the torso) exists whatever is visible.
double person_size_px(const engine::Person& person, float min_score) {
  const engine::Box box = usable_box(person.box, person.keypoints, min_score);
  return std::max(1.0, std::hypot(double{box.width}, double{box.height}));
}

// Minimum-cost assignment on a square n x n matrix (row-major): the Hungarian method with potentials, O(n^3).
// Returns the column of each row.
std::vector<size_t> min_cost_assignment(const std::vector<double>& cost, size_t n) {
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  // 1-based rows and columns; column 0 and row 0 are the method's virtual start.
  std::vector<double> row_potential(n + 1, 0.0), column_potential(n + 1, 0.0);
  std::vector<size_t> row_of_column(n + 1, 0), previous_column(n + 1, 0);
  for (size_t row = 1; row <= n; ++row) {
    row_of_column[0] = row;
    size_t column = 0;
    std::vector<double> min_slack(n + 1, kInfinity);
    std::vector<bool> used(n + 1, false);
    do {
      used[column] = true;
      const size_t current_row = row_of_column[column];
      double delta = kInfinity;
      size_t next_column = 0;
      for (size_t c = 1; c <= n; ++c) {
        if (used[c]) continue;
        const double slack = cost[(current_row - 1) * n + (c - 1)] - row_potential[current_row] - column_potential[c];
        if (slack < min_slack[c]) {
          min_slack[c] = slack;
          previous_column[c] = column;
        }
        if (min_slack[c] < delta) {
          delta = min_slack[c];
          next_column = c;
        }
      }
      for (size_t c = 0; c <= n; ++c) {
        if (used[c]) {
          row_potential[row_of_column[c]] += delta;
          column_potential[c] -= delta;
        } else {
          min_slack[c] -= delta;
        }
      }
      column = next_column;
    } while (row_of_column[column] != 0);
    do {
      const size_t previous = previous_column[column];
      row_of_column[column] = row_of_column[previous];
      column = previous;
    } while (column != 0);
  }
  std::vector<size_t> column_of_row(n);
  for (size_t c = 1; c <= n; ++c) column_of_row[row_of_column[c] - 1] = c - 1;
  return column_of_row;
}

}  // namespace

struct Tracker::State {
  // The raw detection of one matched frame, kept for the motion prediction.
  struct Observation {
    int64_t timestamp_us = 0;
    engine::Box box;
    std::array<engine::Keypoint, kKeypointCount> keypoints{};
  };
  struct KeypointFilters {
    OneEuroFilter x, y, z;
    // Fed at the track's last observation. A keypoint that was not restarts its filters when it reappears, rather
    // than dragging from where it was last seen.
    bool live = false;
  };
  // Where the track's person is expected in the frame being matched.
  struct Prediction {
    engine::Box box;
    std::array<engine::Keypoint, kKeypointCount> keypoints{};

    // How alike `person` is to this prediction, 0..1 (see TrackerOptions::min_similarity).
    double similarity(const engine::Person& person, float min_score) const {
      const engine::Box person_box = usable_box(person.box, person.keypoints, min_score);
      const double iou = box_iou(box, person_box);
      const double area = double{box.width} * box.height;
      if (area <= 0) return iou;
      double oks_sum = 0;
      int shared = 0;
      for (size_t k = 0; k < kKeypointCount; ++k) {
        if (keypoints[k].score < min_score || person.keypoints[k].score < min_score) continue;
        const double dx = person.keypoints[k].x - keypoints[k].x;
        const double dy = person.keypoints[k].y - keypoints[k].y;
        const double tolerance = 2 * kCocoSigmas[k];
        oks_sum += std::exp(-(dx * dx + dy * dy) / (2 * area * tolerance * tolerance));
        ++shared;
      }
      return shared > 0 ? (oks_sum / shared + iou) / 2 : iou;
    }
  };

  State(int64_t id, const engine::Person& person, int64_t timestamp_us, const TrackerOptions& options)
      : scale_px(person_size_px(person, options.min_keypoint_score)) {
    for (KeypointFilters& keypoint_filters : filters) {
      keypoint_filters.x = keypoint_filters.y = keypoint_filters.z = OneEuroFilter(options.smoothing);
    }
    track.id = id;
    track.first_seen_us = timestamp_us;
    // A keypoint hidden from the start has no smoothed value to keep: it shows where the estimator put it.
    for (size_t k = 0; k < kKeypointCount; ++k) {
      track.keypoints[k].x = person.keypoints[k].x;
      track.keypoints[k].y = person.keypoints[k].y;
    }
    observe(person, timestamp_us, options);
  }

  Prediction predict(int64_t timestamp_us, float min_score) const {
    Prediction prediction{last.box, last.keypoints};
    if (!previous) return prediction;
    const auto [velocity_x, velocity_y] = centre_velocity_px_per_us(min_score);
    const double horizon_us = static_cast<double>(std::min(timestamp_us - last.timestamp_us, kMaxPredictionUs));
    const auto shift_x = static_cast<float>(velocity_x * horizon_us);
    const auto shift_y = static_cast<float>(velocity_y * horizon_us);
    prediction.box.x += shift_x;
    prediction.box.y += shift_y;
    for (engine::Keypoint& keypoint : prediction.keypoints) {
      keypoint.x += shift_x;
      keypoint.y += shift_y;
    }
    return prediction;
  }

  // The person moves as a whole between two frames: the mean shift of the keypoints seen in both observations is
  // their common velocity, with the jitter of single keypoints averaged out. The box centre stands in when no
  // keypoint was seen in both.
  std::pair<double, double> centre_velocity_px_per_us(float min_score) const {
    double shift_x = 0, shift_y = 0;
    int shared = 0;
    for (size_t k = 0; k < kKeypointCount; ++k) {
      if (last.keypoints[k].score < min_score || previous->keypoints[k].score < min_score) continue;
      shift_x += last.keypoints[k].x - previous->keypoints[k].x;
      shift_y += last.keypoints[k].y - previous->keypoints[k].y;
      ++shared;
    }
    if (shared > 0) {
      shift_x /= shared;
      shift_y /= shared;
    } else {
      shift_x = (last.box.x + last.box.width / 2) - (previous->box.x + previous->box.width / 2);
      shift_y = (last.box.y + last.box.height / 2) - (previous->box.y + previous->box.height / 2);
    }
    const auto period_us = static_cast<double>(last.timestamp_us - previous->timestamp_us);
    return {shift_x / period_us, shift_y / period_us};
  }

  // Matched to `person` at `timestamp_us` (after every earlier observation): smooth its visible keypoints.
  void observe(const engine::Person& person, int64_t timestamp_us, const TrackerOptions& options) {
    const double size_px = person_size_px(person, options.min_keypoint_score);
    if (size_px > scale_px * kRescaleFactor || size_px * kRescaleFactor < scale_px) rescale(size_px);
    track.has_depth = has_depth(person);
    for (size_t k = 0; k < kKeypointCount; ++k) {
      const engine::Keypoint& detected = person.keypoints[k];
      TrackedKeypoint& smoothed = track.keypoints[k];
      KeypointFilters& keypoint_filters = filters[k];
      smoothed.score = detected.score;
      smoothed.visible = detected.score >= options.min_keypoint_score;
      if (!track.has_depth) {
        keypoint_filters.z.reset();
        smoothed.z = 0;
      }
      if (!smoothed.visible) {
        keypoint_filters.live = false;  // keeps the last smoothed position, which nothing downstream counts
        continue;
      }
      if (!keypoint_filters.live) {
        keypoint_filters.x.reset();
        keypoint_filters.y.reset();
        keypoint_filters.z.reset();
        keypoint_filters.live = true;
      }
      smoothed.x = smooth(keypoint_filters.x, detected.x, timestamp_us);
      smoothed.y = smooth(keypoint_filters.y, detected.y, timestamp_us);
      if (track.has_depth) smoothed.z = smooth(keypoint_filters.z, keypoint_depth(person, k), timestamp_us);
    }
    if (track.frames_seen > 0) previous = last;
    track.box = person.box;
    track.score = person.score;
    track.last_seen_us = timestamp_us;
    ++track.frames_seen;
    last = Observation{timestamp_us, usable_box(person.box, person.keypoints, options.min_keypoint_score),
                       person.keypoints};
  }

  float smooth(OneEuroFilter& filter, float value_px, int64_t timestamp_us) const {
    return static_cast<float>(filter.filter(value_px / scale_px, timestamp_us) * scale_px);
  }

  // Moves the live filters to a new size without a jump: each restarts from its last output, expressed in the new
  // size, at the time of that output. Only the speed estimate starts over.
  void rescale(double size_px) {
    const int64_t last_output_us = track.last_seen_us;
    for (size_t k = 0; k < kKeypointCount; ++k) {
      KeypointFilters& keypoint_filters = filters[k];
      if (!keypoint_filters.live) continue;
      const TrackedKeypoint& output = track.keypoints[k];
      restart(keypoint_filters.x, output.x, size_px, last_output_us);
      restart(keypoint_filters.y, output.y, size_px, last_output_us);
      if (track.has_depth) restart(keypoint_filters.z, output.z, size_px, last_output_us);
    }
    scale_px = size_px;
  }

  static void restart(OneEuroFilter& filter, float value_px, double size_px, int64_t timestamp_us) {
    filter.reset();
    filter.filter(value_px / size_px, timestamp_us);
  }

  Track track;
  std::array<KeypointFilters, kKeypointCount> filters;
  double scale_px;  // keypoint coordinates are divided by this before filtering
  Observation last;
  std::optional<Observation> previous;
};

Tracker::Tracker(const TrackerOptions& options) : options_(options) {}
Tracker::~Tracker() = default;
Tracker::Tracker(const Tracker&) = default;
Tracker& Tracker::operator=(const Tracker&) = default;
Tracker::Tracker(Tracker&&) noexcept = default;
Tracker& Tracker::operator=(Tracker&&) noexcept = default;

TrackUpdate Tracker::update(std::span<const engine::Person> people, int64_t timestamp_us) {
  TrackUpdate update;
  if (last_timestamp_us_ && timestamp_us <= *last_timestamp_us_) {
    update.tracks = tracks_seen_at(*last_timestamp_us_);
    return update;
  }
  last_timestamp_us_ = timestamp_us;

  // Tracks lost too long end before matching, so a person back after that gets a new id.
  std::erase_if(states_, [&](const State& state) {
    const bool lost = timestamp_us - state.track.last_seen_us > options_.lost_after_us;
    if (lost) update.ended_ids.push_back(state.track.id);
    return lost;
  });

  // Optimal assignment maximising the summed similarity of the accepted pairs: a pair below the gate costs as
  // much as leaving both unmatched (1), and so does a padding row or column of the square matrix.
  const float min_score = options_.min_keypoint_score;
  const size_t track_count = states_.size();
  const size_t size = std::max(people.size(), track_count);
  std::vector<double> cost(size * size, 1.0);
  std::vector<bool> allowed(size * size, false);
  for (size_t t = 0; t < track_count; ++t) {
    const State::Prediction prediction = states_[t].predict(timestamp_us, min_score);
    for (size_t p = 0; p < people.size(); ++p) {
      const double similarity = prediction.similarity(people[p], min_score);
      if (!(similarity >= options_.min_similarity)) continue;  // NaN too: the assignment needs finite costs
      cost[p * size + t] = 1.0 - similarity;
      allowed[p * size + t] = true;
    }
  }
  const std::vector<size_t> track_of_person = min_cost_assignment(cost, size);

  std::vector<bool> track_matched(track_count, false);
  std::vector<size_t> newcomers;
  for (size_t p = 0; p < people.size(); ++p) {
    const size_t t = track_of_person[p];
    if (t < track_count && allowed[p * size + t]) {
      states_[t].observe(people[p], timestamp_us, options_);
      track_matched[t] = true;
    } else {
      newcomers.push_back(p);
    }
  }

  if (options_.keep_id_when_alone && people.size() == 1 && track_count == 1 && newcomers.size() == 1) {
    State continued(states_[0].track.id, people[0], timestamp_us, options_);
    continued.track.first_seen_us = states_[0].track.first_seen_us;
    continued.track.frames_seen = states_[0].track.frames_seen + 1;
    states_[0] = continued;
    newcomers.clear();
    track_matched[0] = true;
  }

  // The most confident newcomers first; at max_tracks a newcomer replaces the track lost longest, since a person in
  // view matters more than one who may have left.
  std::stable_sort(newcomers.begin(), newcomers.end(),
                   [&](size_t a, size_t b) { return people[a].score > people[b].score; });
  std::vector<bool> evicted(track_count, false);
  std::vector<State> born;
  size_t live_count = track_count;
  for (const size_t p : newcomers) {
    if (live_count >= static_cast<size_t>(std::max(options_.max_tracks, 0))) {
      std::optional<size_t> longest_lost;
      for (size_t t = 0; t < track_count; ++t) {
        if (track_matched[t] || evicted[t]) continue;
        if (!longest_lost || states_[t].track.last_seen_us < states_[*longest_lost].track.last_seen_us)
          longest_lost = t;
      }
      if (!longest_lost) break;
      evicted[*longest_lost] = true;
      update.ended_ids.push_back(states_[*longest_lost].track.id);
      --live_count;
    }
    born.emplace_back(next_id_++, people[p], timestamp_us, options_);
    ++live_count;
  }
  std::vector<State> kept;
  kept.reserve(live_count);
  for (size_t t = 0; t < track_count; ++t) {
    if (!evicted[t]) kept.push_back(states_[t]);
  }
  std::move(born.begin(), born.end(), std::back_inserter(kept));
  states_ = std::move(kept);  // still ordered by id: the newborn have the highest

  std::sort(update.ended_ids.begin(), update.ended_ids.end());
  update.tracks = tracks_seen_at(timestamp_us);
  return update;
}

void Tracker::reset() {
  states_.clear();
  last_timestamp_us_.reset();
}

std::vector<Track> Tracker::tracks_seen_at(int64_t timestamp_us) const {
  std::vector<Track> tracks;
  for (const State& state : states_) {
    if (state.track.last_seen_us == timestamp_us) tracks.push_back(state.track);
  }
  return tracks;
}

}  // namespace pose::track
