// StreamAnalyzer: per track, angles measured and smoothed, a rep state machine (or a hold timer) per exercise,
// form rules once per rep, and DTW of each rep against the set's first good reps.
#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numbers>
#include <numeric>

#include "pose/analysis/analysis.h"
#include "pose/analysis/biomechanics.h"
#include "pose/analysis/exercise.h"

namespace pose::analysis {
namespace {

constexpr int kTrajectoryPoints = 32;  // each rep's key angles are resampled to this many points for DTW
constexpr int kDtwBand = 5;            // Sakoe-Chiba band: about a sixth of a rep's length either way
// DTW step costs are in quarters of the references' range of motion: a score of 0.35 (the default threshold) is a
// rep off by about 9% of its range throughout, after the best time alignment.
constexpr double kDtwScaleOfRange = 0.25;
constexpr double kMinDtwScaleDeg = 5;        // an angle that hardly moves still scales like 20 degrees of range
constexpr int64_t kMedianResetUs = 300'000;  // a gap this long starts the median filter afresh (no stale values)
constexpr int64_t kVelocityMaxGapUs = 500'000;
// Foreshortening correction: the reference span of a limb is taken over this much recent time (long enough to
// include a straight limb between reps), once this many samples are in.
constexpr int64_t kSpanWindowUs = 10'000'000;
constexpr size_t kSpanMinSamples = 10;
// A person seen in the stream's first half second outside the start zone is mid-rep: the recording cut into the
// set, and what is left of that rep counts once it completes. Someone who appears later mid-rep (walking in, a
// fade-in, an occlusion ending) is not trusted: their reps count from a seen start only.
constexpr int64_t kStreamStartUs = 500'000;
constexpr int kAutoDecideReps = 2;     // auto: an exercise wins once this many of its reps are recognised
constexpr double kOverlapMerge = 0.5;  // per-side reps overlapping this much of the shorter one are one rep

double seconds(int64_t us) { return static_cast<double>(us) * 1e-6; }
int64_t microseconds(double s) { return static_cast<int64_t>(std::llround(s * 1e6)); }

// The value of every angle in one frame: per side (left, right) and combined; none where not visible.
struct AngleValues {
  std::optional<double> combined;
  std::array<std::optional<double>, 2> sides;  // left, right (sided angles only)
  const std::optional<double>& view(int side) const { return side < 0 ? combined : sides[static_cast<size_t>(side)]; }
};
using FrameAngles = std::vector<AngleValues>;  // indexed like Exercise::angles

// Measures an exercise's angles from a track: visibility gating, then a short median per variant.
class AngleMeter {
 public:
  AngleMeter(const Exercise& exercise, bool use_depth) : exercise_(exercise), use_depth_(use_depth) {
    for (const auto& angle : exercise.angles) {
      filters_.emplace_back(angle.variants.size());
      spans_.emplace_back(angle.variants.size());
    }
  }

  FrameAngles measure(const track::Track& track, int64_t timestamp_us) {
    FrameAngles out(exercise_.angles.size());
    for (size_t a = 0; a < exercise_.angles.size(); ++a) {
      const AngleDef& angle = exercise_.angles[a];
      std::array<std::optional<double>, 2> values;
      std::array<double, 2> scores{};
      for (size_t v = 0; v < angle.variants.size(); ++v) {
        const auto raw = measure_variant(angle, angle.variants[v], track, timestamp_us, spans_[a][v], scores[v]);
        const bool valid = raw && (!angle.valid_above_deg || *raw > *angle.valid_above_deg) &&
                           (!angle.valid_below_deg || *raw < *angle.valid_below_deg);
        if (valid) values[v] = smooth(filters_[a][v], *raw, timestamp_us);
      }
      if (!angle.sided()) {
        out[a].combined = values[0];
        continue;
      }
      out[a].sides = values;
      out[a].combined = combine(angle.combine, values, scores);
    }
    return out;
  }

 private:
  struct Median {
    std::deque<double> values;
    int64_t last_us = 0;
  };
  // How far apart a limb's ends have been lately (foreshortening correction).
  struct Span {
    std::deque<std::pair<int64_t, double>> samples;  // timestamp, distance in pixels
  };

  std::optional<double> measure_variant(const AngleDef& angle, const AngleVariant& variant, const track::Track& track,
                                        int64_t timestamp_us, Span& span, double& score) const {
    std::array<Point3, 3> points{};
    score = 1;
    for (size_t p = 0; p < variant.points.size(); ++p) {
      const auto& first = track.keypoints[static_cast<size_t>(variant.points[p].first)];
      const auto& second = track.keypoints[static_cast<size_t>(variant.points[p].second)];
      if (!first.visible || !second.visible) return std::nullopt;  // nothing is measured from unseen keypoints
      score = std::min({score, static_cast<double>(first.score), static_cast<double>(second.score)});
      const bool depth = use_depth_ && track.has_depth;
      points[p] = {(first.x + second.x) / 2.0, (first.y + second.y) / 2.0, depth ? (first.z + second.z) / 2.0 : 0.0};
    }
    if (angle.kind == AngleKind::kSegment) return segment_angle_deg(points[0], points[1], angle.axis);
    const auto planar = joint_angle_deg(points[0], points[1], points[2]);
    if (!planar || !angle.foreshortening || (use_depth_ && track.has_depth)) return planar;
    const auto chord =
        chord_angle_deg(span, std::hypot(points[0].x - points[2].x, points[0].y - points[2].y), timestamp_us);
    return chord ? std::min(*planar, *chord) : planar;
  }

  // 2 asin(d / d_ref), d_ref the 95th percentile of the distance over the last kSpanWindowUs: the angle of a limb
  // whose two segments are equally long, whatever its orientation to the camera. None until enough has been seen.
  static std::optional<double> chord_angle_deg(Span& span, double distance_px, int64_t timestamp_us) {
    span.samples.emplace_back(timestamp_us, distance_px);
    while (!span.samples.empty() && span.samples.front().first < timestamp_us - kSpanWindowUs) {
      span.samples.pop_front();
    }
    if (span.samples.size() < kSpanMinSamples) return std::nullopt;
    std::vector<double> distances;
    distances.reserve(span.samples.size());
    for (const auto& sample : span.samples) distances.push_back(sample.second);
    const auto rank = static_cast<std::ptrdiff_t>(0.95 * static_cast<double>(distances.size() - 1));
    std::nth_element(distances.begin(), distances.begin() + rank, distances.end());
    const double reference = distances[static_cast<size_t>(rank)];
    if (reference <= 0) return std::nullopt;
    return 2.0 * std::asin(std::min(1.0, distance_px / reference)) * 180.0 / std::numbers::pi;
  }

  double smooth(Median& median_filter, double value, int64_t timestamp_us) const {
    if (timestamp_us - median_filter.last_us > kMedianResetUs) median_filter.values.clear();
    median_filter.last_us = timestamp_us;
    median_filter.values.push_back(value);
    while (median_filter.values.size() > static_cast<size_t>(exercise_.median_frames)) {
      median_filter.values.pop_front();
    }
    return median({median_filter.values.begin(), median_filter.values.end()});
  }

  static std::optional<double> combine(Combine how, const std::array<std::optional<double>, 2>& values,
                                       const std::array<double, 2>& scores) {
    if (!values[0] || !values[1]) return values[0] ? values[0] : values[1];
    switch (how) {
      case Combine::kVisible: return scores[0] >= scores[1] ? values[0] : values[1];
      case Combine::kMean: return (*values[0] + *values[1]) / 2;
      case Combine::kMin: return std::min(*values[0], *values[1]);
      case Combine::kMax: return std::max(*values[0], *values[1]);
    }
    return values[0];
  }

  const Exercise& exercise_;
  bool use_depth_;
  std::vector<std::vector<Median>> filters_;
  std::vector<std::vector<Span>> spans_;
};

// Where each form rule stands within the current rep.
struct RuleState {
  bool fired = false;                  // once per rule per rep
  std::optional<int64_t> fault_since;  // value/asymmetry checks: when the fault began
  std::optional<double> extreme_deg;   // min/max checks: over the current stretch of the rule's phase
  bool active = false;
};

// Sink shared by the counters and the hold timer of one person and exercise.
struct Emitter {
  int64_t track_id;
  const Exercise* exercise;
  std::vector<Event>* events;
  int rep_in_progress;
};

// Form rules of one exercise over one view (combined, or one side for per-side counting).
class RuleChecker {
 public:
  explicit RuleChecker(const Exercise& exercise) : exercise_(exercise), states_(exercise.rules.size()) {}

  // Called every frame with the phases the person is in ("up", "eccentric", "rep", ...).
  void update(const FrameAngles& angles, int side, std::span<const std::string> phases, int64_t timestamp_us,
              Emitter& emitter) {
    for (size_t r = 0; r < exercise_.rules.size(); ++r) {
      const FormRule& rule = exercise_.rules[r];
      RuleState& state = states_[r];
      const bool in_phase = std::find(phases.begin(), phases.end(), rule.phase) != phases.end();
      const size_t angle_index = index_of(rule.condition.angle);
      const AngleValues& values = angles[angle_index];
      std::optional<double> value = values.view(exercise_.angles[angle_index].sided() ? side : -1);
      if (rule.check == RuleCheck::kAsymmetry) {
        value = values.sides[0] && values.sides[1] ? std::optional(symmetry_deg(*values.sides[0], *values.sides[1]))
                                                   : std::nullopt;
      }
      state.active = false;
      if (rule.check == RuleCheck::kMin || rule.check == RuleCheck::kMax) {
        // Judged when the rep completes (finish_rep): an angle hovering at a phase's threshold enters and leaves
        // the phase several times, and judging each stretch would fault a descent that has not reached its bottom.
        if (in_phase && value) {
          state.extreme_deg = !state.extreme_deg              ? *value
                              : rule.check == RuleCheck::kMin ? std::min(*state.extreme_deg, *value)
                                                              : std::max(*state.extreme_deg, *value);
        }
        continue;
      }
      if (!in_phase || !value || !rule.condition.holds(*value)) {
        state.fault_since.reset();
        continue;
      }
      if (!state.fault_since) state.fault_since = timestamp_us;
      if (timestamp_us - *state.fault_since >= microseconds(rule.min_duration_s)) {
        state.active = true;
        fire(rule, state, timestamp_us, emitter);
      }
    }
  }

  // The rep (or hold) completed: the min/max rules judge the extreme of their phase over it; then every rule may
  // fire again for the next one. Returns the ids that fired during the rep.
  std::vector<std::string> finish_rep(int64_t timestamp_us, Emitter& emitter) {
    std::vector<std::string> fired;
    for (size_t r = 0; r < states_.size(); ++r) {
      const FormRule& rule = exercise_.rules[r];
      if (states_[r].extreme_deg && rule.condition.holds(*states_[r].extreme_deg)) {
        fire(rule, states_[r], timestamp_us, emitter);
      }
      if (states_[r].fired) fired.push_back(rule.id);
      states_[r] = {};
    }
    return fired;
  }

  // The rep was dropped (the driving angle unseen too long): nothing is judged.
  void discard_rep() { std::fill(states_.begin(), states_.end(), RuleState{}); }

  void active_issues(std::vector<std::string>& out) const {
    for (size_t r = 0; r < states_.size(); ++r) {
      if (states_[r].active) out.push_back(exercise_.rules[r].id);
    }
  }

  size_t index_of(const std::string& angle_name) const {
    for (size_t i = 0; i < exercise_.angles.size(); ++i) {
      if (exercise_.angles[i].name == angle_name) return i;
    }
    return 0;  // unreachable: parse_exercise checks every name
  }

 private:
  static void fire(const FormRule& rule, RuleState& state, int64_t timestamp_us, Emitter& emitter) {
    if (state.fired) return;
    state.fired = true;
    emitter.events->push_back(FormEvent{.track_id = emitter.track_id,
                                        .exercise = emitter.exercise->name,
                                        .timestamp_us = timestamp_us,
                                        .rule = rule.id,
                                        .message = rule.message,
                                        .severity = rule.severity,
                                        .rep_index = emitter.rep_in_progress});
  }

  const Exercise& exercise_;
  std::vector<RuleState> states_;
};

struct RepSample {
  int64_t timestamp_us = 0;
  std::vector<std::optional<double>> key_deg;  // Exercise::key_angles, in this counter's view
  std::array<std::optional<double>, 2> side_from_deg;
  std::vector<std::optional<double>> recognise_deg;
};

// A finished rep before it is counted: the samples from the last moment in the start zone to the first moment back.
struct RepCandidate {
  std::vector<RepSample> samples;
  std::string side;
  std::vector<std::string> issues;
  bool partial = false;  // began before the stream: its duration is unknown
};

// The phase state machine of one driving angle (one side of it for per-side counting), with hysteresis.
class Counter {
 public:
  enum class State { kUnknown, kStart, kAway, kTurn, kBack };

  Counter(const Exercise& exercise, int side, int64_t mid_rep_until_us)
      : exercise_(exercise),
        counting_(*exercise.counting),
        side_(side),
        rules_(exercise),
        mid_rep_until_us_(mid_rep_until_us) {
    driving_ = rules_.index_of(counting_.angle);
    for (const auto& key : exercise.key_angles) key_indices_.push_back(rules_.index_of(key));
    for (const auto& condition : exercise.recognise) recognise_indices_.push_back(rules_.index_of(condition.angle));
    if (!counting_.side_from.empty()) side_from_ = rules_.index_of(counting_.side_from);
  }

  int side() const { return side_; }
  State state() const { return state_; }
  std::string phase() const {
    switch (state_) {
      case State::kUnknown: return "";
      case State::kStart: return counting_.start_phase;
      case State::kTurn: return counting_.turn_phase;
      case State::kAway: return counting_.eccentric_first ? "eccentric" : "concentric";
      case State::kBack: return counting_.eccentric_first ? "concentric" : "eccentric";
    }
    return "";
  }
  const RuleChecker& rules() const { return rules_; }

  // Returns a finished rep when this frame completes one.
  std::optional<RepCandidate> update(const FrameAngles& angles, int64_t timestamp_us, Emitter& emitter) {
    std::optional<RepCandidate> finished;
    const std::optional<double> driving = view(angles, driving_);
    if (driving) {
      if (last_seen_us_ && timestamp_us - *last_seen_us_ > microseconds(counting_.max_gap_s)) drop();
      last_seen_us_ = timestamp_us;
      finished = step(*driving, sample(angles, timestamp_us));
    }
    std::vector<std::string> phases = {phase()};
    if (state_ != State::kStart && state_ != State::kUnknown) phases.emplace_back("rep");
    rules_.update(angles, side_, phases, timestamp_us, emitter);
    if (finished) finished->issues = rules_.finish_rep(timestamp_us, emitter);
    return finished;
  }

 private:
  std::optional<double> view(const FrameAngles& angles, size_t index) const {
    return angles[index].view(exercise_.angles[index].sided() ? side_ : -1);
  }

  RepSample sample(const FrameAngles& angles, int64_t timestamp_us) const {
    RepSample out{.timestamp_us = timestamp_us, .key_deg = {}, .side_from_deg = {}, .recognise_deg = {}};
    for (size_t index : key_indices_) out.key_deg.push_back(view(angles, index));
    for (size_t index : recognise_indices_) out.recognise_deg.push_back(view(angles, index));
    if (side_from_) out.side_from_deg = angles[*side_from_].sides;
    return out;
  }

  bool in_start(double deg) const {
    return counting_.start_high ? deg >= counting_.start_deg : deg <= counting_.start_deg;
  }
  bool in_turn(double deg) const {
    return counting_.start_high ? deg <= counting_.turn_deg : deg >= counting_.turn_deg;
  }

  std::optional<RepCandidate> step(double driving_deg, RepSample sample) {
    const int64_t now_us = sample.timestamp_us;
    if (in_start(driving_deg)) {
      std::optional<RepCandidate> finished;
      if (state_ == State::kTurn || state_ == State::kBack) {
        samples_.push_back(sample);
        finished = RepCandidate{.samples = std::move(samples_), .side = "", .issues = {}, .partial = partial_};
      }
      // Still at the start: the rep begins at the last moment here.
      state_ = State::kStart;
      partial_ = false;
      samples_ = {std::move(sample)};
      return finished;
    }
    if (state_ == State::kUnknown) {
      if (now_us > mid_rep_until_us_) return std::nullopt;  // a rep is only counted from a seen start
      // A rep the stream began in must still show half the hysteresis band: a value wobbling at the start
      // threshold in the first frames is not a rep.
      const double band_deg = std::abs(counting_.start_deg - counting_.turn_deg);
      if (std::abs(counting_.start_deg - driving_deg) < band_deg / 2) return std::nullopt;
      state_ = in_turn(driving_deg) ? State::kTurn : State::kBack;
      partial_ = true;
      samples_ = {std::move(sample)};
      return std::nullopt;
    }
    samples_.push_back(std::move(sample));
    if (now_us - samples_.front().timestamp_us > microseconds(counting_.max_rep_s)) {
      drop();  // stuck mid-rep: not a rep; wait for the start again
      return std::nullopt;
    }
    if (in_turn(driving_deg)) {
      state_ = State::kTurn;
    } else if (state_ == State::kStart) {
      state_ = State::kAway;
    } else if (state_ == State::kTurn) {
      state_ = State::kBack;
    }
    return std::nullopt;
  }

  void drop() {
    mid_rep_until_us_ = std::numeric_limits<int64_t>::min();
    state_ = State::kUnknown;
    samples_.clear();
    rules_.discard_rep();
  }

  const Exercise& exercise_;
  const Counting& counting_;
  int side_;
  RuleChecker rules_;
  size_t driving_ = 0;
  std::vector<size_t> key_indices_, recognise_indices_;
  std::optional<size_t> side_from_;
  State state_ = State::kUnknown;
  std::vector<RepSample> samples_;
  std::optional<int64_t> last_seen_us_;
  int64_t mid_rep_until_us_;
  bool partial_ = false;  // the rep in progress began before the stream
};

// Time-normalised key-angle trajectories of one rep, for DTW.
struct Trajectory {
  std::vector<std::optional<std::vector<double>>> channels;  // per key angle; none where too little was seen
  std::vector<double> range_deg;
};

Trajectory make_trajectory(const std::vector<RepSample>& samples, size_t key_count) {
  Trajectory out;
  for (size_t k = 0; k < key_count; ++k) {
    std::vector<int64_t> times;
    std::vector<double> values;
    for (const auto& sample : samples) {
      if (!sample.key_deg[k]) continue;
      times.push_back(sample.timestamp_us);
      values.push_back(*sample.key_deg[k]);
    }
    if (values.size() < 3) {
      out.channels.emplace_back();
      out.range_deg.push_back(0);
      continue;
    }
    out.channels.emplace_back(resample(times, values, kTrajectoryPoints));
    const auto [low, high] = std::minmax_element(values.begin(), values.end());
    out.range_deg.push_back(*high - *low);
  }
  return out;
}

// One person doing one exercise: counters or a hold timer, rep records, anomaly references, the summary.
class ExerciseTracker {
 public:
  // mid_rep_until_us: until when a first sample outside the start zone is taken as a rep in progress.
  ExerciseTracker(const Exercise& exercise, const AnalyzerOptions& options, int64_t track_id, int64_t mid_rep_until_us)
      : exercise_(exercise),
        options_(options),
        track_id_(track_id),
        meter_(exercise, options.use_depth),
        hold_rules_(exercise) {
    if (exercise.counting) {
      if (exercise.counting->per_side) {
        counters_.emplace_back(exercise, 0, mid_rep_until_us);
        counters_.emplace_back(exercise, 1, mid_rep_until_us);
      } else {
        counters_.emplace_back(exercise, -1, mid_rep_until_us);
      }
    }
    for (const auto& condition : exercise.recognise)
      recognise_indices_.push_back(hold_rules_.index_of(condition.angle));
  }

  const Exercise& exercise() const { return exercise_; }
  int reps() const { return reps_; }
  int recognised() const { return recognised_; }

  void update(const track::Track& track, int64_t timestamp_us, PersonState& state, std::vector<Event>& events) {
    const FrameAngles angles = meter_.measure(track, timestamp_us);
    Emitter emitter{track_id_, &exercise_, &events, reps_ + 1};
    for (auto& counter : counters_) {
      if (auto rep = counter.update(angles, timestamp_us, emitter)) {
        complete_rep(std::move(*rep), counter.side(), events);
        emitter.rep_in_progress = reps_ + 1;
      }
    }
    if (exercise_.hold) update_hold(angles, timestamp_us, emitter);
    fill_state(angles, timestamp_us, state);
  }

  // The track ended: a hold in progress is reported.
  void finish(std::vector<Event>& events) {
    Emitter emitter{.track_id = track_id_, .exercise = &exercise_, .events = &events, .rep_in_progress = reps_ + 1};
    if (hold_start_us_) end_hold(emitter);
  }

  PersonSummary summary() const {
    PersonSummary out;
    out.exercise = exercise_.name;
    out.reps = reps_;
    out.longest_hold_us = longest_hold_us_;
    const auto mean = [this](double sum) { return reps_ > 0 ? sum / reps_ : 0.0; };
    out.mean_rep_duration_s = mean(sum_duration_s_);
    out.mean_eccentric_s = mean(sum_eccentric_s_);
    out.mean_concentric_s = mean(sum_concentric_s_);
    out.mean_range_of_motion_deg = mean(sum_rom_deg_);
    out.form_issue_counts = issue_counts_;
    out.anomalous_reps = anomalous_;
    return out;
  }

  void count_issues(const std::vector<Event>& events) {
    for (const auto& event : events) {
      if (const auto* form = std::get_if<FormEvent>(&event)) ++issue_counts_[form->rule];
    }
  }

 private:
  void complete_rep(RepCandidate rep, int side, std::vector<Event>& events) {
    const auto& samples = rep.samples;
    const int64_t start_us = samples.front().timestamp_us, end_us = samples.back().timestamp_us;
    const Counting& counting = *exercise_.counting;
    // The turn: the driving angle's extreme.
    size_t turn = 0;
    double low = 1e9, high = -1e9;
    for (size_t i = 0; i < samples.size(); ++i) {
      const double value = *samples[i].key_deg[0];  // the driving angle is seen in every sample of a rep
      if (counting.start_high ? value < low : value > high) turn = i;
      low = std::min(low, value);
      high = std::max(high, value);
    }
    // Noise. A rep the stream began in is judged by its thresholds alone: only its end was seen.
    if (!rep.partial && (seconds(end_us - start_us) < counting.min_rep_s || high - low < counting.min_rom_deg)) return;
    // Per-side counting: the other side moving at the same time makes this one rep of both arms together.
    if (counters_.size() == 2) {
      Interval& own = last_rep_[static_cast<size_t>(side)];
      const Interval& other = last_rep_[static_cast<size_t>(1 - side)];
      own = {start_us, end_us};
      const int64_t overlap = std::min(end_us, other.end_us) - std::max(start_us, other.start_us);
      const int64_t shorter = std::min(end_us - start_us, other.end_us - other.start_us);
      if (overlap > 0 && static_cast<double>(overlap) > kOverlapMerge * static_cast<double>(shorter)) return;
    }
    RepEvent event;
    event.track_id = track_id_;
    event.exercise = exercise_.name;
    event.rep_index = ++reps_;
    event.start_us = start_us;
    event.end_us = end_us;
    const int64_t first_half_us = samples[turn].timestamp_us - start_us,
                  second_half_us = end_us - samples[turn].timestamp_us;
    event.eccentric_us = counting.eccentric_first ? first_half_us : second_half_us;
    event.concentric_us = counting.eccentric_first ? second_half_us : first_half_us;
    if (side >= 0) event.side = side == 0 ? "left" : "right";
    if (const auto& at_turn = samples[turn].side_from_deg; at_turn[0] && at_turn[1]) {
      event.side = *at_turn[0] <= *at_turn[1] ? "left" : "right";
    }
    fill_ranges(samples, event);
    event.form_issues = std::move(rep.issues);
    score_rep(samples, event);

    sum_duration_s_ += seconds(end_us - start_us);
    sum_eccentric_s_ += seconds(event.eccentric_us);
    sum_concentric_s_ += seconds(event.concentric_us);
    sum_rom_deg_ += high - low;
    if (recognised_by(samples)) ++recognised_;
    const bool anomalous = event.anomalous;
    const AnomalyEvent anomaly{.track_id = track_id_,
                               .exercise = exercise_.name,
                               .rep_index = event.rep_index,
                               .timestamp_us = end_us,
                               .score = event.anomaly_score.value_or(0),
                               .threshold = options_.anomaly_threshold};
    events.emplace_back(std::move(event));
    if (anomalous) {
      ++anomalous_;
      events.emplace_back(anomaly);
    }
  }

  void fill_ranges(const std::vector<RepSample>& samples, RepEvent& event) const {
    for (size_t k = 0; k < exercise_.key_angles.size(); ++k) {
      std::optional<RepEvent::AngleRange> range;
      for (const auto& sample : samples) {
        if (!sample.key_deg[k]) continue;
        const double value = *sample.key_deg[k];
        if (!range) range = RepEvent::AngleRange{value, value, 0};
        range->min_deg = std::min(range->min_deg, value);
        range->max_deg = std::max(range->max_deg, value);
      }
      if (!range) continue;
      range->range_of_motion_deg = range->max_deg - range->min_deg;
      event.angles[exercise_.key_angles[k]] = *range;
    }
  }

  // DTW against the references; the set's first good reps (no error-severity issue) become the references. Where
  // each side counts its own reps (alternating curls) a left rep is compared with left reps only; elsewhere the key
  // angles are side-free already (a lunge's front knee) and the side is only a label.
  void score_rep(const std::vector<RepSample>& samples, RepEvent& event) {
    Trajectory trajectory = make_trajectory(samples, exercise_.key_angles.size());
    const bool per_side = exercise_.counting && exercise_.counting->per_side;
    std::vector<Trajectory>& references = references_by_side_[per_side ? event.side : std::string()];
    if (references.size() < static_cast<size_t>(std::max(options_.warmup_reps, 0))) {
      const bool good = std::none_of(event.form_issues.begin(), event.form_issues.end(), [this](const std::string& id) {
        for (const auto& rule : exercise_.rules) {
          if (rule.id == id) return rule.severity == Severity::kError;
        }
        return false;
      });
      if (good && trajectory.channels[0]) references.push_back(std::move(trajectory));
      return;
    }
    if (references.empty() || !trajectory.channels[0]) return;
    std::optional<double> best;
    for (const auto& reference : references) {
      std::vector<std::vector<double>> a, b;
      std::vector<double> scale;
      for (size_t k = 0; k < trajectory.channels.size(); ++k) {
        if (!trajectory.channels[k] || !reference.channels[k]) continue;
        a.push_back(*trajectory.channels[k]);
        b.push_back(*reference.channels[k]);
        double range_sum = 0;
        for (const auto& r : references) range_sum += r.range_deg[k];
        scale.push_back(
            std::max(kDtwScaleOfRange * range_sum / static_cast<double>(references.size()), kMinDtwScaleDeg));
      }
      const double distance = dtw_distance(a, b, scale, kDtwBand);
      best = best ? std::min(*best, distance) : distance;
    }
    event.anomaly_score = best;
    event.anomalous = *best > options_.anomaly_threshold;
  }

  bool recognised_by(const std::vector<RepSample>& samples) const {
    for (size_t c = 0; c < exercise_.recognise.size(); ++c) {
      std::vector<double> values;
      for (const auto& sample : samples) {
        if (sample.recognise_deg[c]) values.push_back(*sample.recognise_deg[c]);
      }
      if (values.empty() || !exercise_.recognise[c].holds(median(values))) return false;
    }
    return true;
  }

  void update_hold(const FrameAngles& angles, int64_t timestamp_us, Emitter& emitter) {
    const Hold& hold = *exercise_.hold;
    bool in_position = true;
    for (const auto& condition : hold.require) {
      const auto& value = angles[hold_rules_.index_of(condition.angle)].combined;
      in_position = in_position && value && condition.holds(*value);
    }
    for (size_t c = 0; c < exercise_.recognise.size(); ++c) {
      const auto& value = angles[recognise_indices_[c]].combined;
      in_position = in_position && value && exercise_.recognise[c].holds(*value);
    }
    if (in_position) {
      if (!hold_start_us_) hold_start_us_ = timestamp_us;
      hold_last_us_ = timestamp_us;
      RepSample sample{.timestamp_us = timestamp_us, .key_deg = {}, .side_from_deg = {}, .recognise_deg = {}};
      for (const auto& key : exercise_.key_angles) sample.key_deg.push_back(angles[hold_rules_.index_of(key)].combined);
      hold_samples_.push_back(std::move(sample));
      if (hold_last_us_ - *hold_start_us_ >= microseconds(hold.min_hold_s) && !hold_recognised_) {
        hold_recognised_ = true;
        ++recognised_;
      }
    } else if (hold_start_us_ && timestamp_us - hold_last_us_ > microseconds(hold.grace_s)) {
      end_hold(emitter);
    }
    const std::string phases[] = {hold_start_us_ ? "hold" : ""};
    hold_rules_.update(angles, -1, phases, timestamp_us, emitter);
  }

  void end_hold(Emitter& emitter) {
    std::vector<Event>& events = *emitter.events;
    const int64_t held_us = hold_last_us_ - *hold_start_us_;
    if (held_us >= microseconds(exercise_.hold->min_hold_s)) {
      longest_hold_us_ = std::max(longest_hold_us_, held_us);
      RepEvent event;
      event.track_id = track_id_;
      event.exercise = exercise_.name;
      event.rep_index = ++reps_;
      event.start_us = *hold_start_us_;
      event.end_us = hold_last_us_;
      fill_ranges(hold_samples_, event);
      event.form_issues = hold_rules_.finish_rep(hold_last_us_, emitter);
      sum_duration_s_ += seconds(held_us);
      events.emplace_back(std::move(event));
    } else {
      hold_rules_.discard_rep();
    }
    hold_start_us_.reset();
    hold_samples_.clear();
    hold_recognised_ = false;
  }

  void fill_state(const FrameAngles& angles, int64_t timestamp_us, PersonState& state) {
    state.exercise = exercise_.name;
    state.reps = reps_;
    for (size_t a = 0; a < exercise_.angles.size(); ++a) {
      const auto& value = angles[a].combined;
      auto& previous = previous_[exercise_.angles[a].name];
      if (!value) continue;
      state.angles_deg[exercise_.angles[a].name] = *value;
      if (previous && timestamp_us - previous->second <= kVelocityMaxGapUs) {
        if (auto velocity = angular_velocity_deg_per_s(previous->first, previous->second, *value, timestamp_us)) {
          state.angular_velocity_deg_per_s[exercise_.angles[a].name] = *velocity;
        }
      }
      previous = std::pair(*value, timestamp_us);
    }
    const std::string& paired = exercise_.counting ? exercise_.counting->angle : exercise_.key_angles.front();
    const AngleValues& pair = angles[hold_rules_.index_of(paired)];
    if (pair.sides[0] && pair.sides[1]) state.symmetry_deg = symmetry_deg(*pair.sides[0], *pair.sides[1]);
    if (exercise_.hold) {
      state.phase = hold_start_us_ ? "hold" : "";
      state.hold_us = hold_start_us_ ? hold_last_us_ - *hold_start_us_ : 0;
      hold_rules_.active_issues(state.active_issues);
      return;
    }
    // Per-side counting: the side in the middle of a rep shows its phase.
    const Counter* shown = &counters_.front();
    for (const auto& counter : counters_) {
      if (counter.state() != Counter::State::kStart && counter.state() != Counter::State::kUnknown) shown = &counter;
      counter.rules().active_issues(state.active_issues);
    }
    state.phase = shown->phase();
  }

  struct Interval {
    int64_t start_us = 0, end_us = 0;
  };

  const Exercise& exercise_;
  const AnalyzerOptions& options_;
  int64_t track_id_;
  AngleMeter meter_;
  RuleChecker hold_rules_;  // hold exercises' rules; also resolves angle names
  std::vector<Counter> counters_;
  std::vector<size_t> recognise_indices_;
  std::array<Interval, 2> last_rep_{};
  std::map<std::string, std::vector<Trajectory>> references_by_side_;  // "left", "right", "" (both or none)
  std::map<std::string, std::optional<std::pair<double, int64_t>>> previous_;
  std::optional<int64_t> hold_start_us_;
  int64_t hold_last_us_ = 0;
  std::vector<RepSample> hold_samples_;
  bool hold_recognised_ = false;
  int reps_ = 0, recognised_ = 0, anomalous_ = 0;
  int64_t longest_hold_us_ = 0;
  double sum_duration_s_ = 0, sum_eccentric_s_ = 0, sum_concentric_s_ = 0, sum_rom_deg_ = 0;
  std::map<std::string, int> issue_counts_;
};

// One track: its exercise, or (auto) every candidate until one is recognised.
struct Person {
  int64_t first_seen_us = 0, last_seen_us = 0;
  std::unique_ptr<ExerciseTracker> chosen;
  std::vector<std::unique_ptr<ExerciseTracker>> candidates;
  std::vector<std::vector<Event>> pending;  // candidates' events, held back until one is chosen
  std::optional<PersonSummary> ended;       // the summary, once the track has ended
};

class Analyzer final : public StreamAnalyzer {
 public:
  explicit Analyzer(AnalyzerOptions options, std::vector<const Exercise*> selected)
      : options_(std::move(options)), selected_(std::move(selected)) {}

  AnalyzerOutput update(std::span<const track::Track> tracks, std::span<const int64_t> ended_ids,
                        int64_t timestamp_us) override {
    AnalyzerOutput out;
    if (!stream_start_us_) stream_start_us_ = timestamp_us;
    for (const auto& track : tracks) {
      Person& person = person_for(track.id, timestamp_us);
      person.last_seen_us = timestamp_us;
      PersonState state;
      state.track_id = track.id;
      if (person.chosen) {
        std::vector<Event> events;
        person.chosen->update(track, timestamp_us, state, events);
        person.chosen->count_issues(events);
        out.events.insert(out.events.end(), events.begin(), events.end());
      } else {
        update_candidates(person, track, timestamp_us, state, out.events);
      }
      out.people.push_back(std::move(state));
    }
    for (int64_t id : ended_ids) {
      auto found = people_.find(id);
      if (found == people_.end() || found->second.ended) continue;
      Person& person = found->second;
      if (person.chosen) {
        std::vector<Event> events;
        person.chosen->finish(events);
        person.chosen->count_issues(events);
        out.events.insert(out.events.end(), events.begin(), events.end());
      }
      person.ended = summarise(id, person);
      person.chosen.reset();
      person.candidates.clear();
      person.pending.clear();
    }
    std::stable_sort(out.events.begin(), out.events.end(),
                     [](const Event& a, const Event& b) { return event_time(a) < event_time(b); });
    return out;
  }

  std::vector<PersonSummary> summary() const override {
    std::vector<PersonSummary> out;
    for (const auto& [id, person] : people_) out.push_back(person.ended ? *person.ended : summarise(id, person));
    return out;
  }

 private:
  static int64_t event_time(const Event& event) {
    if (const auto* rep = std::get_if<RepEvent>(&event)) return rep->end_us;
    if (const auto* form = std::get_if<FormEvent>(&event)) return form->timestamp_us;
    return std::get<AnomalyEvent>(event).timestamp_us;
  }

  Person& person_for(int64_t id, int64_t timestamp_us) {
    auto [it, inserted] = people_.try_emplace(id);
    Person& person = it->second;
    if (inserted) {
      person.first_seen_us = timestamp_us;
      const int64_t mid_rep_until_us =
          timestamp_us - *stream_start_us_ <= kStreamStartUs ? *stream_start_us_ + kStreamStartUs : -1;
      if (selected_.size() == 1) {
        person.chosen = std::make_unique<ExerciseTracker>(*selected_.front(), options_, id, mid_rep_until_us);
      } else {
        for (const Exercise* exercise : selected_) {
          person.candidates.push_back(std::make_unique<ExerciseTracker>(*exercise, options_, id, mid_rep_until_us));
        }
        person.pending.resize(selected_.size());
      }
    }
    return person;
  }

  // Auto: every candidate runs; the first to have kAutoDecideReps recognised reps (or a recognised hold) wins and
  // its held-back events are released.
  void update_candidates(Person& person, const track::Track& track, int64_t timestamp_us, PersonState& state,
                         std::vector<Event>& events) {
    std::optional<size_t> winner;
    for (size_t c = 0; c < person.candidates.size(); ++c) {
      PersonState candidate_state;
      person.candidates[c]->update(track, timestamp_us, candidate_state, person.pending[c]);
      const int needed = person.candidates[c]->exercise().hold ? 1 : kAutoDecideReps;
      if (person.candidates[c]->recognised() >= needed &&
          (!winner || person.candidates[c]->recognised() > person.candidates[*winner]->recognised())) {
        winner = c;
      }
      if (c == 0) {
        state.angles_deg = candidate_state.angles_deg;  // something to show while undecided
      }
    }
    if (!winner) return;
    person.chosen = std::move(person.candidates[*winner]);
    person.chosen->count_issues(person.pending[*winner]);
    events.insert(events.end(), person.pending[*winner].begin(), person.pending[*winner].end());
    person.candidates.clear();
    person.pending.clear();
    state.exercise = person.chosen->exercise().name;
    state.reps = person.chosen->reps();
  }

  static PersonSummary summarise(int64_t id, const Person& person) {
    PersonSummary out = person.chosen ? person.chosen->summary() : PersonSummary{};
    out.track_id = id;
    out.first_seen_us = person.first_seen_us;
    out.last_seen_us = person.last_seen_us;
    return out;
  }

  AnalyzerOptions options_;
  std::vector<const Exercise*> selected_;
  std::map<int64_t, Person> people_;
  std::optional<int64_t> stream_start_us_;  // the first update
};

}  // namespace

core::Result<std::unique_ptr<StreamAnalyzer>> StreamAnalyzer::create(const AnalyzerOptions& options) {
  if (options.exercises.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "no exercises loaded: load them with load_exercises(" +
                                                                   default_exercise_dir().string() + ")");
  }
  if (options.anomaly_threshold <= 0 || options.warmup_reps < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "anomaly_threshold must be positive and warmup_reps not negative");
  }
  std::vector<const Exercise*> selected;
  std::string known;
  for (const auto& exercise : options.exercises) {
    known += (known.empty() ? "" : ", ") + exercise->name;
    if (options.exercise == "auto" || exercise->name == options.exercise) selected.push_back(exercise.get());
  }
  if (selected.empty()) {
    return core::make_error(core::ErrorCode::kNotFound,
                            "unknown exercise \"" + options.exercise + "\" (loaded: " + known + ", or \"auto\")");
  }
  return std::unique_ptr<StreamAnalyzer>(std::make_unique<Analyzer>(options, std::move(selected)));
}

}  // namespace pose::analysis
