#pragma once
// Configuration: one option table per application, resolved from layered sources.
//
// Each option is declared once (config-file key, command-line flag, environment variable, default, help) and
// its value comes from the highest-priority source that sets it:
//   default  <  TOML files (in table order: machine profile, then --config)  <  environment  <  flags.
// Files are themselves options of kind kConfigFile, so their paths follow the same rules. A file named
// explicitly (by flag or environment) must exist; a default path that does not exist is skipped, so a machine
// without a profile still runs. Every value is validated at resolution, and every error names its source.
//
// Thread-safety: a resolved Config is immutable and may be read from any thread.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace core::config {

enum class OptionKind {
  kString,
  kInt,
  kFloat,
  kBool,
  kBytes,  // "8GB" (10^9), "8GiB" (2^30), "512MB", or a plain number of bytes
  kPath,
  kConfigFile,  // a path to a TOML file that becomes a source for the other options
};

struct Option {
  std::string key;            // dotted config-file key, e.g. "pose.batch_size"; section "pose" in TOML
  std::string flag;           // flag name without dashes ("batch-size" means --batch-size); empty: no flag
  std::string env;            // environment variable, e.g. "POSE_BATCH_SIZE"; empty: none
  std::string default_value;  // as text, parsed like every other source
  std::string help;
  OptionKind kind = OptionKind::kString;
  std::vector<std::string> choices = {};  // allowed values; empty: any value of the kind
};

struct Sources {
  std::vector<std::string> args;  // command-line arguments, without the program name
  // Seam for tests; the default reads the process environment.
  std::function<std::optional<std::string>(const std::string&)> getenv = nullptr;
};

class Config {
 public:
  // Resolves every option in `table`. Unknown flags, unknown keys in the table's own sections, malformed TOML
  // and values of the wrong kind are errors that name the file, variable or flag they came from.
  static Result<Config> resolve(std::span<const Option> table, const Sources& sources);

  // Typed getters; the key must be in the table (checked by assert: a wrong key is a programming error).
  const std::string& text(std::string_view key) const;
  int64_t integer(std::string_view key) const;
  double number(std::string_view key) const;
  bool boolean(std::string_view key) const;
  uint64_t bytes(std::string_view key) const;
  std::filesystem::path path(std::string_view key) const;
  // A comma-separated value's items ("a, b,,c" is a, b, c): spaces around each item trimmed, empty items dropped.
  std::vector<std::string> list(std::string_view key) const;

  // Where the value came from: "default", "file /path", "env NAME", "flag --name".
  const std::string& origin(std::string_view key) const;
  // True when a source other than the default set the value.
  bool is_set(std::string_view key) const;

  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }

  // "key = value   # origin" lines, for --print-config.
  std::string describe() const;

 private:
  struct Value {
    std::string text;
    std::string origin;
    bool set = false;
  };
  const Value& find(std::string_view key) const;

  std::map<std::string, Value, std::less<>> values_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
};

// Help text listing every flag with its environment variable, config key and default.
std::string usage(std::span<const Option> table);

Result<uint64_t> parse_bytes(std::string_view text);
// 8000000000 -> "8.00 GB"; uses SI units to match parse_bytes("8GB").
std::string format_bytes(uint64_t bytes);

}  // namespace core::config
