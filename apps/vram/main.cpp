// vram: the VRAM optimizer's command line. Commands:
//   vram bandwidth   measure host-to-device and device-to-host copy bandwidth (pinned and pageable)
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/config/config.h"
#include "core/libtorch/libtorch.h"
#include "vram/transfer/transfer.h"

namespace {

using core::config::Option;
using core::config::OptionKind;

std::vector<Option> option_table() {
  return {
      {"config", "config", "VRAM_CONFIG", "", "TOML config file", OptionKind::kConfigFile},
      {"vram.transfer_bytes", "bytes", "", "256MiB", "size of each timed copy", OptionKind::kBytes},
      {"vram.json", "json", "", "false", "print JSON", OptionKind::kBool},
  };
}

int bandwidth(const core::config::Config& config) {
  vram::transfer::BandwidthOptions options;
  options.bytes = config.bytes("vram.transfer_bytes");
  auto result = vram::transfer::measure_bandwidth(options);
  if (!result) {
    std::cerr << "vram bandwidth: " << result.error().message << "\n";
    return 1;
  }
  if (config.boolean("vram.json")) {
    std::cout << nlohmann::json{{"bytes", options.bytes},
                                {"h2d_pinned_gb_per_s", result->pinned_gb_per_s},
                                {"h2d_pageable_gb_per_s", result->pageable_gb_per_s},
                                {"d2h_pinned_gb_per_s", result->device_to_host_pinned_gb_per_s}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "host -> device, pinned:   " << result->pinned_gb_per_s << " GB/s\n"
              << "host -> device, pageable: " << result->pageable_gb_per_s << " GB/s\n"
              << "device -> host, pinned:   " << result->device_to_host_pinned_gb_per_s << " GB/s\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto table = option_table();
  core::config::Sources sources;
  sources.args.assign(argv + 1, argv + argc);
  auto config = core::config::Config::resolve(table, sources);
  if (!config) {
    std::cerr << "vram: " << config.error().message << "\n";
    return 2;
  }
  const auto& args = config->positional();
  if (config->help_requested() || args.empty()) {
    std::cout << "Usage: vram COMMAND [options]\n\nCommands:\n"
                 "  bandwidth   measure host<->device copy bandwidth (needs a CUDA GPU)\n\n"
              << core::config::usage(table);
    return args.empty() && !config->help_requested() ? 2 : 0;
  }
  core::libtorch::set_threads(0);
  if (args.front() == "bandwidth") return bandwidth(*config);
  std::cerr << "vram: unknown command '" << args.front() << "'; `vram --help` lists the commands\n";
  return 2;
}
