#pragma once
// Metrics: counters, gauges and histograms with labels, owned by a Registry and read out in the Prometheus text
// exposition format (version 0.0.4). Libraries receive a Registry& and record; only applications expose.
//
// Thread-safety: all methods may be called from any thread. Recording (inc, set, observe) is lock-free; looking
// up a labelled child takes the family's mutex, so hot paths look children up once and keep the reference, which
// stays valid for the Registry's lifetime.

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace core::metrics {

class Counter {
 public:
  void inc(double amount = 1.0) { value_.fetch_add(amount < 0 ? 0 : amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;         // without +Inf
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0.0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> bucket_counts_;  // per bucket, +Inf last; not cumulative
  std::atomic<double> sum_{0.0};
};

// Exponential bucket bounds: start, start*factor, ... (count bounds).
std::vector<double> exponential_buckets(double start, double factor, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

// A named metric with fixed label names; each distinct tuple of label values is one child.
template <class Metric>
class Family {
 public:
  // Label values in the order of the family's label names; their number must match (asserted).
  Metric& with(std::initializer_list<std::string_view> label_values);
  Metric& with(const std::vector<std::string>& label_values);

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> buckets)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        buckets_(std::move(buckets)) {}

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;  // histograms only
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registration fails for an invalid name or label, a counter without the _total suffix, or a name already
  // registered. Names follow Prometheus conventions with the unit in the name: pose_latency_seconds.
  Result<Family<Counter>*> counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Result<Family<Gauge>*> gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Result<Family<Histogram>*> histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                                       std::vector<std::string> label_names = {});

  // The whole registry in the Prometheus text format, families in registration order.
  std::string prometheus_text() const;

 private:
  Status check_new_name(const std::string& name, const std::vector<std::string>& label_names) const;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<std::pair<MetricType, size_t>> order_;  // registration order: type and index
};

}  // namespace core::metrics
