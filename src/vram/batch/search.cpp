#include <algorithm>
#include <cmath>

#include "vram/batch/batch.h"

namespace vram::batch {
namespace {

// Largest batch in [1, max_batch] the prediction says fits; 1 when none does (the trial will tell).
int64_t largest_predicted_fit(const PredictFn& predict, int64_t budget_bytes, int64_t max_batch) {
  int64_t lo = 0;  // fits (0 trivially)
  int64_t hi = max_batch + 1;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (predict(mid) <= budget_bytes ? lo : hi) = mid;
  }
  return std::max<int64_t>(lo, 1);
}

}  // namespace

core::Result<SearchResult> find_max_batch(const PredictFn& predict, const TrialFn& trial,
                                          const SearchOptions& options) {
  if (options.budget_bytes <= 0 || options.max_batch < 1 || options.max_trials < 1) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "budget, max batch and trials must be positive");
  }
  SearchResult result;
  result.fixed_bytes = predict(0);
  const auto budget = static_cast<double>(options.budget_bytes);
  const auto fixed = static_cast<double>(result.fixed_bytes);

  int64_t fits = 0;                       // largest batch seen to fit
  int64_t fails = options.max_batch + 1;  // smallest batch seen not to
  int64_t candidate = largest_predicted_fit(predict, options.budget_bytes, options.max_batch);
  while (static_cast<int>(result.trials.size()) < options.max_trials) {
    Trial run;
    run.batch = candidate;
    run.predicted_bytes = predict(candidate);
    auto peak = trial(candidate);
    if (!peak && peak.error().code != core::ErrorCode::kOutOfMemory) return peak.error();
    run.fits = peak.ok() && *peak <= options.budget_bytes;
    run.measured_bytes = peak.ok() ? *peak : 0;
    result.trials.push_back(run);
    if (run.fits) {
      fits = candidate;
      result.batch = candidate;
      result.measured_bytes = run.measured_bytes;
      result.predicted_bytes = run.predicted_bytes;
    } else {
      fails = std::min(fails, candidate);
    }
    if (fails == fits + 1) {
      result.exact = true;
      break;
    }
    // Next guess: the memory per sample measured at the largest fit replaces the estimator's. Without a fit
    // yet, the failure says the estimator was optimistic: assume a quarter more per sample than the failure
    // proves, which lands on the limit for an estimator up to 20% low and shrinks geometrically beyond.
    double per_sample = 0.0;
    if (fits > 0 && result.measured_bytes > result.fixed_bytes) {
      per_sample = (static_cast<double>(result.measured_bytes) - fixed) / static_cast<double>(fits);
    } else {
      const double predicted = (static_cast<double>(predict(fails)) - fixed) / static_cast<double>(fails);
      const double at_least = (budget - fixed) / static_cast<double>(fails);
      per_sample = std::max(predicted, at_least * 1.25);
    }
    const auto guess =
        per_sample > 0.0 ? static_cast<int64_t>(std::floor((budget - fixed) / per_sample)) : options.max_batch;
    if (fits > 0 && guess <= fits) {
      // The measured slope says fits + 1 would not fit: accept, or spend one step to see it fail.
      if (!options.confirm) break;
      candidate = fits + 1;
      continue;
    }
    candidate = std::clamp<int64_t>(guess, fits + 1, fails - 1);
    if (fits == 0 && candidate >= fails) candidate = std::max<int64_t>(1, fails / 2);
  }
  return result;
}

}  // namespace vram::batch
