// The exposition is checked by the real `promtool check metrics` from Debian's prometheus package, which lints
// names, types, suffixes and syntax the way a Prometheus server's scraper and its users' tooling will.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "core/metrics/metrics.h"

namespace core::metrics {
namespace {

std::string run(const std::string& command, int* exit_code) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  char buffer[512];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  *exit_code = pclose(pipe);
  return output;
}

TEST(Promtool, AcceptsOurExposition) {
  Registry registry;
  auto frames = registry.counter("pose_frames_total", "Frames analysed per stream.", {"stream"}).value();
  auto dropped =
      registry.counter("pose_frames_dropped_total", "Frames dropped, by reason.", {"stream", "reason"}).value();
  auto memory = registry.gauge("vram_gpu_memory_used_bytes", "GPU memory in use.", {"gpu", "name"}).value();
  auto latency = registry
                     .histogram("pose_frame_latency_seconds", "Frame arrival to result published.",
                                exponential_buckets(0.001, 2, 12), {"stream"})
                     .value();
  frames->with({"front-door"}).inc(42);
  dropped->with({"front-door", "stale"}).inc(3);
  dropped->with({"back \"yard\"\nline", "queue_full"}).inc();
  memory->with({"0", "NVIDIA H100 80GB HBM3"}).set(1.5e9);
  for (double v : {0.004, 0.012, 0.020, 0.3, 9.0}) latency->with({"front-door"}).observe(v);

  const std::string path = ::testing::TempDir() + "promtool_metrics.txt";
  std::ofstream(path) << registry.prometheus_text();
  int exit_code = -1;
  const std::string output = run(std::string(WB_PROMTOOL) + " check metrics < " + path + " 2>&1", &exit_code);
  EXPECT_EQ(exit_code, 0) << output << "\n--- exposition ---\n" << registry.prometheus_text();
  EXPECT_EQ(output, "") << "promtool printed lint findings";
}

TEST(Promtool, RejectsBrokenExpositionSoTheCheckIsReal) {
  const std::string path = ::testing::TempDir() + "promtool_broken.txt";
  std::ofstream(path) << "# TYPE frames counter\nframes{stream=\"a\" 1\n";
  int exit_code = 0;
  const std::string output = run(std::string(WB_PROMTOOL) + " check metrics < " + path + " 2>&1", &exit_code);
  EXPECT_NE(exit_code, 0) << output;
}

}  // namespace
}  // namespace core::metrics
