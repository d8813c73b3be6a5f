// The profiler and the step runner on the CPU, where the counting allocator measures every tensor exactly.
#include "vram/profile/profile.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "vram/memory/memory.h"
#include "vram/profile/runner.h"

namespace vram::profile {
namespace {

zoo::Workload tiny_llama(const std::string& lora) {
  zoo::Workload workload;
  workload.model = zoo::find_model("llama-tiny").value();
  workload.dtype = zoo::DType::kFloat32;
  workload.lora = zoo::parse_lora(lora).value();
  workload.batch = 2;
  workload.seq = 32;
  return workload;
}

Profile run(const zoo::Workload& workload) {
  at::set_num_threads(2);
  ProfileOptions options;
  options.workload = workload;
  options.timed_steps = 1;
  auto profile = profile_step(options);
  EXPECT_TRUE(profile.ok()) << (profile.ok() ? "" : profile.error().message);
  return profile.ok() ? std::move(profile.value()) : Profile{};
}

TEST(Profiler, TotalsAddUpForFullFineTuning) {
  const auto workload = tiny_llama("");
  const Profile profile = run(workload);
  const auto counts = zoo::count_parameters(workload.model, workload.lora);
  int64_t parameters = 0, trainable = 0, gradients = 0, optimizer = 0;
  for (const auto& stage : profile.stages) {
    parameters += stage.parameter_bytes;
    trainable += stage.trainable_bytes;
    gradients += stage.gradient_bytes;
    optimizer += stage.optimizer_bytes;
  }
  EXPECT_EQ(parameters, counts.total * 4);
  EXPECT_EQ(trainable, counts.trainable * 4);
  EXPECT_EQ(gradients, trainable);                      // every trainable parameter got a gradient
  EXPECT_LE(std::llabs(optimizer - 2 * trainable), 8);  // AdamW: two moments (rounded per stage)
  // The timeline covers the step in order: forward of every stage, the loss, backward, the optimizer.
  ASSERT_FALSE(profile.timeline.empty());
  EXPECT_EQ(profile.timeline.front().phase, "forward");
  EXPECT_EQ(profile.timeline.back().phase, "optimizer");
  EXPECT_EQ(profile.timeline.front().begin_bytes, profile.baseline_bytes);
  for (size_t i = 1; i < profile.timeline.size(); ++i) {
    EXPECT_GE(profile.timeline[i].begin_ms, profile.timeline[i - 1].end_ms);
    EXPECT_GE(profile.timeline[i].peak_bytes, profile.timeline[i].begin_bytes);
  }
  // What stages keep adds up to what is allocated when the loss starts.
  int64_t activations = 0;
  for (const auto& stage : profile.stages) activations += stage.activation_bytes;
  const auto loss =
      std::find_if(profile.timeline.begin(), profile.timeline.end(), [](const auto& t) { return t.phase == "loss"; });
  ASSERT_NE(loss, profile.timeline.end());
  EXPECT_EQ(loss->begin_bytes, profile.baseline_bytes + activations);
  // The peak is the highest interval, and at least 95% of it is attributed to parts of the model.
  int64_t highest = 0;
  for (const auto& t : profile.timeline) highest = std::max(highest, t.peak_bytes);
  EXPECT_EQ(profile.peak.peak_bytes, highest);
  EXPECT_GE(profile.peak.attributed_fraction, 0.95);
  EXPECT_GT(profile.step_ms, 0.0);
  EXPECT_EQ(profile.items, "tokens");
}

TEST(Profiler, LoraKeepsGradientsAndStateOnlyForAdapters) {
  const Profile full = run(tiny_llama(""));
  const Profile lora = run(tiny_llama("r4:q,v"));
  int64_t gradients = 0, optimizer = 0, trainable = 0;
  for (const auto& stage : lora.stages) {
    gradients += stage.gradient_bytes;
    optimizer += stage.optimizer_bytes;
    trainable += stage.trainable_bytes;
    if (stage.kind != "attention") {
      EXPECT_EQ(stage.trainable_bytes, 0) << stage.name;
    }
  }
  const auto& workload = lora.workload;
  // q: rank x (hidden + hidden); v: rank x (hidden + kv width), per layer.
  const auto& m = workload.model;
  const int64_t kv_width = m.kv_heads * (m.hidden / m.heads);
  const int64_t adapters = m.layers * 4 * (2 * m.hidden + m.hidden + kv_width);
  EXPECT_EQ(trainable, adapters * 4);
  EXPECT_EQ(gradients, trainable);
  EXPECT_LE(std::llabs(optimizer - 2 * trainable), 8);
  EXPECT_LT(lora.peak.peak_bytes, full.peak.peak_bytes);
}

TEST(Profiler, RendersTableJsonAndHtml) {
  const Profile profile = run(tiny_llama("r4:q,k,v,o"));
  const std::string table = to_table(profile);
  EXPECT_NE(table.find("layers.0.attention"), std::string::npos);
  EXPECT_NE(table.find("% attributed"), std::string::npos);
  const auto json = nlohmann::json::parse(to_json(profile));
  EXPECT_EQ(json["stages"].size(), profile.stages.size());
  EXPECT_EQ(json["peak"]["peak_bytes"].get<int64_t>(), profile.peak.peak_bytes);
  EXPECT_EQ(json["workload"]["lora_rank"].get<int64_t>(), 4);
  const std::string html = to_html(profile);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("layers.1.mlp"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained, static
}

TEST(Profiler, VisionModelsCountSamples) {
  zoo::Workload workload;
  workload.model = zoo::find_model("resnet-tiny").value();
  workload.dtype = zoo::DType::kFloat32;
  workload.optimizer = zoo::Optimizer::kSgdMomentum;
  workload.batch = 4;
  const Profile profile = run(workload);
  EXPECT_EQ(profile.items, "samples");
  EXPECT_GE(profile.peak.attributed_fraction, 0.95);
}

TEST(Runner, RecoversFromOutOfMemoryWithoutLeaking) {
  at::set_num_threads(2);
  auto meter = memory::Meter::create("cpu").value();
  RunnerOptions options;
  options.workload = tiny_llama("r4:q,k,v,o");
  auto runner = Runner::create(options).value();
  ASSERT_TRUE(runner->step(1, 32).ok());  // optimizer state exists from here on
  const int64_t settled = meter->read().allocated_bytes;
  // A cap just above what is allocated: the next large step cannot fit.
  ASSERT_TRUE(meter->limit_bytes(settled + (1 << 20)).ok());
  const auto failed = runner->step(64, 64);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, core::ErrorCode::kOutOfMemory);
  EXPECT_NE(failed.error().message.find("batch 64"), std::string::npos);
  // Everything of the failed step is released (its inputs were the last thing cached besides gradients).
  EXPECT_LE(meter->read().allocated_bytes, settled);
  // And the runner still works, at a size that fits, with the same memory after as before.
  ASSERT_TRUE(runner->step(1, 32).ok());
  const int64_t after_one = meter->read().allocated_bytes;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(runner->step(1, 32).ok());
  EXPECT_EQ(meter->read().allocated_bytes, after_one);  // no growth over steps
  ASSERT_TRUE(meter->limit_bytes(0).ok());
}

TEST(Runner, RejectsBadShapes) {
  RunnerOptions options;
  options.workload = tiny_llama("");
  auto runner = Runner::create(options).value();
  EXPECT_EQ(runner->step(0, 8).error().code, core::ErrorCode::kInvalidArgument);
  options.device = "cuda:7";
  EXPECT_FALSE(Runner::create(options).ok());
}

}  // namespace
}  // namespace vram::profile
