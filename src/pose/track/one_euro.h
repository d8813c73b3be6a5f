#pragma once
// The One Euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cut-off rises with speed, so
// a keypoint held still stops jittering while a fast movement keeps up without lag. Time is passed in, so frame
// drops and variable frame rates are handled; nothing here reads a clock.
//
// Thread-safety: a filter is a value; one per signal (per keypoint coordinate of a track), used by one thread.

#include <cstdint>
#include <optional>

namespace pose::track {

struct OneEuroOptions {
  double min_cutoff_hz = 1.0;         // cut-off at rest: lower removes more jitter and adds more lag when slow
  double beta = 0.007;                // how fast the cut-off rises with speed (per unit of the signal per second)
  double derivative_cutoff_hz = 1.0;  // cut-off of the speed estimate itself
};

class OneEuroFilter {
 public:
  explicit OneEuroFilter(const OneEuroOptions& options = {}) : options_(options) {}

  // Returns the filtered value. The first sample passes through unchanged; a timestamp not after the previous one
  // (a repeated or reordered frame) returns the last output and changes nothing.
  double filter(double value, int64_t timestamp_us);
  void reset() { last_.reset(); }

 private:
  struct State {
    double value;
    double derivative;
    int64_t timestamp_us;
  };
  OneEuroOptions options_;
  std::optional<State> last_;
};

}  // namespace pose::track
