// The estimator: arithmetic facts on full-size models, and, on the CPU, agreement with what the profiler measures
// for the same workload (the counting allocator sees every tensor).
#include "vram/estimate/estimate.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>

#include "vram/memory/memory.h"
#include "vram/profile/profile.h"

namespace vram::estimate {
namespace {

const Backend kCuda = backend_for(true, 2, 9);  // LibTorch 2 on Hopper: what the GPU table measures

// The backend of the LibTorch this test runs on: 1.13 on Debian, 2.x on the GPU machine.
Backend host_backend() { return backend_for(false, memory::runtime("cpu").libtorch_major, 0); }

zoo::Workload workload(const std::string& model, zoo::Mode mode, zoo::DType dtype, const std::string& lora,
                       int64_t batch, int64_t seq, zoo::Optimizer optimizer = zoo::Optimizer::kAdamW) {
  zoo::Workload w;
  w.model = zoo::find_model(model).value();
  w.mode = mode;
  w.dtype = dtype;
  w.lora = zoo::parse_lora(lora).value();
  w.batch = batch;
  w.seq = seq;
  w.optimizer = optimizer;
  return w;
}

TEST(Estimator, Llama7bLoraParametersStateAndOrder) {
  const auto w = workload("llama-7b", zoo::Mode::kTrain, zoo::DType::kBFloat16, "r16:q,k,v,o", 1, 2048);
  const auto e = estimate(w, kCuda).value();
  EXPECT_EQ(e.trainable_bytes, 16'777'216 * 2);  // PEFT's count for r16 on q,k,v,o
  EXPECT_EQ(e.parameter_bytes, (6'738'415'616 + 16'777'216) * 2);
  EXPECT_EQ(e.optimizer_bytes, 2 * e.trainable_bytes);
  EXPECT_EQ(e.stages.size(), 1u + 2 * 32 + 2);  // embedding, two per layer, norm, head
  EXPECT_GT(e.peak_bytes, e.parameter_bytes + e.activation_bytes);
  // Activations at 2048 tokens are gigabytes, not megabytes, and scale with tokens.
  EXPECT_GT(e.activation_bytes, 4ll << 30);
  const auto half =
      estimate(workload("llama-7b", zoo::Mode::kTrain, zoo::DType::kBFloat16, "r16:q,k,v,o", 1, 1024), kCuda).value();
  EXPECT_NEAR(static_cast<double>(half.activation_bytes) / static_cast<double>(e.activation_bytes), 0.5, 0.01);
}

TEST(Estimator, GrowsWithBatchAndBatchZeroIsTheFixedPart) {
  for (const char* model : {"gpt2", "vit-b16", "resnet50", "llama-1b"}) {
    int64_t previous = 0;
    for (const int64_t batch : {0, 1, 2, 8}) {
      const auto e = estimate(workload(model, zoo::Mode::kTrain, zoo::DType::kFloat32, "", batch, 256), kCuda).value();
      EXPECT_GT(e.peak_bytes, previous) << model << " batch " << batch;
      if (batch == 0) {
        EXPECT_EQ(e.peak_bytes, e.parameter_bytes + e.optimizer_bytes + e.workspace_bytes);
      }
      previous = e.peak_bytes;
    }
  }
}

TEST(Estimator, InferenceKeepsNothingAndNeedsLess) {
  const auto train = estimate(workload("gpt2", zoo::Mode::kTrain, zoo::DType::kFloat16, "", 8, 1024), kCuda);
  const auto infer = estimate(workload("gpt2", zoo::Mode::kInference, zoo::DType::kFloat16, "", 8, 1024), kCuda);
  ASSERT_TRUE(train.ok() && infer.ok());
  EXPECT_EQ(infer->optimizer_bytes, 0);
  EXPECT_EQ(infer->gradient_bytes, 0);
  EXPECT_LT(infer->peak_bytes, train->peak_bytes / 2);
  EXPECT_EQ(infer->peak_phase, "forward");
}

TEST(Estimator, RejectsImpossibleWorkloads) {
  EXPECT_FALSE(estimate(workload("resnet50", zoo::Mode::kTrain, zoo::DType::kFloat32, "r8", 8, 0), kCuda).ok());
  auto w = workload("gpt2", zoo::Mode::kTrain, zoo::DType::kFloat32, "", 1, 16);
  w.batch = -1;
  EXPECT_EQ(estimate(w, kCuda).error().code, core::ErrorCode::kInvalidArgument);
}

// On the CPU, what each stage keeps is predicted to within a few kilobytes of the measurement; the whole peak,
// where tiny models' transients weigh more, to within 12%.
TEST(Estimator, AgreesWithTheProfilerOnTheCpu) {
  at::set_num_threads(2);
  const std::vector<zoo::Workload> workloads = {
      workload("llama-tiny", zoo::Mode::kTrain, zoo::DType::kFloat32, "", 2, 64),
      workload("llama-tiny", zoo::Mode::kTrain, zoo::DType::kFloat32, "r4:q,k,v,o", 2, 64),
      workload("gpt2-tiny", zoo::Mode::kTrain, zoo::DType::kFloat32, "", 2, 64),
      workload("vit-tiny", zoo::Mode::kTrain, zoo::DType::kFloat32, "", 4, 0),
      workload("resnet-tiny", zoo::Mode::kTrain, zoo::DType::kFloat32, "", 4, 0, zoo::Optimizer::kSgdMomentum),
      workload("llama-tiny", zoo::Mode::kInference, zoo::DType::kFloat32, "", 2, 64),
  };
  for (const auto& w : workloads) {
    SCOPED_TRACE(w.model.name + (w.lora.enabled() ? " LoRA" : "") + " " + zoo::to_string(w.mode));
    const auto predicted = estimate(w, host_backend()).value();
    profile::ProfileOptions options;
    options.workload = w;
    options.timed_steps = 0;
    const auto measured = profile::profile_step(options).value();
    ASSERT_EQ(predicted.stages.size(), measured.stages.size());
    for (size_t i = 0; i < measured.stages.size(); ++i) {
      EXPECT_EQ(predicted.stages[i].name, measured.stages[i].name);
      EXPECT_EQ(predicted.stages[i].parameter_bytes, measured.stages[i].parameter_bytes) << measured.stages[i].name;
      EXPECT_EQ(predicted.stages[i].trainable_bytes, measured.stages[i].trainable_bytes) << measured.stages[i].name;
      EXPECT_LE(std::llabs(predicted.stages[i].activation_bytes - measured.stages[i].activation_bytes), 8 << 10)
          << measured.stages[i].name;
    }
    const double error = static_cast<double>(predicted.peak_bytes - measured.peak.peak_bytes) /
                         static_cast<double>(measured.peak.peak_bytes);
    EXPECT_LT(std::fabs(error), 0.12) << "predicted " << predicted.peak_bytes << " measured "
                                      << measured.peak.peak_bytes;
  }
}

}  // namespace
}  // namespace vram::estimate
