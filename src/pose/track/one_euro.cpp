#include "pose/track/one_euro.h"

#include <cmath>
#include <numbers>

namespace pose::track {
namespace {

// Smoothing factor of an exponential filter with cut-off `cutoff_hz` sampled every `period_s`.
double alpha(double cutoff_hz, double period_s) {
  const double tau = 1.0 / (2.0 * std::numbers::pi * cutoff_hz);
  return 1.0 / (1.0 + tau / period_s);
}

}  // namespace

double OneEuroFilter::filter(double value, int64_t timestamp_us) {
  if (!last_) {
    last_ = State{value, 0.0, timestamp_us};
    return value;
  }
  if (timestamp_us <= last_->timestamp_us) return last_->value;
  const double period_s = static_cast<double>(timestamp_us - last_->timestamp_us) * 1e-6;
  const double raw_derivative = (value - last_->value) / period_s;
  const double a_d = alpha(options_.derivative_cutoff_hz, period_s);
  const double derivative = a_d * raw_derivative + (1.0 - a_d) * last_->derivative;
  const double cutoff_hz = options_.min_cutoff_hz + options_.beta * std::abs(derivative);
  const double a = alpha(cutoff_hz, period_s);
  const double filtered = a * value + (1.0 - a) * last_->value;
  last_ = State{filtered, derivative, timestamp_us};
  return filtered;
}

}  // namespace pose::track
