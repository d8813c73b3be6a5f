// pose serve: the pose service (pose::service) on an HTTP server until SIGINT or SIGTERM.
#include <pthread.h>

#include <csignal>
#include <cstring>
#include <iostream>

#include "analyze.h"
#include "pose/service/service.h"

namespace pose_cli {
namespace {

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

}  // namespace

int serve(const core::config::Config& config) {
  // Blocked before any thread starts, so every thread inherits the mask and only sigwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int64_t port = config.integer("serve.port");
  if (port < 0 || port > 65535) {
    std::cerr << "pose serve: --port " << port << " is not a port number (0 to 65535)\n";
    return 2;
  }
  core::LogLevel level = core::LogLevel::kInfo;
  if (!core::parse_log_level(config.text("serve.log_level"), &level)) {
    std::cerr << "pose serve: --log-level must be debug, info, warn or error\n";
    return 2;
  }
  const core::Logger logger(core::stderr_sink(), level, "pose");

  auto pipeline = pipeline_options(config);
  if (!pipeline) {
    std::cerr << "pose serve: " << pipeline.error().message << "\n";
    return 2;
  }
  pose::service::ServiceOptions options;
  options.pipeline = std::move(*pipeline);
  options.pipeline.logger = logger.child("pipeline");
  options.builtin_exercises = config.path("analyze.exercises_dir");
  options.data_dir = config.path("serve.data_dir");
  options.db = config.text("analyze.db");
  const int64_t retention_days = config.integer("serve.retention_days");
  if (retention_days < 0 || retention_days > 365'000) {
    std::cerr << "pose serve: --retention-days must be from 0 (forever) to 365000\n";
    return 2;
  }
  options.retention_days = static_cast<int>(retention_days);
  for (const auto& dir : config.list("serve.media_dirs")) options.media_dirs.emplace_back(dir);
  options.tokens = config.list("serve.tokens");
  options.public_read = config.boolean("serve.public_read");
  options.web_dir = config.path("serve.web_dir");
  options.default_max_side = static_cast<int>(config.integer("analyze.max_side"));
  const int64_t client_queue = config.integer("serve.client_queue");
  if (client_queue < 1) {
    std::cerr << "pose serve: --client-queue must be at least 1\n";
    return 2;
  }
  options.live.client_queue = static_cast<size_t>(client_queue);
  options.logger = logger.child("service");
  for (const auto& dir : options.media_dirs) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // the default var/media, so that files can be put there
  }

  const std::string& host = config.text("serve.host");
  if (options.tokens.empty() && !is_loopback(host)) {
    logger.warn("listening on ", host, " without --token: anyone who can reach it can add and delete streams");
  }
  const int64_t max_body = config.integer("serve.max_body");
  if (max_body < 1024) {
    std::cerr << "pose serve: --max-body must be at least 1024 bytes\n";
    return 2;
  }

  logger.info("loading ", options.pipeline.estimator.model, " and opening the event store...");
  auto service = pose::service::Service::create(options);
  if (!service) {
    std::cerr << "pose serve: " << service.error().message << "\n";
    return 1;
  }
  server::http::ServerOptions server_options;
  server_options.host = host;
  server_options.port = static_cast<uint16_t>(port);
  server_options.threads = 4;  // handlers are short; WebSocket writes are asynchronous
  server_options.max_body_bytes = static_cast<size_t>(max_body);
  server_options.cors_allowed_origins = config.list("serve.cors_origins");
  server_options.logger = logger.child("http");
  auto server = server::http::Server::create(server_options, (*service)->router());
  if (!server) {
    std::cerr << "pose serve: " << server.error().message << "\n";
    return 1;
  }
  // Tests and scripts read the port from this line when they asked for any free one.
  std::cout << "pose serve: listening on http://" << host << ":" << (*server)->port() << std::endl;

  int received = 0;
  sigwait(&stop_signals, &received);
  logger.info(strsignal(received), ": shutting down (running streams start again with the service)");
  (*server)->stop();
  service->reset();
  return 0;
}

}  // namespace pose_cli
