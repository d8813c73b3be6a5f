#pragma once
// What the people in a stream are doing: joint angles (2D, or 3D where the estimator gives depth), angular
// velocity, left/right symmetry, and for the chosen exercise the phase, the rep count, a record per rep (time,
// tempo, range of motion, form issues), form feedback and anomalous reps (DTW distance of the rep's angle
// trajectories to reference reps). Exercises are data: one TOML file each (docs/exercises.md), loaded at start.
// Pure: tracks and time in, per-frame state and events out; no clock, no I/O, no logging.
//
//   auto exercises = pose::analysis::load_exercises(dir);             // every *.toml in dir
//   auto analyzer = pose::analysis::StreamAnalyzer::create({.exercise = "squat", .exercises = *exercises});
//   auto out = (*analyzer)->update(track_update.tracks, track_update.ended_ids, timestamp_us);
//
// Thread-safety: a StreamAnalyzer holds one stream's state; used by one thread at a time. Exercise values are
// immutable once loaded and may be shared.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"
#include "pose/track/tracker.h"

namespace pose::analysis {

enum class Severity { kInfo, kWarning, kError };
const char* to_string(Severity severity);

// One exercise definition, parsed and validated from its TOML file. The fields are the module's own (see
// exercise.h); callers only name exercises and pass the loaded list around.
struct Exercise;

// Parses one definition; errors name the file (origin), the key and what is wrong.
core::Result<std::shared_ptr<const Exercise>> parse_exercise(std::string_view toml_text, const std::string& origin);
// Every *.toml in dir, sorted by name; any invalid file fails the load (a typo must not silently drop an exercise).
core::Result<std::vector<std::shared_ptr<const Exercise>>> load_exercises(const std::filesystem::path& dir);
const std::string& exercise_name(const Exercise& exercise);

// What an API lists about an exercise, without its rules' conditions.
struct ExerciseInfo {
  std::string name, description;
  std::vector<std::string> views;
  std::vector<std::string> key_angles;
  std::string kind;                // "reps" or "hold"
  std::vector<std::string> rules;  // form rule ids
};
ExerciseInfo describe(const Exercise& exercise);
// The folder of the shipped definitions (exercises/ in the workspace).
std::filesystem::path default_exercise_dir();

// A completed repetition (or, for a hold exercise such as the plank, a completed hold).
struct RepEvent {
  int64_t track_id = 0;
  std::string exercise;
  int rep_index = 0;  // 1-based, per person and exercise
  int64_t start_us = 0, end_us = 0;
  int64_t eccentric_us = 0, concentric_us = 0;  // tempo: lowering and lifting time (0 for holds)
  std::string side;                             // "left", "right" or "" (both/none), for alternating exercises
  struct AngleRange {
    double min_deg = 0, max_deg = 0, range_of_motion_deg = 0;
  };
  std::map<std::string, AngleRange> angles;  // key angles of the exercise over the rep
  std::vector<std::string> form_issues;      // ids of the form rules that fired during the rep
  std::optional<double> anomaly_score;       // DTW distance to the reference reps, normalised; none until a reference
  bool anomalous = false;
};

// A form rule fired (once per rule per rep phase, not every frame).
struct FormEvent {
  int64_t track_id = 0;
  std::string exercise;
  int64_t timestamp_us = 0;
  std::string rule;  // rule id from the exercise file
  std::string message;
  Severity severity = Severity::kWarning;
  int rep_index = 0;  // the rep in progress (1-based)
};

// A rep whose trajectories are far from the reference reps.
struct AnomalyEvent {
  int64_t track_id = 0;
  std::string exercise;
  int rep_index = 0;
  int64_t timestamp_us = 0;
  double score = 0;      // normalised DTW distance
  double threshold = 0;  // score above this is flagged
};

using Event = std::variant<RepEvent, FormEvent, AnomalyEvent>;

// Per person, per frame: what a live view shows.
struct PersonState {
  int64_t track_id = 0;
  std::string exercise;                      // the exercise being counted ("" while auto has not decided)
  std::map<std::string, double> angles_deg;  // every angle the exercise names that is visible in this frame
  std::map<std::string, double> angular_velocity_deg_per_s;
  std::optional<double> symmetry_deg;  // |left - right| of the exercise's paired angles, when both are visible
  std::string phase;                   // phase name from the exercise file ("up", "down", ...)
  int reps = 0;
  int64_t hold_us = 0;                     // hold exercises: current hold time
  std::vector<std::string> active_issues;  // form rules currently firing
};

struct PersonSummary {
  int64_t track_id = 0;
  std::string exercise;
  int reps = 0;
  int64_t longest_hold_us = 0;
  int64_t first_seen_us = 0, last_seen_us = 0;
  double mean_rep_duration_s = 0, mean_eccentric_s = 0, mean_concentric_s = 0;
  double mean_range_of_motion_deg = 0;
  std::map<std::string, int> form_issue_counts;
  int anomalous_reps = 0;
};

struct AnalyzerOptions {
  std::string exercise = "auto";  // a loaded exercise's name, or "auto": recognised from the motion
  std::vector<std::shared_ptr<const Exercise>> exercises;
  int warmup_reps = 2;              // the first good reps of a set become the DTW reference
  double anomaly_threshold = 0.35;  // normalised DTW distance above which a rep is flagged
  bool use_depth = true;            // joint angles in 3D where the track has depth (BlazePose); else image-plane 2D
};

struct AnalyzerOutput {
  std::vector<PersonState> people;  // one per track of this frame, in the order given
  std::vector<Event> events;        // completed reps, form issues, anomalies, in time order
};

class StreamAnalyzer {
 public:
  // Fails when the exercise is unknown (listing the loaded ones) or none are loaded.
  static core::Result<std::unique_ptr<StreamAnalyzer>> create(const AnalyzerOptions& options);
  virtual ~StreamAnalyzer() = default;
  virtual AnalyzerOutput update(std::span<const track::Track> tracks, std::span<const int64_t> ended_ids,
                                int64_t timestamp_us) = 0;
  // Everyone seen so far (ended tracks included), ordered by track id.
  virtual std::vector<PersonSummary> summary() const = 0;
};

}  // namespace pose::analysis
