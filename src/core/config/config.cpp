#include "core/config/config.h"

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

namespace core::config {
namespace {

std::string kind_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::kString: return "a string";
    case OptionKind::kInt: return "an integer";
    case OptionKind::kFloat: return "a number";
    case OptionKind::kBool: return "true or false";
    case OptionKind::kBytes: return "a size such as 8GB, 512MiB or 1048576";
    case OptionKind::kPath: return "a path";
    case OptionKind::kConfigFile: return "a path to a TOML file";
  }
  return "a value";
}

std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

std::optional<double> parse_double(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // strtod needs a terminated string; from_chars for double is missing from some libstdc++ versions we support.
  const std::string copy(text);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  return std::nullopt;
}

// Returns an empty string when `text` is a valid value for `option`, otherwise what was expected.
std::string check_value(const Option& option, const std::string& text) {
  bool valid = true;
  switch (option.kind) {
    case OptionKind::kInt: valid = parse_int(text).has_value(); break;
    case OptionKind::kFloat: valid = parse_double(text).has_value(); break;
    case OptionKind::kBool: valid = parse_bool(text).has_value(); break;
    case OptionKind::kBytes: valid = parse_bytes(text).ok(); break;
    case OptionKind::kString:
    case OptionKind::kPath:
    case OptionKind::kConfigFile: break;
  }
  if (!valid) return kind_name(option.kind);
  if (!option.choices.empty() &&
      std::find(option.choices.begin(), option.choices.end(), text) == option.choices.end()) {
    std::string expected = "one of";
    for (const auto& choice : option.choices) expected += " '" + choice + "'";
    return expected;
  }
  return {};
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within two edits, else "".
template <class Names>
std::string suggestion(std::string_view wrong, const Names& names) {
  std::string best;
  size_t best_distance = 3;
  for (const std::string& name : names) {
    const size_t distance = edit_distance(wrong, name);
    if (distance < best_distance) {
      best_distance = distance;
      best = name;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

std::string toml_scalar_text(const toml::node& node) {
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return std::to_string(i->get());
  if (const auto* b = node.as_boolean()) return b->get() ? "true" : "false";
  if (const auto* f = node.as_floating_point()) {
    std::ostringstream out;
    out.precision(17);
    out << f->get();
    return out.str();
  }
  return {};
}

// Flattens nested TOML tables into dotted keys; arrays and dates are reported as unsupported values.
void flatten(const toml::table& table, const std::string& prefix,
             std::vector<std::pair<std::string, const toml::node*>>* out) {
  for (const auto& [key, node] : table) {
    const std::string dotted = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const auto* sub = node.as_table()) {
      flatten(*sub, dotted, out);
    } else {
      out->emplace_back(dotted, &node);
    }
  }
}

std::string section_of(std::string_view key) {
  const auto dot = key.find('.');
  return std::string(dot == std::string_view::npos ? std::string_view() : key.substr(0, dot));
}

struct Resolver {
  std::span<const Option> table;
  std::map<std::string, std::string, std::less<>>* values;
  std::map<std::string, std::string, std::less<>>* origins;

  const Option* by_key(std::string_view key) const {
    for (const auto& option : table)
      if (option.key == key) return &option;
    return nullptr;
  }

  Status assign(const Option& option, std::string text, const std::string& origin) const {
    if (std::string expected = check_value(option, text); !expected.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "invalid value '" + text + "' for " + option.key + " (from " +
                                                         origin + "): expected " + expected);
    }
    (*values)[option.key] = std::move(text);
    (*origins)[option.key] = origin;
    return {};
  }

  Status load_file(const std::filesystem::path& path) const {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return make_error(ErrorCode::kNotFound, "config file " + path.string() + " does not exist or is not a file");
    }
    toml::parse_result parsed = toml::parse_file(path.string());
    if (!parsed) {
      const auto& err = parsed.error();
      std::ostringstream message;
      message << "config file " << path.string() << " line " << err.source().begin.line << " column "
              << err.source().begin.column << ": " << err.description();
      return make_error(ErrorCode::kInvalidArgument, message.str());
    }
    std::set<std::string> own_sections;
    std::vector<std::string> keys;
    for (const auto& option : table) {
      own_sections.insert(section_of(option.key));
      keys.push_back(option.key);
    }
    std::vector<std::pair<std::string, const toml::node*>> entries;
    flatten(parsed.table(), "", &entries);
    const std::string origin = "file " + path.string();
    for (const auto& [key, node] : entries) {
      const Option* option = by_key(key);
      if (option == nullptr) {
        // Other applications' sections (and the profile's informational ones) may share the file.
        if (own_sections.count(section_of(key)) == 0) continue;
        return make_error(ErrorCode::kInvalidArgument,
                          "unknown key '" + key + "' in " + path.string() + suggestion(key, keys));
      }
      if (option->kind == OptionKind::kConfigFile) continue;
      std::string text = toml_scalar_text(*node);
      if (text.empty() && !node->is_string()) {
        return make_error(ErrorCode::kInvalidArgument,
                          "key '" + key + "' in " + path.string() + " must be a string, number or boolean");
      }
      if (Status status = assign(*option, std::move(text), origin); !status) return status;
    }
    return {};
  }
};

}  // namespace

Result<uint64_t> parse_bytes(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double factor;
  };
  // Longest suffixes first so "GiB" is not read as "B".
  static constexpr Unit kUnits[] = {{"TiB", 1099511627776.0},
                                    {"GiB", 1073741824.0},
                                    {"MiB", 1048576.0},
                                    {"KiB", 1024.0},
                                    {"TB", 1e12},
                                    {"GB", 1e9},
                                    {"MB", 1e6},
                                    {"KB", 1e3},
                                    {"kB", 1e3},
                                    {"B", 1.0}};
  std::string_view number = text;
  double factor = 1.0;
  while (!number.empty() && number.back() == ' ') number.remove_suffix(1);
  for (const auto& unit : kUnits) {
    if (number.size() > unit.suffix.size() && number.substr(number.size() - unit.suffix.size()) == unit.suffix) {
      number.remove_suffix(unit.suffix.size());
      factor = unit.factor;
      break;
    }
  }
  while (!number.empty() && number.back() == ' ') number.remove_suffix(1);
  const auto value = parse_double(number);
  if (!value || *value < 0 || *value * factor > 1.8e19) {
    return make_error(ErrorCode::kInvalidArgument,
                      "'" + std::string(text) + "' is not a size (examples: 8GB, 512MiB, 1048576)");
  }
  return static_cast<uint64_t>(std::llround(*value * factor));
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::pair<double, const char*> kUnits[] = {{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "kB"}};
  const auto value = static_cast<double>(bytes);
  for (const auto& [factor, name] : kUnits) {
    if (value >= factor) {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%.2f %s", value / factor, name);
      return buffer;
    }
  }
  return std::to_string(bytes) + " B";
}

Result<Config> Config::resolve(std::span<const Option> table, const Sources& sources) {
  std::map<std::string, std::string, std::less<>> values;
  std::map<std::string, std::string, std::less<>> origins;
  const Resolver resolver{table, &values, &origins};
  const auto getenv = sources.getenv ? sources.getenv : [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value ? std::optional<std::string>(value) : std::nullopt;
  };

  // 1. Split the command line into flag assignments and positional arguments.
  Config config;
  std::vector<std::pair<const Option*, std::string>> flag_values;
  std::vector<std::string> flag_names;
  for (const auto& option : table)
    if (!option.flag.empty()) flag_names.push_back(option.flag);
  for (size_t i = 0; i < sources.args.size(); ++i) {
    const std::string& arg = sources.args[i];
    if (arg == "--") {
      config.positional_.insert(config.positional_.end(), sources.args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                sources.args.end());
      break;
    }
    if (arg == "--help" || arg == "-h") {
      config.help_requested_ = true;
      continue;
    }
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      config.positional_.push_back(arg);
      continue;
    }
    const auto equals = arg.find('=');
    const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    const auto option = std::find_if(table.begin(), table.end(), [&](const Option& o) { return o.flag == name; });
    if (option == table.end()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "unknown flag --" + name + suggestion(name, flag_names) + "; --help lists the flags");
    }
    if (equals != std::string::npos) {
      flag_values.emplace_back(&*option, arg.substr(equals + 1));
    } else if (option->kind == OptionKind::kBool) {
      flag_values.emplace_back(&*option, "true");
    } else if (i + 1 < sources.args.size()) {
      flag_values.emplace_back(&*option, sources.args[++i]);
    } else {
      return make_error(ErrorCode::kInvalidArgument, "flag --" + name + " needs a value");
    }
  }

  // 2. Defaults, then the file layers (whose own paths come from default, environment or flag).
  for (const auto& option : table) {
    if (Status status = resolver.assign(option, option.default_value, "default"); !status) return status.error();
  }
  for (const auto& option : table) {
    if (option.kind != OptionKind::kConfigFile) continue;
    std::string path = option.default_value;
    bool explicit_path = false;
    if (auto env = option.env.empty() ? std::nullopt : getenv(option.env)) {
      path = *env;
      explicit_path = true;
      origins[option.key] = "env " + option.env;
    }
    for (const auto& [flagged, text] : flag_values) {
      if (flagged != &option) continue;
      path = text;
      explicit_path = true;
      origins[option.key] = "flag --" + option.flag;
    }
    values[option.key] = path;
    std::error_code ec;
    if (path.empty() || (!explicit_path && !std::filesystem::exists(path, ec))) continue;
    if (Status status = resolver.load_file(path); !status) return status.error();
  }

  // 3. Environment, then flags.
  for (const auto& option : table) {
    if (option.env.empty() || option.kind == OptionKind::kConfigFile) continue;
    if (auto env = getenv(option.env)) {
      if (Status status = resolver.assign(option, *env, "env " + option.env); !status) return status.error();
    }
  }
  for (const auto& [option, text] : flag_values) {
    if (option->kind == OptionKind::kConfigFile) continue;
    if (Status status = resolver.assign(*option, text, "flag --" + option->flag); !status) return status.error();
  }

  for (auto& [key, text] : values) {
    const std::string& origin = origins[key];
    config.values_.emplace(key, Value{text, origin, origin != "default"});
  }
  return config;
}

const Config::Value& Config::find(std::string_view key) const {
  const auto it = values_.find(key);
  assert(it != values_.end() && "option key not in the table");
  return it->second;
}

const std::string& Config::text(std::string_view key) const { return find(key).text; }
int64_t Config::integer(std::string_view key) const { return parse_int(find(key).text).value_or(0); }
double Config::number(std::string_view key) const { return parse_double(find(key).text).value_or(0.0); }
bool Config::boolean(std::string_view key) const { return parse_bool(find(key).text).value_or(false); }
uint64_t Config::bytes(std::string_view key) const { return parse_bytes(find(key).text).value_or(0); }
std::filesystem::path Config::path(std::string_view key) const { return find(key).text; }
std::vector<std::string> Config::list(std::string_view key) const {
  std::vector<std::string> items;
  std::stringstream stream(find(key).text);
  for (std::string item; std::getline(stream, item, ',');) {
    const size_t first = item.find_first_not_of(' ');
    if (first != std::string::npos) items.push_back(item.substr(first, item.find_last_not_of(' ') - first + 1));
  }
  return items;
}
const std::string& Config::origin(std::string_view key) const { return find(key).origin; }
bool Config::is_set(std::string_view key) const { return find(key).set; }

std::string Config::describe() const {
  std::ostringstream out;
  for (const auto& [key, value] : values_) out << key << " = \"" << value.text << "\"   # " << value.origin << "\n";
  return out.str();
}

std::string usage(std::span<const Option> table) {
  std::ostringstream out;
  out << "Options (flag > environment > config file > machine profile > default):\n";
  for (const auto& option : table) {
    if (option.flag.empty()) continue;
    out << "  --" << option.flag;
    if (option.kind != OptionKind::kBool) out << " <" << (option.choices.empty() ? "value" : "choice") << ">";
    out << "\n      " << option.help << "\n      ";
    if (!option.choices.empty()) {
      out << "choices:";
      for (const auto& choice : option.choices) out << " " << choice;
      out << "; ";
    }
    out << "default: " << (option.default_value.empty() ? "(none)" : option.default_value);
    if (!option.env.empty()) out << "; env " << option.env;
    if (option.kind != OptionKind::kConfigFile) out << "; key " << option.key;
    out << "\n";
  }
  return out.str();
}

}  // namespace core::config
