// vram: the VRAM optimizer's command line. Commands:
//   vram profile     run one step of a workload and attribute its memory to stages (table, JSON, HTML)
//   vram estimate    predict a workload's peak memory from its shapes
//   vram batch       find the largest batch that fits a memory budget
//   vram fit         choose how a workload fits a budget (checkpointing, offload, weight streaming, ...), run it
//   vram bench       fit at several budgets: the memory/throughput curve
//   vram bandwidth   measure host-to-device and device-to-host copy bandwidth (pinned and pageable)
//   vram exporter    serve Prometheus metrics of this machine's GPUs until SIGINT/SIGTERM
//   vram serve       the exporter plus the REST API (estimates, profiling and batch-search jobs)
#include <pthread.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/config/config.h"
#include "core/libtorch/libtorch.h"
#include "core/metrics/metrics.h"
#include "core/sys/sys.h"
#include "vram/transfer/transfer.h"
#ifdef WB_HAVE_SERVER
#include "serve.h"
#include "server/http/http.h"
#endif

namespace {

using core::config::Option;
using core::config::OptionKind;

std::vector<Option> option_table() {
  std::vector<Option> table = {
      {"config", "config", "VRAM_CONFIG", "", "TOML config file", OptionKind::kConfigFile},
      {"vram.transfer_bytes", "bytes", "", "256MiB", "size of each timed copy", OptionKind::kBytes},
      {"vram.json", "json", "", "false", "print JSON", OptionKind::kBool},
      {"vram.host", "host", "VRAM_HOST", "127.0.0.1", "exporter, serve: address to listen on (0.0.0.0: every one)",
       OptionKind::kString},
      {"vram.port", "port", "VRAM_PORT", "9401",
       "exporter, serve: port to listen on (0: any free one); serve's default is 8401", OptionKind::kInt},
      {"vram.cors_origins", "cors-origins", "VRAM_CORS_ORIGINS", "",
       "serve: comma-separated origins whose web pages may call the API (* for any); none by default",
       OptionKind::kString},
      {"vram.nvml_library", "nvml-library", "WB_NVML_LIBRARY", core::sys::kNvmlLibrary,
       "exporter, serve: NVML library to load (tests point this elsewhere)", OptionKind::kString},
      {"vram.log_level",
       "log-level",
       "WB_LOG_LEVEL",
       "info",
       "debug, info, warn or error",
       OptionKind::kString,
       {"debug", "info", "warn", "error"}},
  };
  for (auto& option : vram_cli::workload_options()) table.push_back(std::move(option));
  return table;
}

#ifdef WB_HAVE_SERVER
constexpr int64_t kServePort = 8401;  // vram.port's default (9401) is the exporter's

// The work behind `vram serve`'s API: the estimator, the profiler and the batch finder. Jobs record their
// allocator statistics into `metrics`, which lives as long as the service.
vram_cli::ServeActions make_actions(vram_cli::AllocatorMetrics* metrics) {
  vram_cli::ServeActions actions;
  actions.estimate = [](const nlohmann::json& request) { return vram_cli::estimate_request(request); };
  actions.profile = [metrics](const nlohmann::json& request, const vram_cli::Progress& progress) {
    return vram_cli::profile_request(request, metrics, progress);
  };
  actions.batch = [metrics](const nlohmann::json& request, const vram_cli::Progress& progress) {
    return vram_cli::batch_request(request, metrics, progress);
  };
  actions.fit = [metrics](const nlohmann::json& request, const vram_cli::Progress& progress) {
    return vram_cli::fit_request(request, metrics, progress);
  };
  return actions;
}

// vram exporter / vram serve: listens until SIGINT or SIGTERM, then stops the server and the job worker.
int serve(const core::config::Config& config, vram_cli::Api api) {
  const char* command = api == vram_cli::Api::kServe ? "vram serve" : "vram exporter";
  // Blocked before any thread starts, so every thread inherits the mask and only sigwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int64_t port =
      api == vram_cli::Api::kServe && !config.is_set("vram.port") ? kServePort : config.integer("vram.port");
  if (port < 0 || port > 65535) {
    std::cerr << command << ": --port " << port << " is not a port number (0 to 65535)\n";
    return 2;
  }
  core::LogLevel level = core::LogLevel::kInfo;
  core::parse_log_level(config.text("vram.log_level"), &level);
  const core::Logger logger(core::stderr_sink(), level, "vram");

  core::metrics::Registry registry;
  auto allocator_metrics = vram_cli::AllocatorMetrics::create(registry);
  if (!allocator_metrics) {
    std::cerr << command << ": " << allocator_metrics.error().message << "\n";
    return 1;
  }
  vram_cli::ServeOptions options;
  options.api = api;
  options.nvml_library = config.text("vram.nvml_library");
  options.logger = logger.child("serve");
  auto service = vram_cli::Service::create(
      options, api == vram_cli::Api::kServe ? make_actions(&*allocator_metrics) : vram_cli::ServeActions{}, registry);
  if (!service) {
    std::cerr << command << ": " << service.error().message << "\n";
    return 1;
  }
  server::http::ServerOptions server_options;
  server_options.host = config.text("vram.host");
  server_options.port = static_cast<uint16_t>(port);
  server_options.cors_allowed_origins = config.list("vram.cors_origins");
  server_options.logger = logger.child("http");
  auto server = server::http::Server::create(server_options, (*service)->router());
  if (!server) {
    std::cerr << command << ": " << server.error().message << "\n";
    return 1;
  }
  // Tests and scripts read the port from this line when they asked for any free one.
  std::cout << command << ": listening on http://" << server_options.host << ":" << (*server)->port() << std::endl;

  int received = 0;
  sigwait(&stop_signals, &received);
  logger.info(strsignal(received), ": shutting down");
  (*server)->stop();
  return 0;
}

#else
// Without Boost (libboost-dev) this build has no HTTP server.
int serve_unavailable(const char* command) {
  std::cerr << "vram " << command << ": this build has no HTTP server; install libboost-dev and rebuild\n";
  return 1;
}
#endif

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
                 "  profile     run a step and show where its memory goes, stage by stage (--html for a timeline)\n"
                 "  estimate    predict a step's peak memory from shapes alone, in microseconds\n"
                 "  batch       find the largest batch that fits a budget (--budget 16GB), in a few real steps\n"
                 "  fit         make a step fit a budget (--budget 8GB): the fastest plan, applied and measured\n"
                 "  bench       fit at each of --budgets: the memory/throughput curve as JSON lines\n"
                 "  bandwidth   measure host<->device copy bandwidth (needs a CUDA GPU)\n"
                 "  exporter    Prometheus metrics of the GPUs at http://HOST:PORT/metrics (port 9401)\n"
                 "  serve       the exporter plus the REST API under /api/v1 (port 8401)\n\n"
              << core::config::usage(table);
    return args.empty() && !config->help_requested() ? 2 : 0;
  }
  core::libtorch::set_threads(0);
  core::libtorch::use_expandable_segments();
  if (args.front() == "bandwidth") return bandwidth(*config);
  if (args.front() == "profile") return vram_cli::profile_command(*config);
  if (args.front() == "estimate") return vram_cli::estimate_command(*config);
  if (args.front() == "batch") return vram_cli::batch_command(*config);
  if (args.front() == "fit") return vram_cli::fit_command(*config);
  if (args.front() == "bench") return vram_cli::bench_command(*config);
#ifdef WB_HAVE_SERVER
  if (args.front() == "exporter") return serve(*config, vram_cli::Api::kExporter);
  if (args.front() == "serve") return serve(*config, vram_cli::Api::kServe);
#else
  if (args.front() == "exporter" || args.front() == "serve") return serve_unavailable(args.front().c_str());
#endif
  std::cerr << "vram: unknown command '" << args.front() << "'; `vram --help` lists the commands\n";
  return 2;
}
