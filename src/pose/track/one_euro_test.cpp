#include "pose/track/one_euro.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace pose::track {
namespace {

constexpr int64_t kFrameUs = 33'333;  // 30 frames per second

TEST(OneEuro, FirstSamplePassesThroughAndAConstantStaysConstant) {
  OneEuroFilter filter;
  EXPECT_DOUBLE_EQ(filter.filter(120.0, 0), 120.0);
  for (int i = 1; i < 100; ++i) EXPECT_DOUBLE_EQ(filter.filter(120.0, i * kFrameUs), 120.0);
}

// Jitter of +-2 px around a still point: the output's spread must shrink to about a third (an exponential filter
// with alpha 0.17, which 1 Hz at 30 frames/s gives, passes sqrt(alpha / (2 - alpha)) = 0.31 of white noise).
TEST(OneEuro, StillPointJitterIsRemoved) {
  OneEuroFilter filter({1.0, 0.007, 1.0});
  std::mt19937 random(7);
  std::uniform_real_distribution<double> jitter(-2.0, 2.0);
  double input_square_sum = 0, output_square_sum = 0;
  for (int i = 0; i < 600; ++i) {
    const double noise = jitter(random);
    const double out = filter.filter(300.0 + noise, i * kFrameUs);
    if (i < 30) continue;  // settle first
    input_square_sum += noise * noise;
    output_square_sum += (out - 300.0) * (out - 300.0);
  }
  const double ratio = std::sqrt(output_square_sum / input_square_sum);
  EXPECT_LT(ratio, 0.4);
  EXPECT_GT(ratio, 0.2);  // and not frozen: it still follows the signal
}

// A fast sweep (600 px/s): with beta the filter follows closely; without it, it lags far behind.
TEST(OneEuro, SpeedRaisesTheCutoffSoFastMotionKeepsUp) {
  OneEuroFilter adaptive({1.0, 0.05, 1.0});
  OneEuroFilter fixed({1.0, 0.0, 1.0});
  double adaptive_lag = 0, fixed_lag = 0;
  for (int i = 0; i < 60; ++i) {
    const double position = 20.0 * i;
    adaptive_lag = position - adaptive.filter(position, i * kFrameUs);
    fixed_lag = position - fixed.filter(position, i * kFrameUs);
  }
  EXPECT_LT(adaptive_lag, 10.0);
  EXPECT_GT(fixed_lag, 5 * adaptive_lag);
}

// A dropped frame is a longer period: the filter moves further toward the new value than after one frame.
TEST(OneEuro, LongerGapsMoveFurther) {
  OneEuroFilter one_frame, three_frames;
  one_frame.filter(0.0, 0);
  three_frames.filter(0.0, 0);
  EXPECT_GT(three_frames.filter(10.0, 3 * kFrameUs), one_frame.filter(10.0, kFrameUs));
}

TEST(OneEuro, RepeatedTimestampsChangeNothingAndResetStartsOver) {
  OneEuroFilter filter;
  filter.filter(0.0, 0);
  const double out = filter.filter(10.0, kFrameUs);
  EXPECT_DOUBLE_EQ(filter.filter(50.0, kFrameUs), out);
  EXPECT_DOUBLE_EQ(filter.filter(50.0, kFrameUs - 1), out);
  filter.reset();
  EXPECT_DOUBLE_EQ(filter.filter(50.0, 2 * kFrameUs), 50.0);
}

}  // namespace
}  // namespace pose::track
