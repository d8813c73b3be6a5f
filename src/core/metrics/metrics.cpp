#include "core/metrics/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <type_traits>

namespace core::metrics {
namespace {

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  // Names starting with "__" are reserved by Prometheus; "le" is the histogram bucket label.
  return valid_metric_name(name) && name.find(':') == std::string_view::npos && name.substr(0, 2) != "__" &&
         name != "le";
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// {a="x",b="y"} with an optional extra label appended (the histogram's le).
std::string label_text(const std::vector<std::string>& names, const std::vector<std::string>& values,
                       std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ",";
    out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
  }
  return out + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      bucket_counts_(std::make_unique<std::atomic<uint64_t>[]>(upper_bounds_.size() + 1)) {
  assert(std::is_sorted(upper_bounds_.begin(), upper_bounds_.end()));
}

void Histogram::observe(double value) {
  // Bucket i counts values v with bounds[i-1] < v <= bounds[i], as Prometheus' "le" requires.
  const auto bucket =
      static_cast<size_t>(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin());
  bucket_counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.upper_bounds = upper_bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += bucket_counts_[i].load(std::memory_order_relaxed);
    snap.cumulative_counts.push_back(running);
  }
  snap.sum = sum_.load(std::memory_order_relaxed);
  return snap;
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  std::vector<double> bounds;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

template <class Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& label_values) {
  assert(label_values.size() == label_names_.size() && "label value count must match the family's label names");
  const std::lock_guard lock(mutex_);
  auto& child = children_[label_values];
  if (!child) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      child = std::make_unique<Histogram>(buckets_);
    } else {
      child = std::make_unique<Metric>();
    }
  }
  return *child;
}

template <class Metric>
Metric& Family<Metric>::with(std::initializer_list<std::string_view> label_values) {
  return with(std::vector<std::string>(label_values.begin(), label_values.end()));
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Status Registry::check_new_name(const std::string& name, const std::vector<std::string>& label_names) const {
  if (!valid_metric_name(name)) {
    return make_error(ErrorCode::kInvalidArgument, "metric name '" + name + "' is not a valid Prometheus name");
  }
  for (const auto& label : label_names) {
    if (!valid_label_name(label)) {
      return make_error(ErrorCode::kInvalidArgument, "label name '" + label + "' of metric '" + name + "' is invalid");
    }
  }
  const auto taken = [&](const auto& families) {
    return std::any_of(families.begin(), families.end(), [&](const auto& f) { return f->name_ == name; });
  };
  if (taken(counters_) || taken(gauges_) || taken(histograms_)) {
    return make_error(ErrorCode::kInvalidArgument, "metric '" + name + "' is already registered");
  }
  return {};
}

Result<Family<Counter>*> Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  const std::lock_guard lock(mutex_);
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0) {
    return make_error(ErrorCode::kInvalidArgument, "counter '" + name + "' must end in _total");
  }
  if (Status status = check_new_name(name, label_names); !status) return status.error();
  counters_.emplace_back(new Family<Counter>(std::move(name), std::move(help), std::move(label_names), {}));
  order_.emplace_back(MetricType::kCounter, counters_.size() - 1);
  return counters_.back().get();
}

Result<Family<Gauge>*> Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  const std::lock_guard lock(mutex_);
  if (Status status = check_new_name(name, label_names); !status) return status.error();
  gauges_.emplace_back(new Family<Gauge>(std::move(name), std::move(help), std::move(label_names), {}));
  order_.emplace_back(MetricType::kGauge, gauges_.size() - 1);
  return gauges_.back().get();
}

Result<Family<Histogram>*> Registry::histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                                               std::vector<std::string> label_names) {
  const std::lock_guard lock(mutex_);
  if (upper_bounds.empty() || !std::is_sorted(upper_bounds.begin(), upper_bounds.end()) ||
      std::adjacent_find(upper_bounds.begin(), upper_bounds.end()) != upper_bounds.end()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "histogram '" + name + "' needs strictly increasing, non-empty bucket bounds");
  }
  if (Status status = check_new_name(name, label_names); !status) return status.error();
  histograms_.emplace_back(
      new Family<Histogram>(std::move(name), std::move(help), std::move(label_names), std::move(upper_bounds)));
  order_.emplace_back(MetricType::kHistogram, histograms_.size() - 1);
  return histograms_.back().get();
}

std::string Registry::prometheus_text() const {
  std::ostringstream out;
  const auto header = [&](const auto& family, const char* type) {
    out << "# HELP " << family.name_ << " " << escape_help(family.help_) << "\n";
    out << "# TYPE " << family.name_ << " " << type << "\n";
  };
  const std::lock_guard lock(mutex_);
  for (const auto& [type, index] : order_) {
    switch (type) {
      case MetricType::kCounter: {
        const auto& family = *counters_[index];
        header(family, "counter");
        const std::lock_guard family_lock(family.mutex_);
        for (const auto& [labels, child] : family.children_)
          out << family.name_ << label_text(family.label_names_, labels) << " " << format_number(child->value())
              << "\n";
        break;
      }
      case MetricType::kGauge: {
        const auto& family = *gauges_[index];
        header(family, "gauge");
        const std::lock_guard family_lock(family.mutex_);
        for (const auto& [labels, child] : family.children_)
          out << family.name_ << label_text(family.label_names_, labels) << " " << format_number(child->value())
              << "\n";
        break;
      }
      case MetricType::kHistogram: {
        const auto& family = *histograms_[index];
        header(family, "histogram");
        const std::lock_guard family_lock(family.mutex_);
        for (const auto& [labels, child] : family.children_) {
          const Histogram::Snapshot snap = child->snapshot();
          for (size_t i = 0; i < snap.cumulative_counts.size(); ++i) {
            const std::string le = i < snap.upper_bounds.size() ? format_number(snap.upper_bounds[i]) : "+Inf";
            out << family.name_ << "_bucket" << label_text(family.label_names_, labels, "le", le) << " "
                << snap.cumulative_counts[i] << "\n";
          }
          out << family.name_ << "_sum" << label_text(family.label_names_, labels) << " " << format_number(snap.sum)
              << "\n";
          out << family.name_ << "_count" << label_text(family.label_names_, labels) << " "
              << snap.cumulative_counts.back() << "\n";
        }
        break;
      }
    }
  }
  return out.str();
}

}  // namespace core::metrics
