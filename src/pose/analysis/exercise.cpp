// Exercise files: TOML parsed with toml++ (no exceptions), every key checked, errors that name the file and key.
#include <toml++/toml.h>
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "pose/analysis/exercise.h"
#include "pose/engine/person.h"

namespace pose::analysis {
namespace {

// Joints with a left and right keypoint, named without the side in exercise files ("knee").
constexpr std::array<const char*, 8> kSidedJoints = {"eye",   "ear", "shoulder", "elbow",
                                                     "wrist", "hip", "knee",     "ankle"};

int joint_index(std::string_view name) {
  for (size_t i = 0; i < engine::kJointNames.size(); ++i) {
    if (name == engine::kJointNames[i]) return static_cast<int>(i);
  }
  return -1;
}

bool is_sided_joint(std::string_view name) {
  return std::find(kSidedJoints.begin(), kSidedJoints.end(), name) != kSidedJoints.end();
}

std::string known_joints() {
  std::string text;
  for (const char* name : kSidedJoints) text += std::string(text.empty() ? "" : ", ") + name;
  text += " (sided by `side`), left_/right_ of those, nose, mid_<joint>";
  return text;
}

// Reads one file's keys; remembers the first error so the parse code reads straight through.
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  bool failed() const { return error_.has_value(); }
  core::Error error() const { return *error_; }
  void fail(const std::string& key, const std::string& what) {
    if (!error_) error_ = core::make_error(core::ErrorCode::kInvalidArgument, origin_ + ": " + key + ": " + what);
  }

  // Every key of `table` must be one of `allowed`: a typo must not silently change the meaning of a file.
  void only_keys(const toml::table& table, const std::string& where, std::initializer_list<std::string_view> allowed) {
    for (const auto& [key, value] : table) {
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      std::string list;
      for (auto name : allowed) list += std::string(list.empty() ? "" : ", ") + std::string(name);
      fail(join(where, std::string(key.str())), "unknown key (allowed here: " + list + ")");
    }
  }

  std::optional<std::string> string(const toml::table& table, const std::string& where, std::string_view key,
                                    bool required) {
    const toml::node* node = table.get(key);
    if (!node) {
      if (required) fail(join(where, key), "missing (a string)");
      return std::nullopt;
    }
    if (!node->is_string()) {
      fail(join(where, key), std::string("must be a string, not ") + type_name(*node));
      return std::nullopt;
    }
    return node->value<std::string>();
  }

  std::optional<double> number(const toml::table& table, const std::string& where, std::string_view key, bool required,
                               double min, double max) {
    const toml::node* node = table.get(key);
    if (!node) {
      if (required) fail(join(where, key), "missing (a number)");
      return std::nullopt;
    }
    if (!node->is_number()) {
      fail(join(where, key), std::string("must be a number, not ") + type_name(*node));
      return std::nullopt;
    }
    const double value = *node->value<double>();
    if (value < min || value > max) {
      std::ostringstream range;
      range << "is " << value << ", must be within " << min << " .. " << max;
      fail(join(where, key), range.str());
      return std::nullopt;
    }
    return value;
  }

  std::optional<bool> boolean(const toml::table& table, const std::string& where, std::string_view key) {
    const toml::node* node = table.get(key);
    if (!node) return std::nullopt;
    if (!node->is_boolean()) {
      fail(join(where, key), std::string("must be true or false, not ") + type_name(*node));
      return std::nullopt;
    }
    return node->value<bool>();
  }

  std::vector<std::string> strings(const toml::table& table, const std::string& where, std::string_view key,
                                   bool required) {
    const toml::node* node = table.get(key);
    if (!node) {
      if (required) fail(join(where, key), "missing (an array of strings)");
      return {};
    }
    const toml::array* array = node->as_array();
    if (!array || !array->is_homogeneous(toml::node_type::string)) {
      fail(join(where, key), std::string("must be an array of strings, not ") + type_name(*node));
      return {};
    }
    std::vector<std::string> out;
    for (const auto& item : *array) out.push_back(*item.value<std::string>());
    return out;
  }

  // One of `choices`, or `fallback` when absent.
  std::string choice(const toml::table& table, const std::string& where, std::string_view key,
                     std::initializer_list<std::string_view> choices, std::string fallback) {
    auto value = string(table, where, key, false);
    if (!value) return fallback;
    if (std::find(choices.begin(), choices.end(), *value) != choices.end()) return *value;
    std::string list;
    for (auto name : choices) list += std::string(list.empty() ? "" : ", ") + "\"" + std::string(name) + "\"";
    fail(join(where, key), "is \"" + *value + "\", must be one of " + list);
    return fallback;
  }

  // The tables of an array of tables ([[rules]]); none when absent.
  std::vector<const toml::table*> tables(const toml::table& table, std::string_view key) {
    std::vector<const toml::table*> out;
    const toml::node* node = table.get(key);
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array || !array->is_homogeneous(toml::node_type::table)) {
      fail(std::string(key), "must be an array of tables ([[" + std::string(key) + "]])");
      return out;
    }
    for (const auto& item : *array) out.push_back(item.as_table());
    return out;
  }

  static std::string join(const std::string& where, std::string_view key) {
    return where.empty() ? std::string(key) : where + "." + std::string(key);
  }

 private:
  static const char* type_name(const toml::node& node) {
    switch (node.type()) {
      case toml::node_type::string: return "a string";
      case toml::node_type::integer:
      case toml::node_type::floating_point: return "a number";
      case toml::node_type::boolean: return "a boolean";
      case toml::node_type::array: return "an array";
      case toml::node_type::table: return "a table";
      default: return "a date or time";
    }
  }

  std::string origin_;
  std::optional<core::Error> error_;
};

// A joint name of a file, for one side ("left"/"right"; "" for an unsided angle).
std::optional<PointRef> resolve_point(Reader& reader, const std::string& key, const std::string& name,
                                      const std::string& side) {
  if (name.starts_with("mid_") && is_sided_joint(name.substr(4))) {
    const std::string joint = name.substr(4);
    return PointRef{joint_index("left_" + joint), joint_index("right_" + joint)};
  }
  if (is_sided_joint(name)) {
    if (side.empty()) {
      reader.fail(key, "joint \"" + name +
                           "\" needs a side: set side = \"left\", \"right\" or \"both\", or write left_" + name +
                           " / mid_" + name);
      return std::nullopt;
    }
    const int index = joint_index(side + "_" + name);
    return PointRef{index, index};
  }
  const int index = joint_index(name);
  if (index < 0) {
    reader.fail(key, "unknown joint \"" + name + "\" (known: " + known_joints() + ")");
    return std::nullopt;
  }
  return PointRef{index, index};
}

void parse_angle(Reader& reader, const std::string& name, const toml::table& table, Exercise& exercise) {
  const std::string where = "angles." + name;
  reader.only_keys(
      table, where,
      {"joints", "segment", "from", "side", "combine", "foreshortening", "valid_above_deg", "valid_below_deg"});
  AngleDef angle;
  angle.name = name;
  const bool has_joints = table.contains("joints"), has_segment = table.contains("segment");
  if (has_joints == has_segment) {
    reader.fail(where, "needs exactly one of `joints` (three joints, the angle at the middle one) or `segment` (two)");
    return;
  }
  angle.kind = has_joints ? AngleKind::kJoint : AngleKind::kSegment;
  const std::string key = Reader::join(where, has_joints ? "joints" : "segment");
  const auto names = reader.strings(table, where, has_joints ? "joints" : "segment", true);
  const size_t expected = has_joints ? 3 : 2;
  if (!reader.failed() && names.size() != expected) {
    reader.fail(key, "needs " + std::to_string(expected) + " joint names, has " + std::to_string(names.size()));
  }
  const std::string from = reader.choice(table, where, "from", {"vertical", "horizontal"}, "");
  if (has_joints && !from.empty()) reader.fail(Reader::join(where, "from"), "only segment angles have `from`");
  if (has_segment && from.empty()) reader.fail(Reader::join(where, "from"), "missing: \"vertical\" or \"horizontal\"");
  angle.axis = from == "horizontal" ? Axis::kHorizontal : Axis::kVertical;
  angle.foreshortening = reader.boolean(table, where, "foreshortening").value_or(false);
  angle.valid_above_deg = reader.number(table, where, "valid_above_deg", false, -360, 360);
  angle.valid_below_deg = reader.number(table, where, "valid_below_deg", false, -360, 360);
  if (angle.valid_above_deg && angle.valid_below_deg && *angle.valid_above_deg >= *angle.valid_below_deg) {
    reader.fail(Reader::join(where, "valid_above_deg"), "must be less than valid_below_deg");
  }
  if (has_segment && angle.foreshortening) {
    reader.fail(Reader::join(where, "foreshortening"), "only joint angles (three joints) can correct it");
  }
  const std::string side = reader.choice(table, where, "side", {"left", "right", "both", "none"}, "none");
  const std::string combine = reader.choice(table, where, "combine", {"visible", "mean", "min", "max"}, "visible");
  angle.combine = combine == "mean"  ? Combine::kMean
                  : combine == "min" ? Combine::kMin
                  : combine == "max" ? Combine::kMax
                                     : Combine::kVisible;
  if (reader.failed()) return;
  const std::vector<std::string> sides = side == "both"
                                             ? std::vector<std::string>{"left", "right"}
                                             : std::vector<std::string>{side == "none" ? std::string() : side};
  for (const auto& variant_side : sides) {
    AngleVariant variant{side == "both" ? variant_side : (side == "none" ? "" : side), {}};
    for (const auto& joint : names) {
      auto point = resolve_point(reader, key, joint, variant_side);
      if (!point) return;
      variant.points.push_back(*point);
    }
    angle.variants.push_back(std::move(variant));
  }
  if (side == "both" && std::none_of(names.begin(), names.end(), is_sided_joint)) {
    reader.fail(Reader::join(where, "side"), "is \"both\" but no joint is sided (write \"knee\", not \"left_knee\")");
  }
  exercise.angles.push_back(std::move(angle));
}

std::optional<Condition> parse_condition(Reader& reader, const toml::table& table, const std::string& where,
                                         const Exercise& exercise) {
  Condition condition;
  condition.angle = reader.string(table, where, "angle", true).value_or("");
  condition.above_deg = reader.number(table, where, "above_deg", false, -360, 360);
  condition.below_deg = reader.number(table, where, "below_deg", false, -360, 360);
  if (reader.failed()) return std::nullopt;
  if (!exercise.find_angle(condition.angle)) {
    reader.fail(Reader::join(where, "angle"), "no angle named \"" + condition.angle + "\" in [angles]");
  } else if (!condition.above_deg && !condition.below_deg) {
    reader.fail(where, "needs above_deg, below_deg or both");
  } else if (condition.above_deg && condition.below_deg && *condition.above_deg >= *condition.below_deg) {
    reader.fail(where, "above_deg must be less than below_deg (both given: the value must lie between them)");
  }
  if (reader.failed()) return std::nullopt;
  return condition;
}

void parse_counting(Reader& reader, const toml::table& table, Exercise& exercise) {
  const std::string where = "count";
  reader.only_keys(
      table, where,
      {"angle", "start_phase", "turn_phase", "start_above_deg", "start_below_deg", "turn_above_deg", "turn_below_deg",
       "min_rep_s", "max_rep_s", "min_rom_deg", "first_half", "per_side", "side_from", "max_gap_s"});
  Counting counting;
  counting.angle = reader.string(table, where, "angle", true).value_or("");
  counting.start_phase = reader.string(table, where, "start_phase", false).value_or("up");
  counting.turn_phase = reader.string(table, where, "turn_phase", false).value_or("down");
  const auto start_above = reader.number(table, where, "start_above_deg", false, 0, 180);
  const auto start_below = reader.number(table, where, "start_below_deg", false, 0, 180);
  const auto turn_above = reader.number(table, where, "turn_above_deg", false, 0, 180);
  const auto turn_below = reader.number(table, where, "turn_below_deg", false, 0, 180);
  counting.min_rep_s = reader.number(table, where, "min_rep_s", false, 0, 600).value_or(counting.min_rep_s);
  counting.max_rep_s = reader.number(table, where, "max_rep_s", false, 0, 3600).value_or(counting.max_rep_s);
  counting.min_rom_deg = reader.number(table, where, "min_rom_deg", false, 0, 180).value_or(0);
  counting.eccentric_first =
      reader.choice(table, where, "first_half", {"eccentric", "concentric"}, "eccentric") == "eccentric";
  counting.per_side = reader.boolean(table, where, "per_side").value_or(false);
  counting.side_from = reader.string(table, where, "side_from", false).value_or("");
  counting.max_gap_s = reader.number(table, where, "max_gap_s", false, 0, 60).value_or(counting.max_gap_s);
  if (reader.failed()) return;

  const AngleDef* driving = exercise.find_angle(counting.angle);
  if (!driving) return reader.fail("count.angle", "no angle named \"" + counting.angle + "\" in [angles]");
  if (counting.start_phase == counting.turn_phase || counting.start_phase.empty() || counting.turn_phase.empty()) {
    return reader.fail("count.turn_phase", "start_phase and turn_phase must be two different non-empty names");
  }
  for (const char* reserved : {"eccentric", "concentric", "rep", "hold"}) {
    if (counting.start_phase == reserved || counting.turn_phase == reserved) {
      return reader.fail("count", std::string("phase name \"") + reserved + "\" is reserved");
    }
  }
  if (start_above.has_value() == start_below.has_value()) {
    return reader.fail("count", "needs exactly one of start_above_deg (the rep starts high: squat) or start_below_deg");
  }
  counting.start_high = start_above.has_value();
  counting.start_deg = counting.start_high ? *start_above : *start_below;
  const auto& turn = counting.start_high ? turn_below : turn_above;
  const auto& wrong_turn = counting.start_high ? turn_above : turn_below;
  const char* turn_key = counting.start_high ? "count.turn_below_deg" : "count.turn_above_deg";
  if (wrong_turn) {
    return reader.fail(counting.start_high ? "count.turn_above_deg" : "count.turn_below_deg",
                       std::string("the turn goes the other way from the start: use ") + (turn_key + 6));
  }
  if (!turn) return reader.fail(turn_key, "missing (a number of degrees)");
  counting.turn_deg = *turn;
  if (counting.start_high ? counting.turn_deg >= counting.start_deg : counting.turn_deg <= counting.start_deg) {
    std::ostringstream message;
    message << "is " << counting.turn_deg << " but the start threshold is " << counting.start_deg
            << ": the turn must lie " << (counting.start_high ? "below" : "above")
            << " the start, with the hysteresis band between them";
    return reader.fail(turn_key, message.str());
  }
  if (counting.min_rep_s >= counting.max_rep_s) return reader.fail("count.max_rep_s", "must exceed min_rep_s");
  if (counting.per_side && !driving->sided()) {
    return reader.fail("count.per_side", "needs a driving angle with side = \"both\"");
  }
  if (!counting.side_from.empty()) {
    const AngleDef* side_angle = exercise.find_angle(counting.side_from);
    if (!side_angle || !side_angle->sided()) {
      return reader.fail("count.side_from", "must name an angle with side = \"both\"");
    }
    if (counting.per_side) return reader.fail("count.side_from", "per_side reps already have a side");
  }
  exercise.counting = counting;
}

void parse_hold(Reader& reader, const toml::table& table, Exercise& exercise) {
  reader.only_keys(table, "hold", {"min_hold_s", "grace_s", "require"});
  Hold hold;
  hold.min_hold_s = reader.number(table, "hold", "min_hold_s", false, 0, 3600).value_or(hold.min_hold_s);
  hold.grace_s = reader.number(table, "hold", "grace_s", false, 0, 60).value_or(hold.grace_s);
  const auto requires_tables = reader.tables(table, "require");
  if (requires_tables.empty() && !reader.failed()) {
    return reader.fail("hold.require", "missing: at least one [[hold.require]] condition (the body position held)");
  }
  for (size_t i = 0; i < requires_tables.size(); ++i) {
    const std::string where = "hold.require[" + std::to_string(i) + "]";
    reader.only_keys(*requires_tables[i], where, {"angle", "above_deg", "below_deg"});
    if (auto condition = parse_condition(reader, *requires_tables[i], where, exercise)) {
      hold.require.push_back(*condition);
    }
  }
  exercise.hold = hold;
}

void parse_rule(Reader& reader, const toml::table& table, size_t index, Exercise& exercise) {
  const std::string where = "rules[" + std::to_string(index) + "]";
  reader.only_keys(
      table, where,
      {"id", "message", "severity", "phase", "check", "angle", "above_deg", "below_deg", "min_duration_s"});
  FormRule rule;
  rule.id = reader.string(table, where, "id", true).value_or("");
  rule.message = reader.string(table, where, "message", true).value_or("");
  const std::string severity = reader.choice(table, where, "severity", {"info", "warning", "error"}, "warning");
  rule.severity = severity == "info" ? Severity::kInfo : severity == "error" ? Severity::kError : Severity::kWarning;
  rule.phase = reader.string(table, where, "phase", true).value_or("");
  const std::string check = reader.choice(table, where, "check", {"value", "min", "max", "asymmetry"}, "value");
  rule.check = check == "min"         ? RuleCheck::kMin
               : check == "max"       ? RuleCheck::kMax
               : check == "asymmetry" ? RuleCheck::kAsymmetry
                                      : RuleCheck::kValue;
  rule.min_duration_s = reader.number(table, where, "min_duration_s", false, 0, 60).value_or(0);
  auto condition = parse_condition(reader, table, where, exercise);
  if (reader.failed()) return;
  rule.condition = *condition;
  if (rule.id.empty()) return reader.fail(Reader::join(where, "id"), "must not be empty");
  for (const auto& other : exercise.rules) {
    if (other.id == rule.id) return reader.fail(Reader::join(where, "id"), "\"" + rule.id + "\" is used twice");
  }
  std::set<std::string> phases;
  if (exercise.counting) {
    phases = {exercise.counting->start_phase, exercise.counting->turn_phase, "eccentric", "concentric", "rep"};
  } else {
    phases = {"hold"};
  }
  if (!phases.contains(rule.phase)) {
    std::string list;
    for (const auto& phase : phases) list += std::string(list.empty() ? "" : ", ") + "\"" + phase + "\"";
    return reader.fail(Reader::join(where, "phase"), "is \"" + rule.phase + "\", must be one of " + list);
  }
  if (rule.check == RuleCheck::kAsymmetry && !exercise.find_angle(rule.condition.angle)->sided()) {
    return reader.fail(Reader::join(where, "check"), "asymmetry needs an angle with side = \"both\"");
  }
  if ((rule.check == RuleCheck::kMin || rule.check == RuleCheck::kMax) && rule.min_duration_s > 0) {
    return reader.fail(Reader::join(where, "min_duration_s"), "applies to value and asymmetry checks only");
  }
  exercise.rules.push_back(std::move(rule));
}

}  // namespace

const char* to_string(Severity severity) {
  switch (severity) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kError: return "error";
  }
  return "warning";
}

const std::string& exercise_name(const Exercise& exercise) { return exercise.name; }

ExerciseInfo describe(const Exercise& exercise) {
  ExerciseInfo info{exercise.name,
                    exercise.description,
                    exercise.views,
                    exercise.key_angles,
                    exercise.counting ? "reps" : "hold",
                    {}};
  for (const auto& rule : exercise.rules) info.rules.push_back(rule.id);
  return info;
}

std::filesystem::path default_exercise_dir() { return WB_EXERCISE_DIR; }

core::Result<std::shared_ptr<const Exercise>> parse_exercise(std::string_view toml_text, const std::string& origin) {
  toml::parse_result parsed = toml::parse(toml_text, origin);
  if (!parsed) {
    const auto& error = parsed.error();
    std::ostringstream message;
    message << origin << ":" << error.source().begin.line << ":" << error.source().begin.column
            << ": not valid TOML: " << error.description();
    return core::make_error(core::ErrorCode::kInvalidArgument, message.str());
  }
  const toml::table& root = parsed.table();
  Reader reader(origin);
  reader.only_keys(
      root, "",
      {"name", "description", "views", "median_frames", "key_angles", "angles", "count", "hold", "rules", "recognise"});
  auto exercise = std::make_shared<Exercise>();
  exercise->origin = origin;
  exercise->name = reader.string(root, "", "name", true).value_or("");
  exercise->description = reader.string(root, "", "description", false).value_or("");
  exercise->views = reader.strings(root, "", "views", false);
  for (const auto& view : exercise->views) {
    if (view != "side" && view != "front" && view != "diagonal") {
      reader.fail("views", "\"" + view + "\" is not one of \"side\", \"front\", \"diagonal\"");
    }
  }
  if (const auto frames = reader.number(root, "", "median_frames", false, 1, 15)) {
    exercise->median_frames = static_cast<int>(*frames);
    if (*frames != static_cast<double>(exercise->median_frames) || exercise->median_frames % 2 == 0) {
      reader.fail("median_frames", "must be an odd whole number (1 turns the median filter off)");
    }
  }
  if (!reader.failed() && exercise->name.empty()) reader.fail("name", "must not be empty");
  if (!reader.failed() && exercise->name == "auto") reader.fail("name", "\"auto\" is reserved for recognition");

  const toml::node* angles = root.get("angles");
  if (!angles && !reader.failed()) reader.fail("angles", "missing: at least one [angles.<name>] table");
  if (angles && !angles->is_table()) reader.fail("angles", "must be a table of [angles.<name>] tables");
  if (angles && angles->is_table() && !reader.failed()) {
    for (const auto& [name, node] : *angles->as_table()) {
      if (!node.is_table()) {
        reader.fail("angles." + std::string(name.str()), "must be a table ([angles." + std::string(name.str()) + "])");
        break;
      }
      parse_angle(reader, std::string(name.str()), *node.as_table(), *exercise);
      if (reader.failed()) break;
    }
  }
  if (reader.failed()) return reader.error();

  const bool has_count = root.contains("count"), has_hold = root.contains("hold");
  if (has_count == has_hold) {
    reader.fail("count", "an exercise needs exactly one of [count] (repetitions) or [hold] (held position)");
  } else if (has_count) {
    if (const toml::table* table = root.get("count")->as_table()) {
      parse_counting(reader, *table, *exercise);
    } else {
      reader.fail("count", "must be a table ([count])");
    }
  } else if (const toml::table* table = root.get("hold")->as_table()) {
    parse_hold(reader, *table, *exercise);
  } else {
    reader.fail("hold", "must be a table ([hold])");
  }
  if (reader.failed()) return reader.error();

  exercise->key_angles = reader.strings(root, "", "key_angles", false);
  for (const auto& angle : exercise->key_angles) {
    if (!exercise->find_angle(angle)) reader.fail("key_angles", "no angle named \"" + angle + "\" in [angles]");
  }
  // The driving angle always leads: DTW and the rep's range of motion are about it first.
  if (exercise->counting) {
    auto& keys = exercise->key_angles;
    keys.erase(std::remove(keys.begin(), keys.end(), exercise->counting->angle), keys.end());
    keys.insert(keys.begin(), exercise->counting->angle);
  } else if (exercise->key_angles.empty()) {
    for (const auto& condition : exercise->hold->require) exercise->key_angles.push_back(condition.angle);
  }
  const auto rules = reader.tables(root, "rules");
  for (size_t i = 0; i < rules.size() && !reader.failed(); ++i) parse_rule(reader, *rules[i], i, *exercise);
  const auto recognise = reader.tables(root, "recognise");
  for (size_t i = 0; i < recognise.size() && !reader.failed(); ++i) {
    const std::string where = "recognise[" + std::to_string(i) + "]";
    reader.only_keys(*recognise[i], where, {"angle", "above_deg", "below_deg"});
    if (auto condition = parse_condition(reader, *recognise[i], where, *exercise)) {
      exercise->recognise.push_back(*condition);
    }
  }
  if (reader.failed()) return reader.error();
  return std::shared_ptr<const Exercise>(std::move(exercise));
}

core::Result<std::vector<std::shared_ptr<const Exercise>>> load_exercises(const std::filesystem::path& dir) {
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.is_regular_file() && entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  if (error) {
    return core::make_error(core::ErrorCode::kNotFound,
                            "cannot list exercise folder " + dir.string() + ": " + error.message());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::shared_ptr<const Exercise>> exercises;
  std::set<std::string> names;
  for (const auto& file : files) {
    std::ifstream stream(file, std::ios::binary);
    std::ostringstream text;
    text << stream.rdbuf();
    if (!stream) return core::make_error(core::ErrorCode::kIo, "cannot read " + file.string());
    auto exercise = parse_exercise(text.str(), file.string());
    if (!exercise) return exercise.error();
    if (!names.insert((*exercise)->name).second) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              file.string() + ": name: \"" + (*exercise)->name + "\" is defined by another file too");
    }
    exercises.push_back(std::move(*exercise));
  }
  if (exercises.empty()) {
    return core::make_error(core::ErrorCode::kNotFound, "no *.toml exercise files in " + dir.string());
  }
  return exercises;
}

}  // namespace pose::analysis
