// The batch search: replayed against memory models with known limits, then on real CPU steps under a cap.
#include "vram/batch/batch.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "vram/memory/memory.h"

namespace vram::batch {
namespace {

constexpr int64_t kMiB = 1 << 20;

// A device where a batch of b needs fixed + per_sample * b (+ a little noise from the peak moving), and the
// estimator is off by `slope_error` on the per-sample part.
struct Scenario {
  int64_t fixed = 1000 * kMiB;
  int64_t per_sample = 37 * kMiB;
  double slope_error = 0.0;
  int64_t budget = 8000 * kMiB;
  int trials = 0;

  int64_t truth(int64_t batch) const { return fixed + per_sample * batch; }
  int64_t true_limit() const { return (budget - fixed) / per_sample; }
  PredictFn predict() const {
    return [this](int64_t batch) {
      return fixed + static_cast<int64_t>(static_cast<double>(per_sample) * (1.0 + slope_error)) * batch;
    };
  }
  TrialFn trial() {
    return [this](int64_t batch) -> core::Result<int64_t> {
      ++trials;
      if (truth(batch) > budget) return core::make_error(core::ErrorCode::kOutOfMemory, "out of memory");
      return truth(batch);
    };
  }
};

SearchResult search(Scenario& scenario) {
  SearchOptions options;
  options.budget_bytes = scenario.budget;
  return find_max_batch(scenario.predict(), scenario.trial(), options).value();
}

TEST(BatchSearch, ExactEstimatorNeedsOneTrial) {
  Scenario scenario;
  const auto result = search(scenario);
  EXPECT_EQ(result.batch, scenario.true_limit());
  EXPECT_EQ(scenario.trials, 1);
  EXPECT_EQ(result.measured_bytes, scenario.truth(result.batch));
}

TEST(BatchSearch, PessimisticEstimatorIsCorrectedByTheMeasuredSlope) {
  Scenario scenario;
  scenario.slope_error = 0.15;  // predicts more memory per sample than there is
  const auto result = search(scenario);
  EXPECT_EQ(result.batch, scenario.true_limit());
  EXPECT_LE(scenario.trials, 3);
}

TEST(BatchSearch, OptimisticEstimatorRecoversFromOutOfMemory) {
  Scenario scenario;
  scenario.slope_error = -0.2;  // predicts too little: the first trial runs out of memory
  const auto result = search(scenario);
  EXPECT_EQ(result.batch, scenario.true_limit());
  ASSERT_FALSE(result.trials.empty());
  EXPECT_FALSE(result.trials.front().fits);
  EXPECT_LE(scenario.trials, 4);
}

TEST(BatchSearch, ConfirmingSpendsOneStepToSeeTheNextBatchFail) {
  Scenario scenario;
  SearchOptions options;
  options.budget_bytes = scenario.budget;
  options.confirm = true;
  const auto result = find_max_batch(scenario.predict(), scenario.trial(), options).value();
  EXPECT_EQ(result.batch, scenario.true_limit());
  EXPECT_TRUE(result.exact);
  EXPECT_EQ(scenario.trials, 2);
  EXPECT_FALSE(result.trials.back().fits);
}

TEST(BatchSearch, NothingFits) {
  Scenario scenario;
  scenario.budget = scenario.fixed + scenario.per_sample / 2;
  const auto result = search(scenario);
  EXPECT_EQ(result.batch, 0);
  EXPECT_TRUE(result.exact);
}

TEST(BatchSearch, OtherErrorsStopTheSearch) {
  SearchOptions options;
  options.budget_bytes = kMiB;
  const auto result = find_max_batch(
      [](int64_t) { return int64_t{0}; },
      [](int64_t) -> core::Result<int64_t> { return core::make_error(core::ErrorCode::kInternal, "driver gone"); },
      options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, core::ErrorCode::kInternal);
  options.budget_bytes = 0;
  EXPECT_FALSE(find_max_batch([](int64_t) { return int64_t{0}; }, {}, options).ok());
}

// Real steps on the CPU, capped by the counting allocator: the answer fits, one more does not, and nothing leaks.
TEST(BatchSearchOnDevice, FindsTheLimitOfRealStepsUnderACap) {
  at::set_num_threads(2);
  auto meter = memory::Meter::create("cpu").value();
  const int64_t before = meter->read().allocated_bytes;
  DeviceSearchOptions options;
  options.device = "cpu";
  options.workload.model = zoo::find_model("llama-tiny").value();
  options.workload.dtype = zoo::DType::kFloat32;
  options.workload.lora = zoo::parse_lora("r4:q,k,v,o").value();
  options.workload.seq = 64;
  options.budget_bytes = 24 * kMiB;
  std::vector<std::string> progress;
  options.progress = [&](const std::string& what, double) { progress.push_back(what); };
  const auto result = find_max_batch_on_device(options).value();
  EXPECT_GT(result.search.batch, 1);
  EXPECT_LE(result.search.measured_bytes, options.budget_bytes);
  EXPECT_LE(result.search.trials.size(), 4u);
  EXPECT_EQ(result.tokens_per_step, result.search.batch * 64);
  EXPECT_FALSE(progress.empty());
  EXPECT_EQ(meter->read().allocated_bytes, before);  // the model and every trial are gone

  // Cross-check with a second search whose budget is one byte under the measured peak: the answer shrinks.
  options.budget_bytes = result.search.measured_bytes - 1;
  const auto smaller = find_max_batch_on_device(options).value();
  EXPECT_LT(smaller.search.batch, result.search.batch);
}

TEST(BatchSearchOnDevice, ExplainsABudgetBelowTheParameters) {
  DeviceSearchOptions options;
  options.device = "cpu";
  options.workload.model = zoo::find_model("gpt2-tiny").value();
  options.budget_bytes = 1024;
  const auto result = find_max_batch_on_device(options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, core::ErrorCode::kOutOfMemory);
  EXPECT_NE(result.error().message.find("parameters and optimizer state alone"), std::string::npos);
}

}  // namespace
}  // namespace vram::batch
