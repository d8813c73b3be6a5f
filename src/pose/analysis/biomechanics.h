#pragma once
// Biomechanics as pure functions: joint and segment angles from keypoints, angular velocity, left/right symmetry,
// and the dynamic time warping that compares one rep's angle trajectories with another's. Module-private (the
// analyzer and the tests use it); no state, no I/O.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace pose::analysis {

struct Point3 {
  double x = 0, y = 0, z = 0;  // image pixels, y down; z = 0 for 2D
};

enum class Axis { kVertical, kHorizontal };

// The angle a-b-c at b in degrees, 0..180; none when a segment has no length.
std::optional<double> joint_angle_deg(const Point3& a, const Point3& b, const Point3& c);

// The orientation of the segment from -> to. Against the vertical: 0 when `to` is straight above `from` in the
// image (an upright trunk from hip to shoulder), 90 when level, 180 straight below. Against the horizontal: the
// acute angle to a level line, 0..90, the same whichever way the person faces.
std::optional<double> segment_angle_deg(const Point3& from, const Point3& to, Axis axis);

// Degrees per second between two samples; none unless time moved forward.
std::optional<double> angular_velocity_deg_per_s(double previous_deg, int64_t previous_us, double current_deg,
                                                 int64_t current_us);

// |left - right| in degrees.
inline double symmetry_deg(double left_deg, double right_deg) {
  return left_deg > right_deg ? left_deg - right_deg : right_deg - left_deg;
}

// Median of the values (the middle one, or the mean of the two middle ones); 0 when empty.
double median(std::vector<double> values);

// Resamples a trajectory sampled at times_us (increasing) to `count` points evenly spaced from the first to the
// last time, by linear interpolation: reps of different durations become comparable (time normalisation).
std::vector<double> resample(std::span<const int64_t> times_us, std::span<const double> values, int count);

// Dynamic time warping between two multichannel trajectories (channel-major: a[channel][step]) with a Sakoe-Chiba
// band of `band` steps around the diagonal (scaled when the lengths differ). The step cost is the largest over
// channels of |a - b| / scale[channel] (a fault in one angle is not diluted by the others that moved as usual); the
// result is the cheapest path's total cost divided by the longer length, so identical trajectories score 0 and a
// constant offset of one scale scores about 1.
double dtw_distance(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                    std::span<const double> scale, int band);

}  // namespace pose::analysis
