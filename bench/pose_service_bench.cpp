// The pose service under many live clients: does watching slow the pipeline? The same streams are analysed with no
// client (the peer run) and with N WebSocket clients, some of which never read; runs alternate and each
// configuration's median is reported, with the ratio to the peer. Clients are blocking Beast clients, one thread
// each, on the same machine: their cost is part of what is measured.
//
//   pose_service_bench [--streams 4] [--clients 100] [--slow 10] [--runs 3] [--source squat_18.mp4] [--loops 2]
//                      [--client-queue 256] [--realtime]
// Prints one JSON object.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/libtorch/libtorch.h"
#include "pose/analysis/analysis.h"
#include "pose/service/service.h"
#include "server/http/test_client.h"

namespace {

using nlohmann::json;
using server::http::test_support::Client;
using server::http::test_support::WebSocketClient;

struct Args {
  int streams = 4;
  int clients = 100;
  int slow = 10;
  int runs = 3;
  int loops = 2;
  int client_queue = 256;  // the service's --client-queue
  bool realtime = false;
  std::string source = std::string(WB_SHARED_DIR) + "/testdata/videos/squat_18.mp4";
};

Args parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (flag == "--streams")
      args.streams = std::stoi(next());
    else if (flag == "--clients")
      args.clients = std::stoi(next());
    else if (flag == "--slow")
      args.slow = std::stoi(next());
    else if (flag == "--runs")
      args.runs = std::stoi(next());
    else if (flag == "--loops")
      args.loops = std::stoi(next());
    else if (flag == "--source")
      args.source = next();
    else if (flag == "--realtime")
      args.realtime = true;
    else
      throw std::runtime_error("unknown flag " + flag);
  }
  return args;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(q * static_cast<double>(values.size())))];
}

struct RunResult {
  double seconds = 0;
  double frames_per_s = 0;
  double latency_p50_ms = 0, latency_p95_ms = 0;  // decoded -> published, from the frames a client saw
  int64_t frames = 0;
  int64_t dropped_for_slow = 0;          // pose_ws_messages_dropped_total
  double fast_client_frames_median = 0;  // frames each reading client received
  int64_t fast_clients_complete = 0;     // reading clients that saw every stream's end
};

int64_t metric(const std::string& text, const std::string& name) {
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::stoll(text.substr(at + name.size() + 2));
}

RunResult run_once(const Args& args, int clients, const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  pose::service::ServiceOptions options;
  options.pipeline.estimator.model = "movenet-lightning";
  options.pipeline.estimator.track = false;
  options.pipeline.max_batch = 8;
  options.builtin_exercises = pose::analysis::default_exercise_dir();
  options.data_dir = dir;
  options.media_dirs = {std::filesystem::path(args.source).parent_path()};
  options.live.client_queue = static_cast<size_t>(args.client_queue);
  auto service = pose::service::Service::create(options);
  if (!service) throw std::runtime_error(service.error().message);
  server::http::ServerOptions server_options;
  server_options.threads = 2;
  auto server = server::http::Server::create(server_options, (*service)->router());
  if (!server) throw std::runtime_error(server.error().message);
  const uint16_t port = (*server)->port();

  std::vector<std::string> ids;
  for (int i = 0; i < args.streams; ++i) {
    ids.push_back("s" + std::to_string(i + 1));
    const json request = {{"id", ids.back()},          {"source", args.source}, {"exercise", "squat"},
                          {"realtime", args.realtime}, {"loops", args.loops},   {"start", false}};
    if (Client(port).post("/api/v1/streams", request.dump()).status != 201) throw std::runtime_error("add failed");
  }

  // Clients spread over the streams; the first `slow` of them never read.

  std::vector<std::unique_ptr<WebSocketClient>> sockets;
  for (int i = 0; i < clients; ++i) {
    // The slow ones ask for images too (30 fps, tens of kB each), so their queues fill for real.
    const std::string target =
        "/api/v1/streams/" + ids[static_cast<size_t>(i) % ids.size()] + "/live" + (i < args.slow ? "?jpeg_fps=30" : "");
    sockets.push_back(std::make_unique<WebSocketClient>(port, target));
    if (!sockets.back()->open()) throw std::runtime_error("a client could not connect");
  }
  std::vector<int64_t> received(static_cast<size_t>(clients), 0);
  std::vector<char> complete(static_cast<size_t>(clients), 0);
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::vector<std::thread> readers;
  for (int i = std::min(args.slow, clients); i < clients; ++i) {
    readers.emplace_back([&, i] {
      const auto index = static_cast<size_t>(i);
      // Parsing every frame would make the clients, on the same cores, the bottleneck: frames are counted by their
      // type and every tenth is parsed for its latency.
      while (auto text = sockets[index]->read()) {
        if (text->rfind(R"({"batch")", 0) == 0 || text->find(R"("type":"frame")") != std::string::npos) {
          if (received[index]++ % 10 == 0) {
            const json message = json::parse(*text, nullptr, false);
            if (!message.is_discarded()) latencies[index].push_back(message["latency_ms"]["total"].get<double>());
          }
        } else if (text->find(R"("type":"status")") != std::string::npos &&
                   text->find(R"("state":"ended")") != std::string::npos) {
          complete[index] = 1;
          break;
        }
      }
    });
  }

  const auto started = std::chrono::steady_clock::now();
  for (const auto& id : ids) Client(port).post("/api/v1/streams/" + id + "/start", "{}");
  const auto all_ended = [&] {
    const json streams = Client(port).get("/api/v1/streams").json()["streams"];
    return std::all_of(streams.begin(), streams.end(), [](const json& s) { return s["state"] == "ended"; });
  };
  while (!all_ended()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  RunResult result;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const json streams = Client(port).get("/api/v1/streams").json()["streams"];
  for (const auto& stream : streams) {
    result.frames += stream["stats"]["frames_analysed"].get<int64_t>();
  }
  result.frames_per_s = static_cast<double>(result.frames) / result.seconds;
  for (auto& reader : readers) reader.join();
  const std::string metrics = Client(port).get("/metrics").body;
  result.dropped_for_slow = metric(metrics, "pose_ws_messages_dropped_total");
  std::vector<double> per_client, all_latencies;
  for (int i = std::min(args.slow, clients); i < clients; ++i) {
    const auto index = static_cast<size_t>(i);
    per_client.push_back(static_cast<double>(received[index]));
    result.fast_clients_complete += complete[index];
    all_latencies.insert(all_latencies.end(), latencies[index].begin(), latencies[index].end());
  }
  result.fast_client_frames_median = median(per_client);
  result.latency_p50_ms = percentile(all_latencies, 0.5);
  result.latency_p95_ms = percentile(all_latencies, 0.95);
  sockets.clear();
  (*server)->stop();
  service->reset();
  std::filesystem::remove_all(dir);
  return result;
}

json summary(const std::vector<RunResult>& runs) {
  std::vector<double> fps, p50, p95, seconds;
  for (const auto& r : runs) {
    fps.push_back(r.frames_per_s);
    p50.push_back(r.latency_p50_ms);
    p95.push_back(r.latency_p95_ms);
    seconds.push_back(r.seconds);
  }
  json out = {
      {"frames_per_s_median", median(fps)}, {"seconds_median", median(seconds)}, {"frames", runs.front().frames}};
  if (runs.front().fast_client_frames_median > 0) {
    out["latency_p50_ms_median"] = median(p50);
    out["latency_p95_ms_median"] = median(p95);
    out["fast_client_frames_median"] = runs.back().fast_client_frames_median;
    out["fast_clients_that_saw_every_end"] = runs.back().fast_clients_complete;
    out["messages_dropped_for_slow_clients"] = runs.back().dropped_for_slow;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  core::libtorch::set_threads(0);
  const auto dir = std::filesystem::temp_directory_path() / "pose_service_bench";
  std::vector<RunResult> alone, watched;
  std::cerr << "warm-up run (not counted): the first inferences in a process are slower\n";
  run_once(args, 0, dir);
  for (int run = 0; run < args.runs; ++run) {
    std::cerr << "run " << run + 1 << "/" << args.runs << ": no clients, then " << args.clients << " clients ("
              << args.slow << " never read)\n";
    alone.push_back(run_once(args, 0, dir));
    watched.push_back(run_once(args, args.clients, dir));
  }
  json out = {{"bench", "pose_service"},
              {"streams", args.streams},
              {"clients", args.clients},
              {"slow_clients", args.slow},
              {"source", std::filesystem::path(args.source).filename().string()},
              {"loops", args.loops},
              {"client_queue", args.client_queue},
              {"realtime", args.realtime},
              {"runs", args.runs},
              {"cores", std::thread::hardware_concurrency()},
              {"peer_no_clients", summary(alone)},
              {"with_clients", summary(watched)}};
  out["throughput_ratio_with_clients"] = out["with_clients"]["frames_per_s_median"].get<double>() /
                                         out["peer_no_clients"]["frames_per_s_median"].get<double>();
  std::cout << out.dump(2) << "\n";
  return 0;
}
