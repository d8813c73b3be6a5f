#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <numbers>
#include <random>

#include "pose/analysis/analysis.h"

namespace pose::analysis {
namespace {

constexpr int64_t kFrameUs = 33'333;  // 30 frames per second
constexpr double kPi = std::numbers::pi;

// Knee bends counted between 150 (up) and 110 (down), with a depth rule and a lean rule.
constexpr const char* kKneeBends = R"(
name = "knee-bends"
description = "test"
views = ["side"]
key_angles = ["knee", "trunk"]
[angles.knee]
joints = ["hip", "knee", "ankle"]
side = "both"
[angles.trunk]
segment = ["mid_hip", "mid_shoulder"]
from = "vertical"
[count]
angle = "knee"
start_above_deg = 150
turn_below_deg = 110
min_rep_s = 0.8
max_rep_s = 8
min_rom_deg = 50
max_gap_s = 0.5
[[rules]]
id = "depth"
message = "deeper"
phase = "down"
check = "min"
angle = "knee"
above_deg = 95
[[rules]]
id = "lean"
message = "chest up"
severity = "error"
phase = "rep"
angle = "trunk"
above_deg = 40
min_duration_s = 0.2
)";

// A side-view skeleton with the given joint angles, every keypoint visible.
struct Pose {
  double knee_deg = 175;
  double elbow_deg[2] = {170, 170};  // left, right
  double trunk_lean_deg = 0;         // from vertical
  double rotation_deg = 0;           // the whole body turned in the image (90: lying level)
};

void set(track::Track& track, int joint, double x, double y) {
  auto& point = track.keypoints[static_cast<size_t>(joint)];
  point.x = static_cast<float>(x);
  point.y = static_cast<float>(y);
  point.score = 0.9f;
  point.visible = true;
}

track::Track make_track(const Pose& pose, int64_t timestamp_us) {
  track::Track track;
  track.id = 7;
  track.last_seen_us = timestamp_us;
  const double knee = pose.knee_deg * kPi / 180, lean = pose.trunk_lean_deg * kPi / 180;
  struct P {
    double x, y;
  };
  const P ankle{300, 800}, knee_point{300, 600};
  const P hip{knee_point.x + 200 * std::sin(knee), knee_point.y + 200 * std::cos(knee)};
  const P shoulder{hip.x + 250 * std::sin(lean), hip.y - 250 * std::cos(lean)};
  const P nose{shoulder.x, shoulder.y - 60};
  const double turn = pose.rotation_deg * kPi / 180;
  const auto place = [&](int joint, P p) {
    const double dx = p.x - ankle.x, dy = p.y - ankle.y;
    set(track, joint, ankle.x + dx * std::cos(turn) - dy * std::sin(turn),
        ankle.y + dx * std::sin(turn) + dy * std::cos(turn));
  };
  for (int side = 0; side < 2; ++side) {
    const double elbow = pose.elbow_deg[side] * kPi / 180;
    const P elbow_point{shoulder.x, shoulder.y + 120};
    const P wrist{elbow_point.x + 110 * std::sin(elbow), elbow_point.y - 110 * std::cos(elbow)};
    place(5 + side, shoulder);
    place(7 + side, elbow_point);
    place(9 + side, wrist);
    place(11 + side, hip);
    place(13 + side, knee_point);
    place(15 + side, ankle);
  }
  for (int joint = 0; joint < 5; ++joint) place(joint, nose);
  return track;
}

struct Run {
  std::vector<RepEvent> reps;
  std::vector<FormEvent> forms;
  std::vector<AnomalyEvent> anomalies;
  std::vector<PersonState> states;  // the last frame's
  std::vector<PersonSummary> summary;
};

// Feeds `frames` frames of the pose the function gives for each time (none: the person is not detected).
Run run(const std::string& exercise_toml, const std::string& exercise, int frames,
        const std::function<std::optional<track::Track>(int64_t)>& frame_at, AnalyzerOptions options = {}) {
  if (!exercise_toml.empty()) {
    auto parsed = parse_exercise(exercise_toml, "test.toml");
    EXPECT_TRUE(parsed.ok()) << parsed.error().message;
    options.exercises = {*parsed};
  } else {
    auto loaded = load_exercises(default_exercise_dir());
    EXPECT_TRUE(loaded.ok());
    options.exercises = *loaded;
  }
  options.exercise = exercise;
  auto analyzer = StreamAnalyzer::create(options);
  EXPECT_TRUE(analyzer.ok()) << analyzer.error().message;
  Run out;
  for (int i = 0; i < frames; ++i) {
    const int64_t t = i * kFrameUs;
    std::vector<track::Track> tracks;
    if (auto track = frame_at(t)) tracks.push_back(*track);
    auto output = (*analyzer)->update(tracks, {}, t);
    for (auto& event : output.events) {
      if (auto* rep = std::get_if<RepEvent>(&event)) out.reps.push_back(*rep);
      if (auto* form = std::get_if<FormEvent>(&event)) out.forms.push_back(*form);
      if (auto* anomaly = std::get_if<AnomalyEvent>(&event)) out.anomalies.push_back(*anomaly);
    }
    out.states = output.people;
  }
  const int64_t ended[] = {7};
  (void)(*analyzer)->update({}, ended, frames * kFrameUs);
  out.summary = (*analyzer)->summary();
  return out;
}

double seconds(int64_t t) { return static_cast<double>(t) * 1e-6; }

// Knee angle of squats: `period_s` per rep, between 175 and `bottom_deg`, plus Gaussian noise.
std::function<std::optional<track::Track>(int64_t)> squats(double period_s, double bottom_deg, double noise_deg,
                                                           unsigned seed = 1) {
  auto random = std::make_shared<std::mt19937>(seed);
  return [=](int64_t t) {
    std::normal_distribution<double> noise(0, noise_deg);
    const double phase = std::fmod(seconds(t), period_s) / period_s;
    const double depth = (1 - std::cos(2 * kPi * phase)) / 2;  // 0 standing .. 1 bottom
    return make_track({.knee_deg = 175 - (175 - bottom_deg) * depth + noise(*random)}, t);
  };
}

TEST(StreamAnalyzer, CountsNoisySquatsExactly) {
  // 10 reps of 2 s with 3 degrees of noise, then 1 s standing.
  const auto result = run(kKneeBends, "knee-bends", 630, squats(2.0, 80, 3.0));
  ASSERT_EQ(result.reps.size(), 10u);
  for (size_t i = 0; i < result.reps.size(); ++i) {
    const auto& rep = result.reps[i];
    EXPECT_EQ(rep.rep_index, static_cast<int>(i) + 1);
    EXPECT_EQ(rep.track_id, 7);
    EXPECT_NEAR(seconds(rep.end_us - rep.start_us), 2.0 * 0.6, 0.4);  // time outside the start zone
    EXPECT_NEAR(rep.angles.at("knee").min_deg, 80, 8);
    EXPECT_GT(rep.angles.at("knee").range_of_motion_deg, 60);
    EXPECT_NEAR(seconds(rep.eccentric_us), seconds(rep.concentric_us), 0.25);
  }
  ASSERT_EQ(result.summary.size(), 1u);
  EXPECT_EQ(result.summary[0].reps, 10);
  EXPECT_EQ(result.summary[0].exercise, "knee-bends");
  EXPECT_GT(result.summary[0].mean_range_of_motion_deg, 60);
  EXPECT_TRUE(result.forms.empty());  // deep enough and upright
}

// Values outside an angle's valid range are not measured: with the knee valid only above 100 degrees, squats to 80
// never show a knee below 100 (in rep records, rules or counting); valid above 60, the bottom of 80 is seen.
TEST(StreamAnalyzer, ValuesOutsideTheValidRangeAreNotMeasured) {
  const auto with_valid_above = [](const char* degrees) {
    std::string toml = kKneeBends;
    toml.replace(toml.find("side = \"both\""), 13, std::string("side = \"both\"\nvalid_above_deg = ") + degrees);
    return toml;
  };
  const auto gated = run(with_valid_above("100"), "knee-bends", 630, squats(2.0, 80, 0.0));
  for (const auto& rep : gated.reps) EXPECT_GT(rep.angles.at("knee").min_deg, 100.0);
  const auto loose = run(with_valid_above("60"), "knee-bends", 630, squats(2.0, 80, 0.0));
  ASSERT_EQ(loose.reps.size(), 10u);
  EXPECT_NEAR(loose.reps[0].angles.at("knee").min_deg, 80, 3);
  EXPECT_FALSE(parse_exercise(with_valid_above("100\nvalid_below_deg = 90"), "bad.toml").ok());
}

TEST(StreamAnalyzer, NoRepsFromNoiseInsideTheHysteresisBand) {
  // Wobbling between 115 and 145 with noise: never above 150 or below 110.
  auto random = std::make_shared<std::mt19937>(3);
  const auto result = run(kKneeBends, "knee-bends", 600, [&](int64_t t) {
    std::normal_distribution<double> noise(0, 2.0);
    return make_track({.knee_deg = 130 + 12 * std::sin(2 * kPi * seconds(t)) + noise(*random)}, t);
  });
  EXPECT_TRUE(result.reps.empty());
  // Noise around standing: also nothing.
  const auto standing = run(kKneeBends, "knee-bends", 300, squats(2.0, 172, 2.0));
  EXPECT_TRUE(standing.reps.empty());
}

TEST(StreamAnalyzer, OcclusionGapsDoNotMakeReps) {
  // Down to the bottom, then the ankle is lost for 1 s (its keypoint drifts to garbage), then standing again: the
  // partial rep is dropped. Nothing may be measured from the invisible ankle.
  const auto gap = run(kKneeBends, "knee-bends", 150, [](int64_t t) {
    const double s = seconds(t);
    auto track = make_track({.knee_deg = s < 1 ? 175 - 90 * s : (s < 3.5 ? 85 : 175)}, t);
    if (s >= 1.5 && s < 2.8) {
      for (int ankle : {15, 16}) {
        track.keypoints[static_cast<size_t>(ankle)] = {.x = 0, .y = 0, .z = 0, .score = 0.05f, .visible = false};
      }
    }
    // A garbage keypoint with a low score that would read as a rep if it were used.
    if (s >= 3.0 && s < 3.5) track.keypoints[13].visible = false;
    return std::optional(track);
  });
  EXPECT_TRUE(gap.reps.empty());

  // The whole person missing for 2 s mid-rep: also no rep.
  const auto missing = run(kKneeBends, "knee-bends", 150, [](int64_t t) -> std::optional<track::Track> {
    const double s = seconds(t);
    if (s >= 1.2 && s < 3.2) return std::nullopt;
    return make_track({.knee_deg = s < 1.2 ? 175 - 80 * s : 175}, t);
  });
  EXPECT_TRUE(missing.reps.empty());

  // A short blink (0.2 s) at the bottom does not lose the rep.
  const auto blink = run(kKneeBends, "knee-bends", 150, [](int64_t t) -> std::optional<track::Track> {
    const double s = seconds(t);
    if (s >= 1.5 && s < 1.7) return std::nullopt;
    return make_track({.knee_deg = s < 1 ? 175 - 90 * s : (s < 2.5 ? 85 : 175)}, t);
  });
  EXPECT_EQ(blink.reps.size(), 1u);
}

TEST(StreamAnalyzer, ShortOrShallowRepsAreRejected) {
  // 0.5 s dips: shorter than min_rep_s.
  EXPECT_TRUE(run(kKneeBends, "knee-bends", 300, squats(0.5, 80, 0)).reps.empty());
  // Through both thresholds but only 45 degrees of motion: below min_rom_deg (50).
  std::string shallow = kKneeBends;
  shallow.replace(shallow.find("turn_below_deg = 110"), 20, "turn_below_deg = 130");
  EXPECT_TRUE(run(shallow, "knee-bends", 300, squats(2.0, 130, 0)).reps.empty());
  EXPECT_EQ(run(shallow, "knee-bends", 300, squats(2.0, 100, 0)).reps.size(), 5u);
}

TEST(StreamAnalyzer, TempoSplitsLoweringAndLifting) {
  // 1.5 s down, 0.5 s up, 1 s standing.
  const auto result = run(kKneeBends, "knee-bends", 300, [](int64_t t) {
    const double s = std::fmod(seconds(t), 3.0);
    const double knee = s < 1.5 ? 175 - 90 * s / 1.5 : (s < 2.0 ? 85 + 90 * (s - 1.5) / 0.5 : 175);
    return std::optional(make_track({.knee_deg = knee}, t));
  });
  ASSERT_EQ(result.reps.size(), 3u);
  for (const auto& rep : result.reps) {
    EXPECT_GT(rep.eccentric_us, 2 * rep.concentric_us);
    // From the last moment in the start zone (150 is reached 25 of the 90 degrees down) to the bottom.
    EXPECT_NEAR(seconds(rep.eccentric_us), 1.5 * 65 / 90, 0.1);
  }
  EXPECT_GT(result.summary[0].mean_eccentric_s, 2 * result.summary[0].mean_concentric_s);
}

TEST(StreamAnalyzer, FormRuleFiresOncePerRep) {
  // Shallow (100 > 95) and leaning (50 > 40) every rep: each rule fires once per rep, not once per frame.
  const auto result = run(kKneeBends, "knee-bends", 375, [](int64_t t) {
    const double phase = std::fmod(seconds(t), 2.5) / 2.5;
    const double depth = (1 - std::cos(2 * kPi * phase)) / 2;
    return std::optional(make_track({.knee_deg = 175 - 75 * depth, .trunk_lean_deg = 55 * depth}, t));
  });
  ASSERT_EQ(result.reps.size(), 5u);
  int depth = 0, lean = 0;
  for (const auto& form : result.forms) {
    (form.rule == "depth" ? depth : lean)++;
    EXPECT_GE(form.rep_index, 1);
  }
  EXPECT_EQ(depth, 5);
  EXPECT_EQ(lean, 5);
  for (const auto& rep : result.reps) {
    EXPECT_EQ(rep.form_issues, (std::vector<std::string>{"depth", "lean"})) << rep.rep_index;
  }
  EXPECT_EQ(result.summary[0].form_issue_counts.at("depth"), 5);
  EXPECT_EQ(result.summary[0].form_issue_counts.at("lean"), 5);
}

TEST(StreamAnalyzer, InjectedBadRepIsAnomalous) {
  // Eight 2 s reps; the sixth dips twice (down, half up, down again) instead of once.
  auto random = std::make_shared<std::mt19937>(5);
  const auto result = run(kKneeBends, "knee-bends", 500, [&](int64_t t) {
    std::normal_distribution<double> noise(0, 1.5);
    const double s = seconds(t);
    const int rep = static_cast<int>(s / 2.0);
    const double phase = std::fmod(s, 2.0) / 2.0;
    double depth = (1 - std::cos(2 * kPi * phase)) / 2;
    if (rep == 5)
      depth = std::abs(std::sin(2 * kPi * phase)) * (phase < 0.5 ? 1.0 : 0.9) * std::sin(kPi * phase) +
              0.5 * std::sin(kPi * phase);
    return std::optional(make_track({.knee_deg = 175 - 90 * std::min(depth, 1.0) + noise(*random)}, t));
  });
  ASSERT_EQ(result.reps.size(), 8u);
  for (const auto& rep : result.reps) {
    if (rep.rep_index <= 2) {
      EXPECT_FALSE(rep.anomaly_score.has_value()) << "the first reps are the reference";
      continue;
    }
    ASSERT_TRUE(rep.anomaly_score.has_value());
    EXPECT_EQ(rep.anomalous, rep.rep_index == 6) << rep.rep_index << " score " << *rep.anomaly_score;
    std::cout << "score " << rep.rep_index << " " << *rep.anomaly_score << "\n";
  }
  ASSERT_EQ(result.anomalies.size(), 1u);
  EXPECT_EQ(result.anomalies[0].rep_index, 6);
  EXPECT_EQ(result.summary[0].anomalous_reps, 1);
}

TEST(StreamAnalyzer, AlternatingCurlsCountEachSide) {
  // Left, then right, alternately, 3 each; then both arms together twice (counted once each).
  const auto result = run("", "bicep-curl", 450, [](int64_t t) {
    const double s = seconds(t);
    const auto curl = [](double u) { return u >= 0 && u < 1.5 ? 170 - 130 * std::sin(kPi * u / 1.5) : 170.0; };
    Pose pose;
    if (s < 9) {
      const int rep = static_cast<int>(s / 1.5);
      pose.elbow_deg[rep % 2] = curl(std::fmod(s, 1.5));
    } else {
      pose.elbow_deg[0] = pose.elbow_deg[1] = curl(std::fmod(s - 9, 3.0));
    }
    return std::optional(make_track(pose, t));
  });
  ASSERT_EQ(result.reps.size(), 8u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(result.reps[i].side, i % 2 == 0 ? "left" : "right") << i;
  EXPECT_EQ(result.summary[0].reps, 8);
}

TEST(StreamAnalyzer, PlankHoldTime) {
  // Lying level and straight from 1 s to 9 s, standing before and after.
  const auto result = run("", "plank", 330, [](int64_t t) {
    const double s = seconds(t);
    const bool lying = s >= 1 && s < 9;
    return std::optional(make_track({.knee_deg = 178, .rotation_deg = lying ? 90.0 : 0.0}, t));
  });
  ASSERT_EQ(result.reps.size(), 1u);
  EXPECT_NEAR(seconds(result.reps[0].end_us - result.reps[0].start_us), 8.0, 0.1);
  EXPECT_NEAR(seconds(result.summary[0].longest_hold_us), 8.0, 0.1);
  EXPECT_EQ(result.states[0].hold_us, 0);  // standing at the end
}

TEST(StreamAnalyzer, StateShowsAnglesPhaseAndVelocity) {
  const auto result = run(kKneeBends, "knee-bends", 20,
                          [](int64_t t) { return std::optional(make_track({.knee_deg = 175 - 100 * seconds(t)}, t)); });
  ASSERT_EQ(result.states.size(), 1u);
  const auto& state = result.states[0];
  EXPECT_EQ(state.track_id, 7);
  EXPECT_EQ(state.phase, "eccentric");
  EXPECT_NEAR(state.angles_deg.at("knee"), 175 - 100 * seconds(17 * kFrameUs), 1);  // a median of 5 lags 2 frames
  EXPECT_NEAR(state.angular_velocity_deg_per_s.at("knee"), -100, 15);
  ASSERT_TRUE(state.symmetry_deg.has_value());
  EXPECT_NEAR(*state.symmetry_deg, 0, 1e-6);
}

TEST(StreamAnalyzer, AutoRecognisesSquats) {
  const auto result = run("", "auto", 400, squats(2.2, 80, 2.0));
  ASSERT_EQ(result.summary.size(), 1u);
  EXPECT_EQ(result.summary[0].exercise, "squat");
  EXPECT_GE(result.summary[0].reps, 5);
}

TEST(StreamAnalyzer, UnknownExerciseListsTheLoadedOnes) {
  auto parsed = parse_exercise(kKneeBends, "test.toml");
  ASSERT_TRUE(parsed.ok());
  auto analyzer = StreamAnalyzer::create({.exercise = "burpee", .exercises = {*parsed}});
  ASSERT_FALSE(analyzer.ok());
  EXPECT_NE(analyzer.error().message.find("knee-bends"), std::string::npos);
  EXPECT_FALSE(StreamAnalyzer::create({.exercise = "auto", .exercises = {}}).ok());
}

}  // namespace
}  // namespace pose::analysis
