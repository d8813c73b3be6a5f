#include "core/metrics/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace core::metrics {
namespace {

TEST(Metrics, ExposesCountersGaugesAndHistogramsInRegistrationOrder) {
  Registry registry;
  auto frames = registry.counter("pose_frames_total", "Frames analysed.", {"stream"});
  ASSERT_TRUE(frames.ok());
  auto depth = registry.gauge("pose_queue_depth", "Frames waiting.\nPer stream.");
  ASSERT_TRUE(depth.ok());
  auto latency = registry.histogram("pose_latency_seconds", "End-to-end latency.", {0.01, 0.1}, {"stream"});
  ASSERT_TRUE(latency.ok());

  (*frames)->with({"cam \"1\""}).inc();
  (*frames)->with({"cam \"1\""}).inc(2);
  (*depth)->with({}).set(3.5);
  auto& hist = (*latency)->with({"a"});
  hist.observe(0.005);
  hist.observe(0.01);  // on the bound: counted in le="0.01"
  hist.observe(0.5);

  EXPECT_EQ(registry.prometheus_text(),
            "# HELP pose_frames_total Frames analysed.\n"
            "# TYPE pose_frames_total counter\n"
            "pose_frames_total{stream=\"cam \\\"1\\\"\"} 3\n"
            "# HELP pose_queue_depth Frames waiting.\\nPer stream.\n"
            "# TYPE pose_queue_depth gauge\n"
            "pose_queue_depth 3.5\n"
            "# HELP pose_latency_seconds End-to-end latency.\n"
            "# TYPE pose_latency_seconds histogram\n"
            "pose_latency_seconds_bucket{stream=\"a\",le=\"0.01\"} 2\n"
            "pose_latency_seconds_bucket{stream=\"a\",le=\"0.10000000000000001\"} 2\n"
            "pose_latency_seconds_bucket{stream=\"a\",le=\"+Inf\"} 3\n"
            "pose_latency_seconds_sum{stream=\"a\"} 0.51500000000000001\n"
            "pose_latency_seconds_count{stream=\"a\"} 3\n");
}

TEST(Metrics, RejectsBadNamesDuplicatesAndCountersWithoutTotal) {
  Registry registry;
  EXPECT_FALSE(registry.counter("frames", "no suffix").ok());
  EXPECT_FALSE(registry.gauge("9lives", "bad start").ok());
  EXPECT_FALSE(registry.gauge("ok_name", "reserved label", {"__x"}).ok());
  EXPECT_FALSE(registry.gauge("ok_name", "bucket label", {"le"}).ok());
  EXPECT_TRUE(registry.gauge("ok_name", "fine", {"stream"}).ok());
  EXPECT_FALSE(registry.gauge("ok_name", "duplicate").ok());
  EXPECT_FALSE(registry.histogram("h_seconds", "unsorted", {1.0, 0.5}).ok());
  EXPECT_FALSE(registry.histogram("h_seconds", "empty", {}).ok());
}

TEST(Metrics, CounterIgnoresNegativeIncrements) {
  Counter counter;
  counter.inc(-5);
  EXPECT_EQ(counter.value(), 0.0);
}

TEST(Metrics, ConcurrentRecordingLosesNothing) {
  Registry registry;
  auto family = registry.counter("work_total", "Work done.", {"worker"}).value();
  auto histogram = registry.histogram("work_seconds", "Work time.", exponential_buckets(0.001, 2, 10)).value();
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        family->with({t % 2 == 0 ? "even" : "odd"}).inc();
        histogram->with({}).observe(0.002);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(family->with({"even"}).value() + family->with({"odd"}).value(), 40000.0);
  EXPECT_EQ(histogram->with({}).snapshot().cumulative_counts.back(), 40000u);
}

TEST(Metrics, ExponentialBuckets) { EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8})); }

}  // namespace
}  // namespace core::metrics
