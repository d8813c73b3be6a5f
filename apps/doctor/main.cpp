// doctor: validates the environment, detects GPUs, measures what is cheap to measure, and writes the machine
// profile both tools read. Exit codes: 0 all required checks pass, 1 a required check failed, 2 bad usage or
// configuration.
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "checks.h"
#include "core/build_info.h"
#include "core/config/config.h"
#include "core/libtorch/libtorch.h"
#include "core/log.h"
#include "core/profile/profile.h"
#include "pose/models/models.h"
#include "pose/probe/probe.h"
#include "vram/transfer/transfer.h"

namespace {

using core::config::Option;
using core::config::OptionKind;

std::vector<Option> option_table() {
  const std::string workspace = core::kWorkspaceDir;
  return {
      {"config", "config", "DOCTOR_CONFIG", "", "TOML config file", OptionKind::kConfigFile},
      {"doctor.profile_out", "profile-out", "WB_PROFILE", workspace + "/var/machine-profile.toml",
       "where to write the machine profile", OptionKind::kPath},
      {"doctor.write_profile", "write-profile", "", "true", "write the machine profile", OptionKind::kBool},
      {"doctor.measure", "measure", "DOCTOR_MEASURE", "true",
       "time a few inference runs and host-to-device copies for the profile (--measure=false skips)",
       OptionKind::kBool},
      {"doctor.json", "json", "", "false", "print the report as JSON on stdout", OptionKind::kBool},
      {"doctor.color", "color", "", "auto", "colour the table", OptionKind::kString, {"auto", "always", "never"}},
      {"models.dir", "models-dir", "WB_MODELS_DIR", pose::models::default_model_dir().string(),
       "folder holding the pose model files", OptionKind::kPath},
      {"doctor.nvml_library", "nvml-library", "WB_NVML_LIBRARY", core::sys::kNvmlLibrary,
       "NVML library to load (tests point this elsewhere)", OptionKind::kString},
      {"doctor.log_level",
       "log-level",
       "WB_LOG_LEVEL",
       "info",
       "debug, info, warn or error",
       OptionKind::kString,
       {"debug", "info", "warn", "error"}},
  };
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

core::profile::Measurements measure(const doctor::Facts& facts, const core::Logger& log) {
  core::profile::Measurements measured;
  const bool cuda = facts.libtorch.cuda_available;
  log.info("measuring pose inference speed on ", cuda ? "cuda" : "cpu", " (a few seconds)...");
  pose::probe::ProbeOptions probe;
  probe.cuda = cuda;
  if (auto result = pose::probe::measure_proxy_latency(probe)) {
    measured.pose_proxy_ms = result->median_ms;
    measured.pose_proxy_device = cuda ? "cuda" : "cpu";
  } else {
    log.warn("pose measurement failed: ", result.error().message);
  }
  if (cuda) {
    log.info("measuring host-to-device bandwidth...");
    if (auto bandwidth = vram::transfer::measure_bandwidth({})) {
      measured.h2d_pinned_gb_per_s = bandwidth->pinned_gb_per_s;
      measured.h2d_pageable_gb_per_s = bandwidth->pageable_gb_per_s;
    } else {
      log.warn("bandwidth measurement failed: ", bandwidth.error().message);
    }
  }
  return measured;
}

nlohmann::json to_json(const std::vector<doctor::Check>& checks, const core::profile::MachineProfile& profile,
                       const std::string& profile_path) {
  nlohmann::json report;
  report["ok"] = doctor::exit_code(checks) == 0;
  for (const auto& check : checks) {
    report["checks"].push_back({{"group", check.group},
                                {"name", check.name},
                                {"status", doctor::to_string(check.status)},
                                {"detail", check.detail},
                                {"fix", check.fix}});
  }
  report["profile"] = {{"path", profile_path},
                       {"hardware_class", profile.hardware_class},
                       {"pose",
                        {{"device", profile.pose.device},
                         {"model", profile.pose.model},
                         {"precision", profile.pose.precision},
                         {"batch_size", profile.pose.batch_size},
                         {"streams_per_device", profile.pose.streams_per_device},
                         {"threads", profile.pose.threads}}},
                       {"vram", {{"device", profile.vram.device}, {"budget_bytes", profile.vram.budget_bytes}}},
                       {"measured",
                        {{"pose_proxy_ms", profile.measured.pose_proxy_ms},
                         {"h2d_pinned_gb_per_s", profile.measured.h2d_pinned_gb_per_s},
                         {"h2d_pageable_gb_per_s", profile.measured.h2d_pageable_gb_per_s}}},
                       {"reasons", profile.reasons}};
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  const auto table = option_table();
  core::config::Sources sources;
  sources.args.assign(argv + 1, argv + argc);
  auto config = core::config::Config::resolve(table, sources);
  if (!config) {
    std::cerr << "doctor: " << config.error().message << "\n";
    return 2;
  }
  if (config->help_requested()) {
    std::cout << "Usage: doctor [options]\nChecks this machine for the pose analyzer and the VRAM optimizer and "
                 "writes a tuned machine profile.\n\n"
              << core::config::usage(table);
    return 0;
  }
  if (!config->positional().empty()) {
    std::cerr << "doctor: unexpected argument '" << config->positional().front() << "'; --help lists the options\n";
    return 2;
  }
  core::LogLevel level = core::LogLevel::kInfo;
  core::parse_log_level(config->text("doctor.log_level"), &level);
  const core::Logger log(core::stderr_sink(), level, "doctor");

  core::libtorch::set_threads(0);
  const auto profile_path = config->path("doctor.profile_out");
  doctor::GatherOptions gather;
  gather.model_dir = config->path("models.dir");
  gather.data_dir = profile_path.parent_path().empty() ? "." : profile_path.parent_path();
  std::error_code ec;
  if (!std::filesystem::exists(gather.data_dir, ec)) gather.data_dir = ".";
  gather.nvml_library = config->text("doctor.nvml_library");
  log.info("checking this machine (model files are hashed: a few seconds)...");
  const doctor::Facts facts = doctor::gather(gather);
  const std::vector<doctor::Check> checks = doctor::evaluate(facts);

  core::profile::MachineFacts machine;
  if (facts.cpu) machine.cpu = *facts.cpu;
  if (facts.memory) machine.memory = *facts.memory;
  machine.gpus = facts.gpus;
  machine.libtorch_cuda = facts.libtorch.cuda_available;
  const core::profile::Measurements measured =
      config->boolean("doctor.measure") ? measure(facts, log) : core::profile::Measurements{};
  const core::profile::MachineProfile profile = core::profile::derive_profile(machine, measured, utc_now());

  std::string written;
  if (config->boolean("doctor.write_profile")) {
    std::filesystem::create_directories(profile_path.parent_path(), ec);
    std::ofstream out(profile_path);
    out << core::profile::to_toml(profile);
    if (!out) {
      std::cerr << "doctor: cannot write the machine profile to " << profile_path.string()
                << ": choose another path with --profile-out\n";
      return 2;
    }
    written = profile_path.string();
  }

  if (config->boolean("doctor.json")) {
    std::cout << to_json(checks, profile, written).dump(2) << "\n";
  } else {
    const std::string color = config->text("doctor.color");
    const bool paint = color == "always" || (color == "auto" && isatty(STDOUT_FILENO));
    std::cout << doctor::render_table(checks, paint) << "\n";
    std::cout << "Machine profile (" << profile.hardware_class << ")"
              << (written.empty() ? " not written" : " written to " + written) << ":\n";
    for (const auto& reason : profile.reasons) std::cout << "  " << reason << "\n";
    std::cout << (doctor::exit_code(checks) == 0 ? "\nAll required checks passed.\n"
                                                 : "\nA required check failed: see the fix lines above.\n");
  }
  return doctor::exit_code(checks);
}
