// pose: the pose analyzer's command line. Commands:
//   pose models   list the pretrained models and verify their files against the pinned SHA-256 digests
#include <iostream>

#include "core/config/config.h"
#include "pose/models/models.h"

namespace {

using core::config::Option;
using core::config::OptionKind;

std::vector<Option> option_table() {
  return {
      {"config", "config", "POSE_CONFIG", "", "TOML config file", OptionKind::kConfigFile},
      {"models.dir", "models-dir", "WB_MODELS_DIR", pose::models::default_model_dir().string(),
       "folder holding the pose model files", OptionKind::kPath},
  };
}

int list_models(const core::config::Config& config) {
  const auto checks = pose::models::verify_models(config.path("models.dir"));
  int failed = 0;
  for (size_t i = 0; i < checks.size(); ++i) {
    const auto& spec = pose::models::catalog()[i];
    std::cout << (checks[i].ok ? "ok    " : "FAIL  ") << spec.name << "  "
              << (spec.input_size > 0 ? std::to_string(spec.input_size) + " px" : std::string("dynamic")) << "  "
              << spec.description << "\n";
    if (!checks[i].ok) {
      std::cout << "      " << checks[i].problem << "\n";
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto table = option_table();
  core::config::Sources sources;
  sources.args.assign(argv + 1, argv + argc);
  auto config = core::config::Config::resolve(table, sources);
  if (!config) {
    std::cerr << "pose: " << config.error().message << "\n";
    return 2;
  }
  const auto& args = config->positional();
  if (config->help_requested() || args.empty()) {
    std::cout << "Usage: pose COMMAND [options]\n\nCommands:\n"
                 "  models   list the pretrained models and verify their files\n\n"
              << core::config::usage(table);
    return args.empty() && !config->help_requested() ? 2 : 0;
  }
  if (args.front() == "models") return list_models(*config);
  std::cerr << "pose: unknown command '" << args.front() << "'; `pose --help` lists the commands\n";
  return 2;
}
