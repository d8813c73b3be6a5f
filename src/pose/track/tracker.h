#pragma once
// Following people across the frames of one stream: each person the estimator reports is matched to a track
// (stable id), its keypoints smoothed with One Euro filters, and keypoints not seen are marked so nothing
// downstream counts from them (visibility gating). Pure: people and time in, tracks out; no clock, no I/O.
//
//   pose::track::Tracker tracker({});
//   auto update = tracker.update(people, frame.pts_us);   // update.tracks: the people of this frame, with ids
//
// Thread-safety: a Tracker is a value holding one stream's state; used by one thread at a time.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "pose/engine/person.h"
#include "pose/track/one_euro.h"

namespace pose::track {

struct TrackedKeypoint {
  // Smoothed, source-image pixels. While not visible: the last smoothed position (where the estimator put it, if
  // never seen), which nothing downstream should count; when it reappears its smoothing starts over.
  float x = 0, y = 0;
  float z = 0;           // smoothed depth (BlazePose landmarks; same pixel scale, smaller is closer); 0 without
  float score = 0;       // the estimator's score in this frame
  bool visible = false;  // score >= TrackerOptions::min_keypoint_score in this frame
};

struct Track {
  int64_t id = 0;  // unique within the stream, from 1, never reused
  std::array<TrackedKeypoint, engine::kCocoKeypointCount> keypoints{};
  bool has_depth = false;  // keypoints carry z (BlazePose)
  engine::Box box;         // of this frame's detection, source-image pixels
  float score = 0;         // person score in this frame
  int64_t first_seen_us = 0;
  int64_t last_seen_us = 0;
  int frames_seen = 0;
};

struct TrackerOptions {
  float min_keypoint_score = 0.3f;  // visibility gate
  // Similarity of a person to a track's predicted position: the mean of OKS (keypoints visible in both, scale from
  // the track's box area) and box IoU, or IoU alone when no keypoint is visible in both. Below this, no match.
  float min_similarity = 0.2f;
  int64_t lost_after_us = 1'000'000;  // a track unmatched longer than this ends (and its id is never reused)
  // Tracks at once. Beyond it the most confident newcomers replace the tracks lost longest (which end); people
  // left over are not tracked.
  int max_tracks = 32;
  // One person in view, one track, and they fail to match (a camera cut to a close-up, a jump in position): the
  // person keeps the id, with the smoothing restarted. A single-person scene then keeps one id through cuts; the
  // price is that someone who replaces the only person within lost_after_us inherits the id.
  bool keep_id_when_alone = true;
  // Smoothing runs on coordinates divided by the person's size, so the same settings suit near and far people.
  OneEuroOptions smoothing{.min_cutoff_hz = 1.5, .beta = 1.0, .derivative_cutoff_hz = 1.0};
};

struct TrackUpdate {
  std::vector<Track> tracks;       // the people of this frame, ordered by id
  std::vector<int64_t> ended_ids;  // tracks that ended at this update (lost too long, or replaced), ascending
};

class Tracker {
 public:
  explicit Tracker(const TrackerOptions& options = {});
  // Out of line because State is complete only in tracker.cpp.
  ~Tracker();
  Tracker(const Tracker&);
  Tracker& operator=(const Tracker&);
  Tracker(Tracker&&) noexcept;
  Tracker& operator=(Tracker&&) noexcept;

  // A timestamp not after the previous one is treated as a repeat: the tracks are returned unchanged (those of the
  // previous update) and nothing ends. Tracks unmatched this frame coast (not in `tracks`) until lost_after_us.
  TrackUpdate update(std::span<const engine::Person> people, int64_t timestamp_us);
  // Forgets every track (a scene cut, a new stream) without reporting them ended; ids keep counting up, and the
  // next timestamp may be anything (a new stream may start again at 0).
  void reset();

 private:
  struct State;
  std::vector<Track> tracks_seen_at(int64_t timestamp_us) const;

  TrackerOptions options_;
  std::vector<State> states_;  // ordered by id; defined in tracker.cpp
  int64_t next_id_ = 1;
  std::optional<int64_t> last_timestamp_us_;  // none before the first update and after reset()
};

}  // namespace pose::track
