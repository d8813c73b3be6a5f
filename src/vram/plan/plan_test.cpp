// The planner picks the fastest plan under a budget, never a plan over it, names the floor when none fits, and on a
// real (CPU) device the chosen plan runs under the capped allocator with the loss unchanged.
#include "vram/plan/plan.h"

#include <gtest/gtest.h>

#include <iostream>

#include "vram/memory/memory.h"

namespace vram::plan {
namespace {

constexpr int64_t kGB = int64_t{1000} * 1000 * 1000;

zoo::Workload llama7b_lora(int64_t batch) {
  zoo::Workload w;
  w.model = zoo::find_model("llama-7b").value();
  w.lora = zoo::parse_lora("r16:q,k,v,o").value();
  w.batch = batch;
  w.seq = 2048;
  return w;
}

PlannerOptions on_hopper(int64_t budget_bytes) {
  PlannerOptions options;
  options.budget_bytes = budget_bytes;
  options.backend = estimate::backend_for(true, 2, 9);
  options.costs = assumed_costs(true);
  return options;
}

TEST(Planner, KeepsEverythingWhenItFits) {
  const auto choice = choose(llama7b_lora(1), on_hopper(80 * kGB)).value();
  EXPECT_EQ(zoo::describe(choice.best.plan, llama7b_lora(1).model), "keep");
  EXPECT_FALSE(choice.best.plan.stream_weights);
  EXPECT_EQ(choice.best.plan.micro_batches, 1);
}

TEST(Planner, StreamsWeightsForTheHeadlineBudget) {
  const auto w = llama7b_lora(8);  // 16,384 tokens per step
  const auto choice = choose(w, on_hopper(8 * kGB)).value();
  EXPECT_TRUE(choice.best.plan.stream_weights) << zoo::describe(choice.best.plan, w.model);
  EXPECT_LE(choice.best.predicted_peak_bytes, static_cast<int64_t>(0.95 * 8 * kGB));
  // At the measured H200 rates streaming hides under the compute: within 10% of the same plan with resident
  // weights (which does not fit).
  zoo::Workload resident = w;
  resident.plan = choice.best.plan;
  resident.plan.stream_weights = false;
  EXPECT_LT(choice.best.predicted_step_seconds, 1.10 * predict_step_seconds(resident, assumed_costs(true)));
}

TEST(Planner, LessMemoryNeverMeansAFasterPlan) {
  const auto w = llama7b_lora(8);
  double previous_speed = 1e30;
  for (const int64_t budget : {80, 40, 24, 16, 12, 8, 6, 4}) {
    SCOPED_TRACE(budget);
    const auto choice = choose(w, on_hopper(budget * kGB));
    ASSERT_TRUE(choice.ok()) << choice.error().message;
    EXPECT_LE(choice->best.predicted_peak_bytes, static_cast<int64_t>(0.95 * static_cast<double>(budget * kGB)));
    EXPECT_LE(choice->best.predicted_items_per_second, previous_speed * 1.0001);
    previous_speed = choice->best.predicted_items_per_second;
    // Every candidate that fits is at most as fast as the one chosen.
    for (const auto& c : choice->candidates) {
      if (c.fits) {
        EXPECT_LE(c.predicted_items_per_second, choice->best.predicted_items_per_second * 1.0101);
      }
    }
  }
}

TEST(Planner, AnImpossibleBudgetNamesTheFloor) {
  const auto choice = choose(llama7b_lora(8), on_hopper(kGB));
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.error().code, core::ErrorCode::kOutOfMemory);
  EXPECT_NE(choice.error().message.find("needs a budget of at least"), std::string::npos) << choice.error().message;
  EXPECT_NE(choice.error().message.find("stream weights"), std::string::npos) << choice.error().message;
  // A full fine-tune cannot stream what trains: its floor is the weights, gradients and AdamW state (54 GB).
  zoo::Workload full = llama7b_lora(1);
  full.lora = {};
  EXPECT_FALSE(choose(full, on_hopper(40 * kGB)).ok());
  EXPECT_TRUE(choose(full, on_hopper(80 * kGB)).ok());
}

TEST(Planner, CostModelChargesRecomputationAndSlowLinks) {
  const auto costs = assumed_costs(true);
  zoo::Workload keep = llama7b_lora(8);
  zoo::Workload checkpoint = keep;
  checkpoint.plan = zoo::parse_plan("checkpoint", keep.model).value();
  const double ratio = predict_step_seconds(checkpoint, costs) / predict_step_seconds(keep, costs);
  // LoRA's backward is about one forward (no weight gradients for frozen weights): recomputing adds about half.
  EXPECT_GT(ratio, 1.3);
  EXPECT_LT(ratio, 1.6);
  zoo::Workload streamed = checkpoint;
  streamed.plan.stream_weights = true;
  Costs slow = costs;
  slow.host_to_device_bytes_per_second = 2.7e9;  // what DeepSpeed users report for offload
  EXPECT_GT(predict_step_seconds(streamed, slow), 2.0 * predict_step_seconds(streamed, costs));
  // And the planner then keeps the weights resident whenever they fit.
  PlannerOptions options = on_hopper(24 * kGB);
  options.costs = slow;
  EXPECT_FALSE(choose(keep, options).value().best.plan.stream_weights);
}

// On the CPU: a budget below what keeping everything needs; the planner's plan runs under the capped counting
// allocator, within it.
TEST(Fit, RunsTheChosenPlanUnderTheBudget) {
  auto meter = memory::Meter::create("cpu").value();
  zoo::Workload w;
  w.model = zoo::find_model("llama-tiny").value();
  w.dtype = zoo::DType::kFloat32;
  w.lora = zoo::parse_lora("r4:q,k,v,o").value();
  w.batch = 4;
  w.seq = 256;
  const auto backend = estimate::backend_for(false, memory::runtime("cpu").libtorch_major, 0);
  const int64_t keep_peak = estimate::estimate(w, backend).value().peak_bytes;
  FitOptions options;
  options.workload = w;
  options.device = "cpu";
  options.budget_bytes = keep_peak * 3 / 4;
  options.headroom = 0.15;  // tiny models' backward transients are approximate (see the estimator's tests)
  options.timed_steps = 2;
  const auto result = fit(options);
  ASSERT_TRUE(result.ok()) << result.error().message;
  // Something changed: checkpointing, offload, micro-batches or the loss in pieces.
  EXPECT_NE(zoo::describe(result->plan, w.model), "keep");
  std::cout << "chose " << zoo::describe(result->plan, w.model) << "\n";
  EXPECT_LE(result->measured_peak_bytes, options.budget_bytes);
  EXPECT_GT(result->measured_items_per_second, 0.0);
  EXPECT_EQ(result->attempts.back().outcome, "ok");

  options.budget_bytes = 1 << 16;
  const auto impossible = fit(options);
  ASSERT_FALSE(impossible.ok());
  EXPECT_NE(impossible.error().message.find("needs a budget of at least"), std::string::npos);
}

}  // namespace
}  // namespace vram::plan
