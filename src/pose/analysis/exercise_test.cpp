#include <gtest/gtest.h>

#include <set>

#include "pose/analysis/analysis.h"
#include "pose/analysis/exercise.h"

namespace pose::analysis {
namespace {

constexpr const char* kMinimal = R"(
name = "knee-bends"
[angles.knee]
joints = ["hip", "knee", "ankle"]
side = "both"
[count]
angle = "knee"
start_above_deg = 150
turn_below_deg = 110
)";

// The error of parsing `text`, which must fail.
std::string error_of(const std::string& text) {
  auto parsed = parse_exercise(text, "test.toml");
  EXPECT_FALSE(parsed.ok()) << "parsed although it should not:\n" << text;
  return parsed.ok() ? "" : parsed.error().message;
}

TEST(ExerciseFile, MinimalParsesWithDefaults) {
  auto parsed = parse_exercise(kMinimal, "test.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const Exercise& exercise = **parsed;
  EXPECT_EQ(exercise_name(exercise), "knee-bends");
  ASSERT_TRUE(exercise.counting.has_value());
  EXPECT_TRUE(exercise.counting->start_high);
  EXPECT_EQ(exercise.counting->start_phase, "up");
  EXPECT_EQ(exercise.counting->turn_phase, "down");
  ASSERT_EQ(exercise.angles.size(), 1u);
  ASSERT_TRUE(exercise.angles[0].sided());
  EXPECT_EQ(exercise.angles[0].variants[0].points[1].first, 13);  // left_knee
  EXPECT_EQ(exercise.angles[0].variants[1].points[1].first, 14);  // right_knee
  EXPECT_EQ(exercise.key_angles, std::vector<std::string>{"knee"});
  const ExerciseInfo info = describe(exercise);
  EXPECT_EQ(info.name, "knee-bends");
  EXPECT_EQ(info.kind, "reps");
  EXPECT_EQ(info.key_angles, std::vector<std::string>{"knee"});
  EXPECT_TRUE(info.rules.empty());
}

TEST(ExerciseFile, MidpointsAndFixedSides) {
  auto parsed = parse_exercise(R"(
name = "x"
[angles.trunk]
segment = ["mid_hip", "mid_shoulder"]
from = "vertical"
[angles.spread]
joints = ["left_ankle", "mid_hip", "right_ankle"]
[angles.left_elbow]
joints = ["shoulder", "elbow", "wrist"]
side = "left"
[count]
angle = "trunk"
start_below_deg = 20
turn_above_deg = 60
)",
                               "test.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto* trunk = (*parsed)->find_angle("trunk");
  ASSERT_NE(trunk, nullptr);
  EXPECT_EQ(trunk->kind, AngleKind::kSegment);
  EXPECT_EQ(trunk->variants[0].points[0].first, 11);
  EXPECT_EQ(trunk->variants[0].points[0].second, 12);
  EXPECT_FALSE((*parsed)->counting->start_high);
  EXPECT_EQ((*parsed)->find_angle("left_elbow")->variants[0].points[0].first, 5);
}

TEST(ExerciseFile, NotToml) {
  const auto error = error_of("name = \"x\"\n[angles\n");
  EXPECT_NE(error.find("test.toml:2"), std::string::npos) << error;
  EXPECT_NE(error.find("not valid TOML"), std::string::npos) << error;
}

TEST(ExerciseFile, MissingKey) {
  std::string text = kMinimal;
  text.erase(text.find("name = "), std::string("name = \"knee-bends\"\n").size());
  const auto error = error_of(text);
  EXPECT_NE(error.find("test.toml: name: missing"), std::string::npos) << error;

  const auto no_angle = error_of(
      "name = \"x\"\n[angles.a]\njoints = [\"nose\", \"left_hip\", \"left_knee\"]\n"
      "[count]\nstart_above_deg = 150\nturn_below_deg = 100\n");
  EXPECT_NE(no_angle.find("count.angle: missing"), std::string::npos) << no_angle;
}

TEST(ExerciseFile, WrongType) {
  std::string text = kMinimal;
  text.replace(text.find("150"), 3, "\"150\"");
  const auto error = error_of(text);
  EXPECT_NE(error.find("count.start_above_deg: must be a number, not a string"), std::string::npos) << error;

  std::string joints = kMinimal;
  joints.replace(joints.find("[\"hip\", \"knee\", \"ankle\"]"), 24, "\"knee\"");
  const auto joints_error = error_of(joints);
  EXPECT_NE(joints_error.find("angles.knee.joints: must be an array of strings"), std::string::npos) << joints_error;
}

TEST(ExerciseFile, UnknownJointAndKey) {
  std::string text = kMinimal;
  text.replace(text.find("\"ankle\""), 7, "\"ankel\"");
  const auto error = error_of(text);
  EXPECT_NE(error.find("angles.knee.joints: unknown joint \"ankel\""), std::string::npos) << error;

  std::string typo = kMinimal;
  typo.replace(typo.find("turn_below_deg"), 14, "turn_bellow_deg");
  const auto typo_error = error_of(typo);
  EXPECT_NE(typo_error.find("count.turn_bellow_deg: unknown key"), std::string::npos) << typo_error;

  std::string unsided = kMinimal;
  unsided.erase(unsided.find("side = \"both\"\n"), 14);
  const auto unsided_error = error_of(unsided);
  EXPECT_NE(unsided_error.find("needs a side"), std::string::npos) << unsided_error;
}

TEST(ExerciseFile, BadThresholdOrder) {
  std::string text = kMinimal;
  text.replace(text.find("turn_below_deg = 110"), 20, "turn_below_deg = 160");
  const auto error = error_of(text);
  EXPECT_NE(error.find("count.turn_below_deg: is 160 but the start threshold is 150"), std::string::npos) << error;

  std::string wrong_way = kMinimal;
  wrong_way.replace(wrong_way.find("turn_below_deg"), 14, "turn_above_deg");
  EXPECT_NE(error_of(wrong_way).find("the turn goes the other way"), std::string::npos);

  std::string band = kMinimal;
  band +=
      "[[rules]]\nid = \"a\"\nmessage = \"m\"\nphase = \"down\"\nangle = \"knee\"\nabove_deg = 90\nbelow_deg = 80\n";
  EXPECT_NE(error_of(band).find("rules[0]: above_deg must be less than below_deg"), std::string::npos);

  std::string out_of_range = kMinimal;
  out_of_range.replace(out_of_range.find("150"), 3, "250");
  EXPECT_NE(error_of(out_of_range).find("is 250, must be within 0 .. 180"), std::string::npos);
}

TEST(ExerciseFile, RuleErrors) {
  const std::string rule = "[[rules]]\nid = \"a\"\nmessage = \"m\"\nangle = \"knee\"\nabove_deg = 90\n";
  EXPECT_NE(error_of(std::string(kMinimal) + rule + "phase = \"bottom\"\n").find("rules[0].phase: is \"bottom\""),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + rule + "phase = \"down\"\nangle2 = 1\n").find("rules[0].angle2"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + rule + "phase = \"down\"\n" + rule + "phase = \"up\"\n")
                .find("\"a\" is used twice"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + rule + "phase = \"down\"\nseverity = \"fatal\"\n")
                .find("rules[0].severity: is \"fatal\""),
            std::string::npos);
}

TEST(ExerciseFile, CountOrHold) {
  std::string both = kMinimal;
  both += "[hold]\n[[hold.require]]\nangle = \"knee\"\nabove_deg = 170\n";
  EXPECT_NE(error_of(both).find("exactly one of [count]"), std::string::npos);
  EXPECT_NE(error_of("name = \"x\"\n[angles.a]\njoints = [\"left_hip\", \"left_knee\", \"left_ankle\"]\n[hold]\n")
                .find("hold.require: missing"),
            std::string::npos);
}

TEST(ExerciseFiles, EveryShippedFileLoads) {
  auto exercises = load_exercises(default_exercise_dir());
  ASSERT_TRUE(exercises.ok()) << exercises.error().message;
  std::set<std::string> names;
  for (const auto& exercise : *exercises) names.insert(exercise_name(*exercise));
  for (const char* required :
       {"squat", "push-up", "lunge", "bicep-curl", "jumping-jack", "shoulder-press", "sit-up", "plank"}) {
    EXPECT_TRUE(names.contains(required)) << required;
  }
  for (const auto& exercise : *exercises) {
    EXPECT_FALSE(exercise->description.empty()) << exercise->name;
    EXPECT_FALSE(exercise->views.empty()) << exercise->name;
    EXPECT_TRUE(exercise->counting || exercise->hold) << exercise->name;
  }
  auto plank = std::find_if(exercises->begin(), exercises->end(), [](const auto& e) { return e->name == "plank"; });
  ASSERT_NE(plank, exercises->end());
  EXPECT_TRUE((*plank)->hold.has_value());
}

TEST(ExerciseFiles, MissingFolderFails) {
  auto exercises = load_exercises("/nonexistent/exercises");
  ASSERT_FALSE(exercises.ok());
  EXPECT_NE(exercises.error().message.find("/nonexistent/exercises"), std::string::npos);
}

}  // namespace
}  // namespace pose::analysis
