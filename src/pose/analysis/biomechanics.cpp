#include "pose/analysis/biomechanics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

namespace pose::analysis {
namespace {

constexpr double kDegPerRad = 180.0 / std::numbers::pi;

double length(const Point3& v) { return std::sqrt(v.x * v.x + v.y * v.y + v.z * v.z); }
Point3 minus(const Point3& a, const Point3& b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }

// Angle between two vectors, 0..180; none for a zero-length vector.
std::optional<double> vector_angle_deg(const Point3& u, const Point3& v) {
  const double norms = length(u) * length(v);
  if (norms <= 1e-9) return std::nullopt;
  const double cosine = (u.x * v.x + u.y * v.y + u.z * v.z) / norms;
  return std::acos(std::clamp(cosine, -1.0, 1.0)) * kDegPerRad;
}

}  // namespace

std::optional<double> joint_angle_deg(const Point3& a, const Point3& b, const Point3& c) {
  return vector_angle_deg(minus(a, b), minus(c, b));
}

std::optional<double> segment_angle_deg(const Point3& from, const Point3& to, Axis axis) {
  const Point3 segment = minus(to, from);
  if (axis == Axis::kVertical) return vector_angle_deg(segment, {0, -1, 0});  // image y grows downwards
  const auto from_up = vector_angle_deg(segment, {0, -1, 0});
  if (!from_up) return std::nullopt;
  return std::abs(90.0 - *from_up);
}

std::optional<double> angular_velocity_deg_per_s(double previous_deg, int64_t previous_us, double current_deg,
                                                 int64_t current_us) {
  if (current_us <= previous_us) return std::nullopt;
  return (current_deg - previous_deg) * 1e6 / static_cast<double>(current_us - previous_us);
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const size_t middle = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle), values.end());
  if (values.size() % 2 == 1) return values[middle];
  const double upper = values[middle];
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(middle));
  return (lower + upper) / 2;
}

std::vector<double> resample(std::span<const int64_t> times_us, std::span<const double> values, int count) {
  assert(times_us.size() == values.size());
  std::vector<double> out(static_cast<size_t>(std::max(count, 0)));
  if (values.empty() || out.empty()) return out;
  if (values.size() == 1 || count == 1) {
    std::fill(out.begin(), out.end(), values.front());
    return out;
  }
  const double first = static_cast<double>(times_us.front());
  const double span = static_cast<double>(times_us.back()) - first;
  size_t segment = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const double t = first + span * static_cast<double>(i) / static_cast<double>(out.size() - 1);
    while (segment + 2 < times_us.size() && static_cast<double>(times_us[segment + 1]) < t) ++segment;
    const double t0 = static_cast<double>(times_us[segment]), t1 = static_cast<double>(times_us[segment + 1]);
    const double weight = t1 > t0 ? std::clamp((t - t0) / (t1 - t0), 0.0, 1.0) : 0.0;
    out[i] = values[segment] + weight * (values[segment + 1] - values[segment]);
  }
  return out;
}

double dtw_distance(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                    std::span<const double> scale, int band) {
  assert(a.size() == b.size() && a.size() == scale.size());
  if (a.empty() || a.front().empty() || b.front().empty()) return 0;
  const size_t n = a.front().size(), m = b.front().size();
  const auto cost = [&](size_t i, size_t j) {
    double worst = 0;
    for (size_t channel = 0; channel < a.size(); ++channel) {
      worst = std::max(worst, std::abs(a[channel][i] - b[channel][j]) / scale[channel]);
    }
    return worst;
  };
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // The band follows the diagonal of the n x m grid; it is at least as wide as the slope so a path always exists.
  const double slope = static_cast<double>(m) / static_cast<double>(n);
  const double radius = std::max(static_cast<double>(std::max(band, 0)), std::ceil(slope));
  std::vector<double> previous(m + 1, kInf), current(m + 1, kInf);
  previous[0] = 0;
  for (size_t i = 1; i <= n; ++i) {
    std::fill(current.begin(), current.end(), kInf);
    const double centre = std::round(static_cast<double>(i) * slope);
    const auto low = static_cast<size_t>(std::max(1.0, centre - radius));
    const auto high = static_cast<size_t>(std::min(static_cast<double>(m), centre + radius));
    for (size_t j = low; j <= high; ++j) {
      const double best = std::min({previous[j], current[j - 1], previous[j - 1]});
      if (best < kInf) current[j] = cost(i - 1, j - 1) + best;
    }
    std::swap(previous, current);
  }
  return previous[m] / static_cast<double>(std::max(n, m));
}

}  // namespace pose::analysis
