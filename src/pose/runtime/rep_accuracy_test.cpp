// Rep counts on every labelled clip of ../shared/testdata/videos, all clips analysed at once as concurrent streams.
// Exact on the clean clips; the hard ones (occlusion, camera cuts, handheld close-ups) are reported with the error,
// and the overall mean absolute error and off-by-one accuracy are bounded so a regression fails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "core/libtorch/libtorch.h"
#include "pose/runtime/runtime.h"

namespace pose::runtime {
namespace {

const std::filesystem::path kVideos = std::filesystem::path(WB_SHARED_DIR) / "testdata" / "videos";

struct Label {
  std::string file;
  std::string exercise;  // our exercise name
  int reps = 0;
  bool clean = false;  // exact count expected
};

// labels.csv names exercises in words; ours are file names in exercises/.
std::string exercise_for(const std::string& label) {
  if (label.find("squat") != std::string::npos) return "squat";
  if (label.find("push") != std::string::npos) return "push-up";
  if (label.find("lunge") != std::string::npos) return "lunge";
  if (label.find("jumping") != std::string::npos) return "jumping-jack";
  if (label.find("curl") != std::string::npos) return "bicep-curl";
  return "";
}

// A minimal CSV reader for labels.csv (quoted fields with commas).
std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (char c : line) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted)
        fields.emplace_back();
      else
        fields.back() += c;
    }
    rows.push_back(std::move(fields));
  }
  return rows;
}

TEST(RepAccuracy, LabelledClips) {
  const auto rows = read_csv(kVideos / "labels.csv");
  ASSERT_GT(rows.size(), 8u);
  // Clean: static camera, the whole body, every counted rep complete. Not clean: what testdata/README.md calls
  // hard (front-view push-ups, occlusion, camera cuts, handheld close-ups), and squat_18, whose dataset label counts
  // rep starts: its second squat is cut off 13 frames into the descent, and we count completed reps.
  const std::vector<std::string> clean = {"squat_side_3reps.mp4", "squat_17.mp4",        "push-up_26.mp4",
                                          "lunges_1080p.mp4",     "lunges_portrait.mp4", "jumping_jacks_portrait.mp4"};
  std::vector<Label> labels;
  for (size_t i = 1; i < rows.size(); ++i) {
    Label label{rows[i][0], exercise_for(rows[i][1]), std::stoi(rows[i][2]), false};
    label.clean = std::find(clean.begin(), clean.end(), label.file) != clean.end();
    ASSERT_FALSE(label.exercise.empty()) << rows[i][1];
    labels.push_back(label);
  }

  core::libtorch::set_threads(0);
  PipelineOptions options;
  options.estimator.model = "movenet-lightning";
  options.estimator.track = false;
  auto exercises = analysis::load_exercises(analysis::default_exercise_dir());
  ASSERT_TRUE(exercises.ok()) << exercises.error().message;
  options.exercises = *exercises;
  auto pipeline = Pipeline::create(options);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  for (const auto& label : labels) {
    StreamSpec spec;
    spec.id = label.file;
    spec.source.uri = (kVideos / label.file).string();
    spec.source.max_side_px = 640;
    spec.exercise = label.exercise;
    ASSERT_TRUE((*pipeline)->add_stream(spec).ok());
  }
  (*pipeline)->wait();

  // A clip's count is its most active person's: bystanders and brief false detections count separately.
  std::map<std::string, int> counted;
  for (const auto& [id, people] : (*pipeline)->summaries()) {
    for (const auto& person : people) counted[id] = std::max(counted[id], person.reps);
  }
  double absolute_error = 0;
  int within_one = 0;
  std::map<std::string, std::pair<double, int>> per_exercise;  // summed error, clips
  std::ostringstream table;
  table << "clip                          exercise       truth  counted\n";
  for (const auto& label : labels) {
    const int error = std::abs(counted[label.file] - label.reps);
    absolute_error += error;
    within_one += error <= 1 ? 1 : 0;
    per_exercise[label.exercise].first += error;
    per_exercise[label.exercise].second += 1;
    char line[160];
    std::snprintf(line, sizeof(line), "%-29s %-14s %5d  %7d%s\n", label.file.c_str(), label.exercise.c_str(),
                  label.reps, counted[label.file], label.clean ? "" : "  (hard)");
    table << line;
    if (label.clean) {
      EXPECT_EQ(counted[label.file], label.reps) << label.file;
    }
  }
  const double mae = absolute_error / static_cast<double>(labels.size());
  const double off_by_one = static_cast<double>(within_one) / static_cast<double>(labels.size());
  table << "mean absolute error " << mae << " reps, off-by-one accuracy " << off_by_one << "\n";
  for (const auto& [exercise, sums] : per_exercise) {
    table << "  " << exercise << ": MAE " << sums.first / sums.second << " over " << sums.second << " clips\n";
  }
  std::printf("%s", table.str().c_str());
  EXPECT_LE(mae, 1.0);
  EXPECT_GE(off_by_one, 0.8);
}

}  // namespace
}  // namespace pose::runtime
