#include "pose/track/tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <optional>
#include <random>
#include <vector>

namespace pose::track {
namespace {

using engine::Person;

constexpr int64_t kFrameUs = 33'333;  // 30 frames per second
constexpr size_t kKeypoints = static_cast<size_t>(engine::kCocoKeypointCount);
constexpr size_t kLeftWrist = static_cast<size_t>(engine::Joint::kLeftWrist);
constexpr size_t kNose = static_cast<size_t>(engine::Joint::kNose);

int64_t frame_us(int frame) { return frame * kFrameUs; }

// A standing person facing the camera: each keypoint as (x from the body's centre line, y from the top of the
// head), in fractions of the person's height. The person's left is the image's right.
constexpr std::array<std::array<double, 2>, kKeypoints> kStanding = {{{0.0, 0.06},
                                                                      {0.02, 0.045},
                                                                      {-0.02, 0.045},
                                                                      {0.045, 0.055},
                                                                      {-0.045, 0.055},
                                                                      {0.11, 0.18},
                                                                      {-0.11, 0.18},
                                                                      {0.13, 0.33},
                                                                      {-0.13, 0.33},
                                                                      {0.14, 0.46},
                                                                      {-0.14, 0.46},
                                                                      {0.08, 0.52},
                                                                      {-0.08, 0.52},
                                                                      {0.08, 0.73},
                                                                      {-0.08, 0.73},
                                                                      {0.08, 0.95},
                                                                      {-0.08, 0.95}}};

// Where a person stands: centre line x, top of the head y, height, all in pixels.
struct Placement {
  double centre_x = 0, top_y = 0, height = 0;
  double truth_x(size_t k) const { return centre_x + kStanding[k][0] * height; }
  double truth_y(size_t k) const { return top_y + kStanding[k][1] * height; }
};

// Gaussian pixel noise on every keypoint, as an estimator's frame-to-frame jitter.
class Jitter {
 public:
  Jitter(double sigma_px, unsigned seed) : random_(seed), noise_(0.0, sigma_px) {}
  double operator()() { return sigma_px() > 0 ? noise_(random_) : 0.0; }
  double sigma_px() const { return noise_.stddev(); }

 private:
  std::mt19937 random_;
  std::normal_distribution<double> noise_;
};

// The person as an estimator reports it: jittered keypoints and the box around them with a margin (MoveNet
// derives its box the same way).
Person make_person(const Placement& placement, Jitter* jitter = nullptr, float score = 0.9f) {
  Person person;
  person.score = score;
  float left = 1e9f, right = -1e9f, top = 1e9f, bottom = -1e9f;
  for (size_t k = 0; k < kKeypoints; ++k) {
    engine::Keypoint& keypoint = person.keypoints[k];
    keypoint.x = static_cast<float>(placement.truth_x(k) + (jitter ? (*jitter)() : 0.0));
    keypoint.y = static_cast<float>(placement.truth_y(k) + (jitter ? (*jitter)() : 0.0));
    keypoint.score = 0.9f;
    left = std::min(left, keypoint.x);
    right = std::max(right, keypoint.x);
    top = std::min(top, keypoint.y);
    bottom = std::max(bottom, keypoint.y);
  }
  const auto margin = static_cast<float>(0.08 * placement.height);
  person.box = {left - margin, top - margin, right - left + 2 * margin, bottom - top + 2 * margin};
  return person;
}

double box_iou(const engine::Box& a, const engine::Box& b) {
  const double width = std::min(a.x + a.width, b.x + b.width) - std::max(a.x, b.x);
  const double height = std::min(a.y + a.height, b.y + b.height) - std::max(a.y, b.y);
  if (width <= 0 || height <= 0) return 0;
  return width * height / (a.width * a.height + b.width * b.height - width * height);
}

TEST(Tracker, OneJitteredPersonKeepsOneIdAndTheJitterIsReduced) {
  Tracker tracker;
  Jitter jitter(3.0, 1);
  const Placement placement{640, 100, 400};
  double raw_square_sum = 0, smoothed_square_sum = 0;
  for (int frame = 0; frame < 300; ++frame) {
    const std::vector<Person> people = {make_person(placement, &jitter)};
    const TrackUpdate update = tracker.update(people, frame_us(frame));
    ASSERT_EQ(update.tracks.size(), 1u) << "frame " << frame;
    EXPECT_EQ(update.tracks[0].id, 1);
    EXPECT_EQ(update.tracks[0].frames_seen, frame + 1);
    EXPECT_TRUE(update.ended_ids.empty());
    if (frame < 30) continue;  // let the filters settle
    for (size_t k = 0; k < kKeypoints; ++k) {
      const TrackedKeypoint& smoothed = update.tracks[0].keypoints[k];
      ASSERT_TRUE(smoothed.visible);
      raw_square_sum += std::pow(people[0].keypoints[k].x - placement.truth_x(k), 2) +
                        std::pow(people[0].keypoints[k].y - placement.truth_y(k), 2);
      smoothed_square_sum +=
          std::pow(smoothed.x - placement.truth_x(k), 2) + std::pow(smoothed.y - placement.truth_y(k), 2);
    }
  }
  // An exponential filter at 1.5 Hz and 30 frames/s (alpha 0.24) passes sqrt(alpha / (2 - alpha)) = 0.37 of white
  // noise; the speed term raises the cut-off a little. Not frozen either: the output still follows the input.
  const double ratio = std::sqrt(smoothed_square_sum / raw_square_sum);
  EXPECT_LT(ratio, 0.5);
  EXPECT_GT(ratio, 0.25);
}

// Two people of nearly the same build run past each other (750 px/s). Where they cross, each track's last
// position is as close to the other person as to its own, so only the motion prediction tells them apart.
TEST(Tracker, TwoPeopleCrossingKeepTheirIds) {
  Tracker tracker;
  Jitter jitter(2.0, 2);
  std::array<std::optional<int64_t>, 2> ids;  // of the one running right, the one running left
  double max_iou = 0;
  for (int frame = 0; frame < 40; ++frame) {
    const std::array<Placement, 2> placements = {Placement{200.0 + 25.0 * frame, 80, 400},
                                                 Placement{1150.0 - 25.0 * frame, 84, 392}};  // level at frame 19
    const std::vector<Person> people = {make_person(placements[1], &jitter), make_person(placements[0], &jitter)};
    max_iou = std::max(max_iou, box_iou(people[0].box, people[1].box));
    const TrackUpdate update = tracker.update(people, frame_us(frame));
    ASSERT_EQ(update.tracks.size(), 2u) << "frame " << frame;
    for (const Track& track : update.tracks) {
      // Which person the track was given: its box is that person's detection.
      const size_t runner = track.box.x == people[1].box.x && track.box.y == people[1].box.y ? 0 : 1;
      if (!ids[runner]) ids[runner] = track.id;
      EXPECT_EQ(track.id, *ids[runner]) << "frame " << frame << " runner " << runner;
    }
  }
  EXPECT_NE(*ids[0], *ids[1]);
  EXPECT_GT(max_iou, 0.9);  // mid-way the boxes overlapped almost entirely
}

// A sprinter (1500 px/s) whose frames are dropped after the first three: seen at 10 frames/s it moves 150 px between
// observations, most of the box's width. Without the constant-velocity prediction the similarity (IoU 0.05, OKS
// near 0) falls below the gate and the id changes.
TEST(Tracker, FastMoverWithDroppedFramesKeepsItsId) {
  Tracker tracker;
  Jitter jitter(2.0, 3);
  for (int frame = 0; frame < 60; frame += frame < 2 ? 1 : 3) {
    const std::vector<Person> people = {make_person({100.0 + 50.0 * frame, 100, 380}, &jitter)};
    const TrackUpdate update = tracker.update(people, frame_us(frame));
    ASSERT_EQ(update.tracks.size(), 1u);
    EXPECT_EQ(update.tracks[0].id, 1) << "frame " << frame;
    EXPECT_TRUE(update.ended_ids.empty());
  }
}

TEST(Tracker, APersonGoneBrieflyKeepsTheIdAndGoneLongerEndsOnceAndComesBackNew) {
  Tracker tracker;  // lost_after_us: 1 s
  Jitter jitter(2.0, 4);
  const Placement placement{500, 120, 360};
  std::vector<int64_t> ended;
  auto run = [&](int first, int last, bool present) {
    for (int frame = first; frame <= last; ++frame) {
      std::vector<Person> people;
      if (present) people.push_back(make_person(placement, &jitter));
      const TrackUpdate update = tracker.update(people, frame_us(frame));
      ended.insert(ended.end(), update.ended_ids.begin(), update.ended_ids.end());
      if (!update.ended_ids.empty()) {
        EXPECT_GT(frame_us(frame) - frame_us(74), 1'000'000) << "ended too early";
        EXPECT_LE(frame_us(frame - 1) - frame_us(74), 1'000'000) << "ended late";
      }
      if (!present) {
        EXPECT_TRUE(update.tracks.empty());
        continue;
      }
      ASSERT_EQ(update.tracks.size(), 1u);
      EXPECT_EQ(update.tracks[0].id, frame < 100 ? 1 : 2) << "frame " << frame;
    }
  };
  run(0, 29, true);
  run(30, 52, false);  // 0.77 s
  run(53, 74, true);
  EXPECT_TRUE(ended.empty());
  run(75, 119, false);  // 1.5 s
  EXPECT_EQ(ended, std::vector<int64_t>{1});
  run(120, 130, true);
  EXPECT_EQ(ended, std::vector<int64_t>{1});
}

// Eight people in a row enter one after another and leave one after another: each keeps one id while present,
// ids are 1..8 in order of arrival, and each ends exactly once, lost_after_us after leaving.
TEST(Tracker, EightPeopleAppearAndLeave) {
  TrackerOptions options;
  options.lost_after_us = 500'000;
  Tracker tracker(options);
  Jitter jitter(2.0, 5);
  auto present = [](int person, int frame) { return frame >= 5 * person && frame < 60 + 5 * person; };
  std::map<int64_t, int> ended_at_frame;
  int most_at_once = 0;
  for (int frame = 0; frame < 140; ++frame) {
    std::vector<Person> people;
    std::vector<Placement> placements;
    for (int person = 0; person < 8; ++person) {
      if (!present(person, frame)) continue;
      placements.push_back({100.0 + 150.0 * person, 100, 300});
      people.push_back(make_person(placements.back(), &jitter));
    }
    most_at_once = std::max(most_at_once, static_cast<int>(people.size()));
    const TrackUpdate update = tracker.update(people, frame_us(frame));
    ASSERT_EQ(update.tracks.size(), people.size()) << "frame " << frame;
    for (const Track& track : update.tracks) {
      ASSERT_GE(track.id, 1);
      ASSERT_LE(track.id, 8);
      const int person = static_cast<int>(track.id) - 1;  // the n-th to arrive gets id n
      EXPECT_TRUE(present(person, frame)) << "id " << track.id << " frame " << frame;
      EXPECT_NEAR(track.keypoints[kNose].x, 100.0 + 150.0 * person, 5.0) << "id " << track.id;
      EXPECT_EQ(track.first_seen_us, frame_us(5 * person));
    }
    for (const int64_t id : update.ended_ids) {
      EXPECT_FALSE(ended_at_frame.contains(id)) << "id " << id << " ended twice";
      ended_at_frame[id] = frame;
    }
  }
  EXPECT_EQ(most_at_once, 8);
  ASSERT_EQ(ended_at_frame.size(), 8u);
  for (const auto& [id, frame] : ended_at_frame) {
    const int last_seen_frame = 60 + 5 * static_cast<int>(id - 1) - 1;
    EXPECT_GT(frame_us(frame) - frame_us(last_seen_frame), options.lost_after_us);
    EXPECT_LE(frame_us(frame - 1) - frame_us(last_seen_frame), options.lost_after_us);
  }
}

// At max_tracks the most confident people are tracked; a newcomer then takes the place of a track that is not
// in view, which ends.
TEST(Tracker, MaxTracksKeepsTheMostConfidentAndReplacesALostTrack) {
  TrackerOptions options;
  options.max_tracks = 3;
  Tracker tracker(options);
  const std::vector<float> scores = {0.6f, 0.9f, 0.5f, 0.8f};
  std::vector<Person> people;
  for (size_t i = 0; i < scores.size(); ++i) {
    people.push_back(make_person({150.0 + 250.0 * static_cast<double>(i), 100, 300}, nullptr, scores[i]));
  }
  TrackUpdate update = tracker.update(people, 0);
  ASSERT_EQ(update.tracks.size(), 3u);
  std::vector<float> tracked_scores;
  for (const Track& track : update.tracks) tracked_scores.push_back(track.score);
  EXPECT_EQ(tracked_scores, (std::vector<float>{0.9f, 0.8f, 0.6f}));  // ids 1..3 by score; 0.5 left out

  people.erase(people.begin() + 1);  // the 0.9 person (id 1) leaves
  update = tracker.update(people, kFrameUs);
  EXPECT_EQ(update.ended_ids, std::vector<int64_t>{1});
  ASSERT_EQ(update.tracks.size(), 3u);
  EXPECT_EQ(update.tracks[2].id, 4);
  EXPECT_FLOAT_EQ(update.tracks[2].score, 0.5f);
}

TEST(Tracker, ALowScoreKeypointIsNotVisibleAndDoesNotMoveTheSmoothedValue) {
  Tracker tracker;
  const Placement placement{400, 100, 400};
  Jitter jitter(2.0, 6);
  TrackedKeypoint before;
  for (int frame = 0; frame < 30; ++frame) {
    const std::vector<Person> people = {make_person(placement, &jitter)};
    before = tracker.update(people, frame_us(frame)).tracks.at(0).keypoints[kLeftWrist];
  }
  ASSERT_TRUE(before.visible);
  for (int frame = 30; frame < 40; ++frame) {
    std::vector<Person> people = {make_person(placement, &jitter)};
    people[0].keypoints[kLeftWrist] = {static_cast<float>(placement.truth_x(kLeftWrist) + 100), 300, 0.1f};
    const Track track = tracker.update(people, frame_us(frame)).tracks.at(0);
    const TrackedKeypoint& wrist = track.keypoints[kLeftWrist];
    EXPECT_FALSE(wrist.visible);
    EXPECT_FLOAT_EQ(wrist.score, 0.1f);
    EXPECT_EQ(wrist.x, before.x);
    EXPECT_EQ(wrist.y, before.y);
    EXPECT_TRUE(track.keypoints[kNose].visible);
  }
  // Back, 60 px from where it was hidden: the filter starts over at the new position instead of gliding from the
  // stale one (which would put it about 45 px short).
  std::vector<Person> people = {make_person(placement, &jitter)};
  people[0].keypoints[kLeftWrist].x += 60;
  const TrackedKeypoint wrist = tracker.update(people, frame_us(40)).tracks.at(0).keypoints[kLeftWrist];
  EXPECT_TRUE(wrist.visible);
  EXPECT_FLOAT_EQ(wrist.x, people[0].keypoints[kLeftWrist].x);
  EXPECT_FLOAT_EQ(wrist.y, people[0].keypoints[kLeftWrist].y);
}

// BlazePose landmarks carry depth: z comes from the landmark each COCO keypoint maps to and is smoothed like x, y.
TEST(Tracker, DepthFromLandmarksIsSmoothed) {
  Tracker tracker;
  const Placement placement{400, 100, 400};
  Jitter jitter(2.0, 7), depth_jitter(6.0, 8);
  auto true_depth = [](size_t landmark) { return -100.0 + 5.0 * static_cast<double>(landmark); };
  double raw_square_sum = 0, smoothed_square_sum = 0;
  for (int frame = 0; frame < 200; ++frame) {
    std::vector<Person> people = {make_person(placement, &jitter)};
    people[0].landmarks.resize(33);
    for (size_t landmark = 0; landmark < 33; ++landmark) {
      people[0].landmarks[landmark].z = static_cast<float>(true_depth(landmark) + depth_jitter());
    }
    const Track track = tracker.update(people, frame_us(frame)).tracks.at(0);
    EXPECT_TRUE(track.has_depth);
    if (frame < 30) continue;
    for (size_t k = 0; k < kKeypoints; ++k) {
      const auto landmark = static_cast<size_t>(engine::kCocoFromBlazePose[k]);
      raw_square_sum += std::pow(people[0].landmarks[landmark].z - true_depth(landmark), 2);
      smoothed_square_sum += std::pow(track.keypoints[k].z - true_depth(landmark), 2);
    }
  }
  const double ratio = std::sqrt(smoothed_square_sum / raw_square_sum);
  EXPECT_LT(ratio, 0.5);
  EXPECT_GT(ratio, 0.2);

  // The same person from an estimator without depth (MoveNet): none reported.
  const std::vector<Person> people = {make_person(placement, &jitter)};
  const Track track = tracker.update(people, frame_us(200)).tracks.at(0);
  EXPECT_EQ(track.id, 1);
  EXPECT_FALSE(track.has_depth);
  for (const TrackedKeypoint& keypoint : track.keypoints) EXPECT_EQ(keypoint.z, 0.0f);
}

void expect_same_tracks(const std::vector<Track>& a, const std::vector<Track>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].frames_seen, b[i].frames_seen);
    EXPECT_EQ(a[i].last_seen_us, b[i].last_seen_us);
    EXPECT_EQ(a[i].box.x, b[i].box.x);
    for (size_t k = 0; k < kKeypoints; ++k) {
      EXPECT_EQ(a[i].keypoints[k].x, b[i].keypoints[k].x);
      EXPECT_EQ(a[i].keypoints[k].y, b[i].keypoints[k].y);
      EXPECT_EQ(a[i].keypoints[k].visible, b[i].keypoints[k].visible);
    }
  }
}

TEST(Tracker, ARepeatedOrEarlierTimestampReturnsTheTracksUnchanged) {
  Tracker tracker;
  const std::vector<Person> two = {make_person({300, 100, 400}), make_person({800, 100, 400})};
  tracker.update(two, 0);
  const TrackUpdate second = tracker.update(two, kFrameUs);
  ASSERT_EQ(second.tracks.size(), 2u);

  const std::vector<Person> moved = {make_person({340, 100, 400}), make_person({1200, 300, 200})};
  for (const int64_t timestamp_us : {kFrameUs, int64_t{0}, kFrameUs - 1}) {
    const TrackUpdate repeat = tracker.update(moved, timestamp_us);
    expect_same_tracks(repeat.tracks, second.tracks);
    EXPECT_TRUE(repeat.ended_ids.empty());
  }
  const TrackUpdate empty_repeat = tracker.update({}, kFrameUs);
  expect_same_tracks(empty_repeat.tracks, second.tracks);

  // Time moves on: the repeats left no trace (frames_seen counts real frames).
  const TrackUpdate next = tracker.update(two, 2 * kFrameUs);
  ASSERT_EQ(next.tracks.size(), 2u);
  EXPECT_EQ(next.tracks[0].frames_seen, 3);
  EXPECT_EQ(next.tracks[1].id, 2);
}

TEST(Tracker, ResetForgetsTracksButIdsKeepCountingUp) {
  Tracker tracker;
  const std::vector<Person> people = {make_person({300, 100, 400})};
  EXPECT_EQ(tracker.update(people, 5'000'000).tracks.at(0).id, 1);
  tracker.reset();
  const TrackUpdate update = tracker.update(people, 0);  // a new stream may start its clock over
  ASSERT_EQ(update.tracks.size(), 1u);
  EXPECT_EQ(update.tracks[0].id, 2);
  EXPECT_EQ(update.tracks[0].frames_seen, 1);
  EXPECT_TRUE(update.ended_ids.empty());

  Tracker copy = tracker;  // a value: the copy goes on from the same state
  EXPECT_EQ(copy.update(people, kFrameUs).tracks.at(0).id, 2);
  EXPECT_EQ(tracker.update(std::vector<Person>{make_person({300, 100, 400})}, 2 * kFrameUs).tracks.at(0).id, 2);
}

// A camera cut: the only person in view jumps to another place and size. Alone, they keep the id (with the
// smoothing restarted: no drag from the old place); with someone else in view, or with the option off, the jump
// starts a new track.
TEST(Tracker, ACutKeepsTheIdOfAPersonAloneOnly) {
  const Person before = make_person({300, 100, 200});
  const Person after = make_person({900, 50, 600});  // far away and three times the size
  Tracker alone;
  alone.update(std::vector<Person>{before}, 0);
  alone.update(std::vector<Person>{before}, kFrameUs);
  const TrackUpdate cut = alone.update(std::vector<Person>{after}, 2 * kFrameUs);
  ASSERT_EQ(cut.tracks.size(), 1u);
  EXPECT_EQ(cut.tracks[0].id, 1);
  EXPECT_EQ(cut.tracks[0].frames_seen, 3);
  EXPECT_EQ(cut.tracks[0].first_seen_us, 0);
  EXPECT_NEAR(cut.tracks[0].keypoints[0].x, after.keypoints[0].x, 1e-3) << "restarted, not dragged";

  TrackerOptions strict;
  strict.keep_id_when_alone = false;
  Tracker off(strict);
  off.update(std::vector<Person>{before}, 0);
  EXPECT_EQ(off.update(std::vector<Person>{after}, kFrameUs).tracks.at(0).id, 2);

  const Person bystander = make_person({1500, 100, 200});
  Tracker crowded;
  crowded.update(std::vector<Person>{before, bystander}, 0);
  const TrackUpdate jump = crowded.update(std::vector<Person>{after, bystander}, kFrameUs);
  ASSERT_EQ(jump.tracks.size(), 2u);
  EXPECT_EQ(jump.tracks[0].id, 2) << "the bystander";
  EXPECT_EQ(jump.tracks[1].id, 3) << "the jump is a new person";
}

// The same swaying, jittered motion at two sizes (every coordinate doubled) must be smoothed identically once
// divided by the size. Filtering raw pixels would not be: the speed term would see twice the speed at twice the
// size and smooth less.
TEST(Tracker, SmoothingIsScaleInvariant) {
  std::vector<std::vector<double>> normalised[2];
  double mean_change = 0;
  for (int size = 0; size < 2; ++size) {
    const double scale = size == 0 ? 1.0 : 2.0;
    Tracker tracker;
    Jitter jitter(1.5, 9);
    for (int frame = 0; frame < 150; ++frame) {
      const double sway = 20.0 * std::sin(2 * std::numbers::pi * 0.8 * static_cast<double>(frame_us(frame)) * 1e-6);
      Person person = make_person({300 + sway, 100, 200}, &jitter);
      for (engine::Keypoint& keypoint : person.keypoints) {
        keypoint.x *= static_cast<float>(scale);
        keypoint.y *= static_cast<float>(scale);
      }
      person.box = {person.box.x * static_cast<float>(scale), person.box.y * static_cast<float>(scale),
                    person.box.width * static_cast<float>(scale), person.box.height * static_cast<float>(scale)};
      const Track track = tracker.update(std::vector<Person>{person}, frame_us(frame)).tracks.at(0);
      std::vector<double> row;
      for (size_t k = 0; k < kKeypoints; ++k) {
        row.push_back(track.keypoints[k].x / scale);
        row.push_back(track.keypoints[k].y / scale);
        mean_change += std::abs(track.keypoints[k].x - person.keypoints[k].x) / scale /
                       (2.0 * 150.0 * static_cast<double>(kKeypoints));
      }
      normalised[size].push_back(row);
    }
  }
  EXPECT_GT(mean_change, 2.0);  // in pixels of the smaller person: the filter did change the input
  for (size_t frame = 0; frame < normalised[0].size(); ++frame) {
    for (size_t i = 0; i < normalised[0][frame].size(); ++i) {
      ASSERT_NEAR(normalised[0][frame][i], normalised[1][frame][i], 1e-3) << "frame " << frame << " value " << i;
    }
  }
}

// Walking toward the camera (the person grows 2.5 times) moves the filters to the new size on the way: the output
// stays on the person without jumps.
TEST(Tracker, APersonGrowingStaysSmoothAndOnTarget) {
  Tracker tracker;
  double previous_nose_y = 0;
  for (int frame = 0; frame < 90; ++frame) {
    const Placement placement{500, 100, 200.0 + 300.0 * frame / 89.0};
    const Track track = tracker.update(std::vector<Person>{make_person(placement)}, frame_us(frame)).tracks.at(0);
    EXPECT_EQ(track.id, 1);
    for (size_t k = 0; k < kKeypoints; ++k) {
      // The truth moves at most 3.2 px a frame; the lag of a smoothed, steadily moving point stays a few frames'.
      EXPECT_NEAR(track.keypoints[k].y, placement.truth_y(k), 12.0) << "frame " << frame << " keypoint " << k;
      EXPECT_NEAR(track.keypoints[k].x, placement.truth_x(k), 12.0) << "frame " << frame << " keypoint " << k;
    }
    if (frame > 0) {
      EXPECT_GE(track.keypoints[kNose].y, previous_nose_y - 1e-3) << "frame " << frame;  // only ever moves down
      EXPECT_LE(track.keypoints[kNose].y - previous_nose_y, 1.0) << "frame " << frame;   // by at most its truth
    }
    previous_nose_y = track.keypoints[kNose].y;
  }
}

}  // namespace
}  // namespace pose::track
