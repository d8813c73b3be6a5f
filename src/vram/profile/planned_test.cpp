// Weight streaming and micro-batches give the unoptimized step's results, keep the frozen weights off the device,
// copy only what is not in a buffer already, and leak nothing; a user's own Sequential runs under a plan.
#include "vram/profile/planned.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

#include "vram/estimate/estimate.h"
#include "vram/memory/memory.h"
#include "vram/profile/runner.h"

namespace vram::profile {
namespace {

RunnerOptions llama_lora(const std::string& plan, int64_t seq = 32) {
  RunnerOptions options;
  options.workload.model = zoo::find_model("llama-tiny").value();
  options.workload.dtype = zoo::DType::kFloat32;
  options.workload.lora = zoo::parse_lora("r4:q,k,v,o").value();
  options.workload.seq = seq;
  options.workload.plan = zoo::parse_plan(plan, options.workload.model).value();
  options.seed = 9;
  return options;
}

void expect_same_parameters(Runner& a, Runner& b, bool bitwise) {
  const auto x = a.model().trainable_parameters();
  const auto y = b.model().trainable_parameters();
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (bitwise) {
      EXPECT_TRUE(at::equal(x[i], y[i])) << "parameter " << i;
    } else {
      EXPECT_TRUE(at::allclose(x[i], y[i], 1e-5, 1e-7))
          << "parameter " << i << ": largest difference " << (x[i] - y[i]).abs().max().item<double>();
    }
  }
}

TEST(Planned, StreamedStepsMatchTheUnoptimizedOnes) {
  at::set_num_threads(2);
  struct Case {
    std::string plan;
    int64_t buffers;
    int64_t micro_batches;
    int64_t loss_chunk;
  };
  for (const Case& c : {Case{"offload", 2, 1, 0}, Case{"checkpoint-stages", 3, 1, 0}, Case{"offload", 2, 2, 24},
                        Case{"keep", 2, 4, 0}}) {
    SCOPED_TRACE(c.plan + " buffers " + std::to_string(c.buffers) + " micro " + std::to_string(c.micro_batches));
    auto plain = Runner::create(llama_lora("keep")).value();
    RunnerOptions options = llama_lora(c.plan);
    options.workload.plan.stream_weights = c.plan != "keep";
    options.workload.plan.weight_buffers = c.buffers;
    options.workload.plan.micro_batches = c.micro_batches;
    options.workload.plan.loss_chunk_tokens = c.loss_chunk;
    auto planned = Runner::create(options).value();
    for (int step = 0; step < 5; ++step) {
      ASSERT_TRUE(plain->step(4, 32).ok());
      ASSERT_TRUE(planned->step(4, 32).ok());
    }
    // Streamed weights are the same bits in another buffer; micro-batches and a chunked loss add the same terms
    // in another order.
    expect_same_parameters(*plain, *planned, c.micro_batches == 1 && c.loss_chunk == 0);
  }
}

// Every frozen weight of a segment is an empty tensor between steps, and each step copies exactly the units that
// are not still in a device buffer: with 4 units and 2 buffers, the 2 used last in backward are the first
// forward needs, so 2 copies in forward and 2 in backward.
TEST(Planned, StreamsOnlyWhatIsNotInABuffer) {
  at::set_num_threads(2);
  RunnerOptions options = llama_lora("checkpoint-stages");
  options.workload.plan.stream_weights = true;
  auto runner = Runner::create(options).value();
  for (size_t i = 0; i < runner->model().stage_count(); ++i) {
    const auto& kind = runner->model().stage_info(i).kind;
    for (const auto& parameter : runner->model().stage(i).parameters()) {
      const bool streamed = (kind == "attention" || kind == "mlp") && !parameter.requires_grad();
      EXPECT_EQ(parameter.numel() == 0, streamed) << runner->model().stage_info(i).name;
    }
  }
  const auto copies = [&] { return runner->planned().weights()->copies(); };
  ASSERT_TRUE(runner->step(2, 16).ok());
  const int64_t after_first = copies();
  EXPECT_EQ(after_first, 4 + 2);  // the first forward found every buffer empty
  for (int step = 0; step < 3; ++step) ASSERT_TRUE(runner->step(2, 16).ok());
  EXPECT_EQ(copies() - after_first, 3 * 4);
}

// On the CPU the counting meter is the device: streaming takes the segments' frozen weights off it (leaving two
// buffers of the largest unit), as the estimator predicts, and nothing grows over 100 steps.
TEST(Planned, StreamingFreesTheDeviceAndTheEstimatorFollows) {
  at::set_num_threads(2);
  auto meter = memory::Meter::create("cpu").value();
  const auto backend = estimate::backend_for(false, memory::runtime("cpu").libtorch_major, 0);
  RunnerOptions options = llama_lora("offload", 64);
  const int64_t before = meter->read().allocated_bytes;
  auto resident = Runner::create(options).value();
  const int64_t resident_bytes = meter->read().allocated_bytes - before;
  resident.reset();
  options.workload.plan.stream_weights = true;
  options.workload.plan.micro_batches = 2;
  options.workload.batch = 4;
  auto streamed = Runner::create(options).value();
  const int64_t streamed_bytes = meter->read().allocated_bytes - before;
  const auto predicted = estimate::estimate(options.workload, backend).value();
  EXPECT_GT(predicted.streamed_bytes, 0);
  // Each parameter is aligned to 256 bytes in a buffer.
  EXPECT_NEAR(static_cast<double>(resident_bytes - streamed_bytes),
              static_cast<double>(predicted.streamed_bytes - predicted.weight_buffer_bytes), 64.0 * 256.0);

  meter->reset_peak();
  ASSERT_TRUE(streamed->step(4, 64).ok());
  const int64_t after_first = meter->read().allocated_bytes;
  const int64_t peak = meter->read().peak_allocated_bytes - before;
  const double error = static_cast<double>(predicted.peak_bytes - peak) / static_cast<double>(peak);
  EXPECT_LT(std::fabs(error), 0.15) << "predicted " << predicted.peak_bytes << ", measured " << peak;
  for (int step = 1; step < 100; ++step) ASSERT_TRUE(streamed->step(4, 64).ok());
  EXPECT_EQ(meter->read().allocated_bytes, after_first);
}

TEST(Planned, RefusesWhatCannotStream) {
  RunnerOptions options = llama_lora("keep");
  options.workload.plan.stream_weights = true;
  const auto keep = Runner::create(options);
  ASSERT_FALSE(keep.ok());
  EXPECT_NE(keep.error().message.find("checkpoint segments"), std::string::npos) << keep.error().message;
  options = llama_lora("offload");
  options.workload.plan.stream_weights = true;
  options.workload.plan.weight_buffers = 1;
  EXPECT_FALSE(Runner::create(options).ok());
}

// The library call on a model that is not the zoo's: a Sequential whose first two linear layers are frozen
// (one keeps a trainable bias), run as an offloaded segment and a checkpointed one with streamed weights.
TEST(Planned, AppliesAPlanToAUsersSequential) {
  at::set_num_threads(2);
  const auto make = [] {
    at::manual_seed(3);
    torch::nn::Sequential net(torch::nn::Linear(16, 32), torch::nn::GELU(), torch::nn::Linear(32, 32),
                              torch::nn::GELU(), torch::nn::Linear(32, 4));
    for (size_t i : {size_t{0}, size_t{2}}) net[i]->named_parameters()["weight"].requires_grad_(false);
    net[2]->named_parameters()["bias"].requires_grad_(false);
    return net;
  };
  const at::Tensor input = at::randn({8, 16});
  const at::Tensor target = at::randn({8, 4});
  auto plain_net = make();
  const at::Tensor original = plain_net[0]->named_parameters()["weight"].clone();
  (plain_net->forward(input) - target).pow(2).mean().backward();

  auto net = make();
  auto stages = stages_of(net);
  zoo::Plan plan;
  plan.stages = {zoo::StagePolicy::kOffload, zoo::StagePolicy::kJoin, zoo::StagePolicy::kCheckpoint,
                 zoo::StagePolicy::kJoin, zoo::StagePolicy::kKeep};
  plan.stream_weights = true;
  {
    auto planned = PlannedStages::create(pointers(stages), plan, at::Device(at::kCPU)).value();
    ASSERT_NE(planned->weights(), nullptr);
    EXPECT_EQ(planned->weights()->unit_count(), 2u);
    (planned->forward(input) - target).pow(2).mean().backward();
    EXPECT_EQ(net[2]->named_parameters()["weight"].numel(), 0);  // between uses, off the device
    const auto expected = plain_net->parameters();
    const auto got = net->parameters();
    ASSERT_EQ(expected.size(), got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      if (!got[i].requires_grad()) continue;
      ASSERT_TRUE(got[i].grad().defined()) << "parameter " << i;
      EXPECT_TRUE(at::equal(expected[i].grad(), got[i].grad())) << "parameter " << i;
    }
  }
  // Gone with the planned model, the weights are back, as they were.
  EXPECT_TRUE(at::equal(net[0]->named_parameters()["weight"], original));
}

}  // namespace
}  // namespace vram::profile
