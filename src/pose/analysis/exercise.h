#pragma once
// The parsed form of an exercise file (docs/exercises.md describes every key). Module-private: callers name
// exercises and pass the loaded list around through analysis.h; only this module reads the fields.

#include <optional>
#include <string>
#include <vector>

#include "pose/analysis/analysis.h"
#include "pose/analysis/biomechanics.h"

namespace pose::analysis {

enum class Combine { kVisible, kMean, kMin, kMax };  // how the left and right value of a `side = "both"` angle merge
enum class AngleKind { kJoint, kSegment };

// A point of the skeleton: one COCO keypoint, or the midpoint of two (mid_hip) when first != second.
struct PointRef {
  int first = 0, second = 0;
};

// One side's way of measuring an angle: three points (joint angle at the middle one) or two (segment from, to).
struct AngleVariant {
  std::string side;  // "left", "right", or "" for an unsided angle
  std::vector<PointRef> points;
};

struct AngleDef {
  std::string name;
  AngleKind kind = AngleKind::kJoint;
  Axis axis = Axis::kVertical;  // segment angles only
  Combine combine = Combine::kVisible;
  // Joint angles: also estimate the angle from how far apart the limb's ends are, against the farthest they have
  // been lately (2 asin(d / d_max), as if both segments were as long), and keep the smaller of that and the 2D
  // angle. A limb bending toward the camera (a squat or push-up filmed from the front) looks straight in 2D, but
  // its ends still come together. Not used when the track has depth (BlazePose): then the angle is 3D.
  bool foreshortening = false;
  // Values outside (valid_above_deg, valid_below_deg) cannot be this angle in a view the exercise supports (a push-up's
  // body line of 5 degrees is a front view foreshortening the legs): they count as not measured, so no rule or
  // counter acts on them.
  std::optional<double> valid_above_deg, valid_below_deg;
  std::vector<AngleVariant> variants;  // one, or left and right (side = "both")
  bool sided() const { return variants.size() == 2; }
};

// True when the value is above above_deg (if given) and below below_deg (if given); both given: inside the band.
struct Condition {
  std::string angle;
  std::optional<double> above_deg, below_deg;
  bool holds(double value_deg) const {
    return (!above_deg || value_deg > *above_deg) && (!below_deg || value_deg < *below_deg);
  }
};

// Reps: the driving angle leaves the start zone, reaches the turn zone and comes back. The zones are the two
// thresholds; between them nothing changes (hysteresis).
struct Counting {
  std::string angle;
  std::string start_phase = "up", turn_phase = "down";
  bool start_high = true;  // the start zone is above start_deg and the turn zone below turn_deg; else mirrored
  double start_deg = 0, turn_deg = 0;
  double min_rep_s = 0.5, max_rep_s = 15, min_rom_deg = 0;
  bool eccentric_first = true;  // the first half of a rep lowers (squat); false: it lifts first (curl, press)
  bool per_side = false;        // each side of the driving angle counts its own reps (alternating curls)
  std::string side_from;        // sided angle whose smaller side at the turn names the rep's side (lunge)
  double max_gap_s = 1.0;       // the driving angle unseen this long drops the partial rep
};

struct Hold {
  std::vector<Condition> require;  // all must hold (and be visible) for the hold to run
  double min_hold_s = 5;           // shorter holds are not reported
  double grace_s = 0.5;            // a break shorter than this does not end the hold
};

enum class RuleCheck { kValue, kMin, kMax, kAsymmetry };

struct FormRule {
  std::string id, message;
  Severity severity = Severity::kWarning;
  std::string phase;  // a phase name, "eccentric", "concentric", "rep" (any time in a rep) or "hold"
  RuleCheck check = RuleCheck::kValue;
  Condition condition;        // true = the fault
  double min_duration_s = 0;  // value/asymmetry checks: the fault must last this long
};

struct Exercise {
  std::string name, description, origin;
  std::vector<std::string> views;
  std::vector<AngleDef> angles;
  std::vector<std::string> key_angles;  // reported per rep and compared by DTW; the driving angle first
  std::optional<Counting> counting;     // exactly one of counting and hold
  std::optional<Hold> hold;
  std::vector<FormRule> rules;
  std::vector<Condition> recognise;  // auto mode: the median over a rep of each angle must hold
  int median_frames = 5;             // median filter over the angles (odd; 1 = off)

  const AngleDef* find_angle(const std::string& angle_name) const {
    for (const auto& angle : angles) {
      if (angle.name == angle_name) return &angle;
    }
    return nullptr;
  }
};

}  // namespace pose::analysis
