#include "pose/analysis/biomechanics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

namespace pose::analysis {
namespace {

TEST(JointAngle, KnownTriangles) {
  EXPECT_NEAR(*joint_angle_deg({0, 0, 0}, {1, 0, 0}, {1, 1, 0}), 90.0, 1e-9);
  EXPECT_NEAR(*joint_angle_deg({0, 0, 0}, {1, 0, 0}, {2, 0, 0}), 180.0, 1e-9);
  EXPECT_NEAR(*joint_angle_deg({2, 0, 0}, {0, 0, 0}, {2, 0, 0}), 0.0, 1e-6);
  // An equilateral triangle: 60 degrees at every corner.
  EXPECT_NEAR(*joint_angle_deg({0, 0, 0}, {1, 0, 0}, {0.5, std::sqrt(3.0) / 2, 0}), 60.0, 1e-9);
  // 3-4-5 triangle: the angle opposite the side of 3 is atan(3/4).
  EXPECT_NEAR(*joint_angle_deg({0, 3, 0}, {4, 0, 0}, {0, 0, 0}), std::atan2(3.0, 4.0) * 180 / std::numbers::pi, 1e-9);
}

TEST(JointAngle, DegenerateSegmentHasNoAngle) {
  EXPECT_FALSE(joint_angle_deg({1, 1, 0}, {1, 1, 0}, {2, 2, 0}).has_value());
}

TEST(JointAngle, DepthChangesTheAngle) {
  // Seen from the front, an arm bent straight toward the camera looks straight in 2D; with depth it is 90.
  EXPECT_NEAR(*joint_angle_deg({0, 0, 0}, {0, 10, 0}, {0, 20, 0}), 180.0, 1e-9);
  EXPECT_NEAR(*joint_angle_deg({0, 0, 0}, {0, 10, 0}, {0, 10, -10}), 90.0, 1e-9);
  // A 3D right angle in a plane that is not the image plane.
  EXPECT_NEAR(*joint_angle_deg({1, 0, 0}, {0, 0, 0}, {0, 1, 1}), 90.0, 1e-9);
}

TEST(SegmentAngle, VerticalAndHorizontal) {
  // Image y grows downwards: `to` above `from` is upright.
  EXPECT_NEAR(*segment_angle_deg({0, 100, 0}, {0, 0, 0}, Axis::kVertical), 0.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 100, 0}, {100, 0, 0}, Axis::kVertical), 45.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 100, 0}, {-100, 0, 0}, Axis::kVertical), 45.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 0, 0}, {0, 100, 0}, Axis::kVertical), 180.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 0, 0}, {100, 0, 0}, Axis::kHorizontal), 0.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 0, 0}, {-100, 0, 0}, Axis::kHorizontal), 0.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 0, 0}, {100, -100, 0}, Axis::kHorizontal), 45.0, 1e-9);
  EXPECT_NEAR(*segment_angle_deg({0, 0, 0}, {0, 50, 0}, Axis::kHorizontal), 90.0, 1e-9);
  EXPECT_FALSE(segment_angle_deg({3, 3, 0}, {3, 3, 0}, Axis::kVertical).has_value());
}

TEST(AngularVelocity, DegreesPerSecond) {
  EXPECT_NEAR(*angular_velocity_deg_per_s(90, 0, 120, 500'000), 60.0, 1e-9);
  EXPECT_NEAR(*angular_velocity_deg_per_s(120, 1'000'000, 90, 1'100'000), -300.0, 1e-9);
  EXPECT_FALSE(angular_velocity_deg_per_s(90, 10, 100, 10).has_value());
}

TEST(Symmetry, AbsoluteDifference) {
  EXPECT_DOUBLE_EQ(symmetry_deg(100, 130), 30);
  EXPECT_DOUBLE_EQ(symmetry_deg(130, 100), 30);
}

TEST(Median, OddEvenEmpty) {
  EXPECT_DOUBLE_EQ(median({5, 1, 100}), 5);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(median({}), 0);
}

TEST(Resample, LinearInTime) {
  const std::vector<int64_t> times = {0, 100, 400};
  const std::vector<double> values = {0, 10, 40};
  const auto out = resample(times, values, 5);
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], 10.0 * static_cast<double>(i), 1e-9);
}

std::vector<double> curve(int n, double (*shape)(double)) {
  std::vector<double> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(shape(static_cast<double>(i) / (n - 1)));
  return out;
}

double dip(double t) { return 170 - 80 * std::sin(std::numbers::pi * t); }
// The same dip, reached late: the person lowers slowly and stands up fast.
double late_dip(double t) { return dip(std::pow(t, 1.4)); }
// Two shallow dips instead of one deep one.
double double_dip(double t) { return 170 - 50 * std::abs(std::sin(2 * std::numbers::pi * t)); }

TEST(Dtw, IdenticalIsZeroWarpedIsSmallDifferentIsLarge) {
  const std::vector<double> scale = {80};
  const std::vector<std::vector<double>> reference = {curve(32, dip)};
  EXPECT_NEAR(dtw_distance(reference, reference, scale, 5), 0.0, 1e-12);
  const double warped = dtw_distance(reference, {curve(32, late_dip)}, scale, 5);
  const double different = dtw_distance(reference, {curve(32, double_dip)}, scale, 5);
  // Without warping the time-shifted dip differs by much more than DTW sees.
  double euclidean = 0;
  const auto shifted = curve(32, late_dip);
  for (size_t i = 0; i < 32; ++i) euclidean += std::abs(shifted[i] - reference[0][i]) / 80 / 32;
  EXPECT_LT(warped, 0.05);
  EXPECT_LT(warped, euclidean / 2);
  EXPECT_GT(different, 0.25);
  EXPECT_GT(different, 5 * warped);
}

TEST(Dtw, BandLimitsWarping) {
  // A dip shifted by a third of the rep: a narrow band cannot align it; an unbounded one can.
  const std::vector<double> scale = {80};
  const auto a = curve(30, dip);
  std::vector<double> b(30, 170);
  for (size_t i = 0; i + 10 < 30; ++i) b[i + 10] = a[i * 20 / 19 < 30 ? i * 20 / 19 : 29];
  const double narrow = dtw_distance({a}, {b}, scale, 1);
  const double wide = dtw_distance({a}, {b}, scale, 30);
  EXPECT_GT(narrow, wide * 2);
}

TEST(Dtw, DifferentLengthsAndChannels) {
  const std::vector<double> scale = {80, 40};
  const std::vector<std::vector<double>> a = {curve(32, dip), curve(32, dip)};
  const std::vector<std::vector<double>> b = {curve(20, dip), curve(20, dip)};
  EXPECT_LT(dtw_distance(a, b, scale, 3), 0.08);  // only sampling differs
}

}  // namespace
}  // namespace pose::analysis
