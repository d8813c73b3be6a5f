#include "vram/zoo/zoo.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace vram::zoo {
namespace {

constexpr int64_t kBatch = 2;
constexpr int64_t kSeq = 8;

class ZooTest : public ::testing::Test {
 protected:
  // The test machine has two cores shared with other builds.
  static void SetUpTestSuite() { at::set_num_threads(2); }
};

LoraSpec lora_on_every_target(Family family) {
  LoraSpec lora;
  lora.rank = 4;
  lora.targets = family == Family::kLlama ? std::vector<std::string>{"q", "k", "v", "o", "gate", "up", "down"}
                                          : std::vector<std::string>{"q", "k", "v", "o", "fc1", "fc2"};
  return lora;
}

ModelOptions options_for(const std::string& name, bool lora, DType dtype = DType::kFloat32) {
  ModelOptions options;
  options.spec = find_model(name).value();
  options.dtype = dtype;
  if (lora) options.lora = lora_on_every_target(options.spec.family);
  options.seed = 7;
  return options;
}

// nullptr (and a failure) when creation fails, so that tests can ASSERT on it.
std::unique_ptr<Model> create(const ModelOptions& options) {
  auto model = Model::create(options);
  EXPECT_TRUE(model.ok()) << model.error().message;
  return model.ok() ? std::move(model).value() : nullptr;
}

int64_t numel(const std::vector<at::Tensor>& tensors) {
  int64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.numel();
  return total;
}

std::vector<int64_t> expected_output_shape(const ModelSpec& spec) {
  if (spec.is_language_model()) return {kBatch, kSeq, spec.vocab};
  return {kBatch, spec.classes};
}

TEST_F(ZooTest, PublishedParameterCounts) {
  const std::vector<std::pair<std::string, int64_t>> published = {
      {"llama-7b", 6'738'415'616}, {"gpt2", 124'439'808}, {"vit-b16", 86'567'656}, {"resnet50", 25'557'032}};
  for (const auto& [name, parameters] : published) {
    const auto count = count_parameters(find_model(name).value(), {});
    EXPECT_EQ(count.total, parameters) << name;
    EXPECT_EQ(count.trainable, parameters) << name;
  }
}

TEST_F(ZooTest, LoraParameterCountMatchesPeft) {
  // PEFT reports 16,777,216 trainable parameters for Llama-2-7B with r=16 on q, k, v, o.
  const auto count = count_parameters(find_model("llama-7b").value(), parse_lora("r16:q,k,v,o").value());
  EXPECT_EQ(count.trainable, 16'777'216);
  EXPECT_EQ(count.total, 6'738'415'616 + 16'777'216);
}

TEST_F(ZooTest, ParsesNamesAndSpecs) {
  for (auto dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    EXPECT_EQ(parse_dtype(to_string(dtype)).value(), dtype);
  }
  EXPECT_EQ(parse_dtype("bfloat16").value(), DType::kBFloat16);
  EXPECT_EQ(bytes_per_element(DType::kBFloat16), 2);
  EXPECT_FALSE(parse_dtype("int8").ok());
  for (auto optimizer : {Optimizer::kAdamW, Optimizer::kSgd, Optimizer::kSgdMomentum}) {
    EXPECT_EQ(parse_optimizer(to_string(optimizer)).value(), optimizer);
  }
  EXPECT_FALSE(parse_optimizer("lion").ok());

  EXPECT_FALSE(parse_lora("").value().enabled());
  EXPECT_FALSE(parse_lora("0").value().enabled());
  const auto plain = parse_lora("16").value();
  EXPECT_EQ(plain.rank, 16);
  EXPECT_EQ(plain.targets, (std::vector<std::string>{"q", "k", "v", "o"}));
  const auto targeted = parse_lora("r8:q,v,down").value();
  EXPECT_EQ(targeted.rank, 8);
  EXPECT_EQ(targeted.targets, (std::vector<std::string>{"q", "v", "down"}));
  EXPECT_FALSE(parse_lora("rx").ok());
  EXPECT_FALSE(parse_lora("-4").ok());
}

TEST_F(ZooTest, UnknownModelListsTheKnownOnes) {
  const auto model = find_model("llama-70b");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, core::ErrorCode::kNotFound);
  for (const auto& name : model_names()) EXPECT_NE(model.error().message.find(name), std::string::npos) << name;
}

TEST_F(ZooTest, RejectsLoraTargetsTheFamilyLacks) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"llama-tiny", "fc1"}, {"gpt2-tiny", "gate"}, {"vit-tiny", "head"}, {"resnet-tiny", "q"}};
  for (const auto& [name, target] : cases) {
    ModelOptions options = options_for(name, false);
    options.lora.rank = 4;
    options.lora.targets = {target};
    const auto model = Model::create(options);
    ASSERT_FALSE(model.ok()) << name;
    EXPECT_EQ(model.error().code, core::ErrorCode::kInvalidArgument) << name;
  }
}

TEST_F(ZooTest, MissingDeviceIsUnavailable) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA present";
  ModelOptions options = options_for("llama-tiny", false);
  options.device = "cuda";
  const auto model = Model::create(options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().code, core::ErrorCode::kUnavailable);

  options.device = "gpu0";
  EXPECT_EQ(Model::create(options).error().code, core::ErrorCode::kInvalidArgument);
}

TEST_F(ZooTest, SameSeedSameParameters) {
  const auto first = create(options_for("llama-tiny", true));
  const auto second = create(options_for("llama-tiny", true));
  ASSERT_TRUE(first && second);
  const auto a = first->parameters();
  const auto b = second->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << i;
}

TEST_F(ZooTest, BatchesAreReproducibleAndShifted) {
  const auto model = create(options_for("gpt2-tiny", false));
  ASSERT_TRUE(model);
  const Batch batch = model->make_batch(kBatch, kSeq, 3);
  EXPECT_TRUE(batch.input.equal(model->make_batch(kBatch, kSeq, 3).input));
  EXPECT_FALSE(batch.input.equal(model->make_batch(kBatch, kSeq, 4).input));
  EXPECT_EQ(batch.input.sizes(), batch.target.sizes());
  EXPECT_TRUE(batch.target.slice(1, 0, kSeq - 1).equal(batch.input.slice(1, 1)));
  EXPECT_GE(batch.input.min().item<int64_t>(), 0);
  EXPECT_LT(batch.input.max().item<int64_t>(), model->options().spec.vocab);

  const auto vision = create(options_for("vit-tiny", false));
  ASSERT_TRUE(vision);
  const Batch images = vision->make_batch(kBatch, kSeq, 3);
  EXPECT_EQ(images.input.sizes(), (std::vector<int64_t>{kBatch, 3, 32, 32}));
  EXPECT_TRUE(images.input.equal(vision->make_batch(kBatch, kSeq, 3).input));
  EXPECT_EQ(images.target.sizes(), (std::vector<int64_t>{kBatch}));
}

TEST_F(ZooTest, LanguageModelsAreCausal) {
  for (const char* name : {"llama-tiny", "gpt2-tiny"}) {
    const auto model = create(options_for(name, false));
    ASSERT_TRUE(model);
    at::NoGradGuard no_grad;
    const at::Tensor input = model->make_batch(1, kSeq, 1).input;
    at::Tensor changed = input.clone();
    changed.index_put_({0, kSeq - 1}, (input[0][kSeq - 1].item<int64_t>() + 1) % model->options().spec.vocab);
    const at::Tensor before = model->forward(input);
    const at::Tensor after = model->forward(changed);
    EXPECT_TRUE(before.slice(1, 0, kSeq - 1).equal(after.slice(1, 0, kSeq - 1))) << name;
    EXPECT_FALSE(before.slice(1, kSeq - 1).equal(after.slice(1, kSeq - 1))) << name;
  }
}

TEST_F(ZooTest, BFloat16RunsInBFloat16) {
  for (const char* name : {"llama-tiny", "gpt2-tiny", "vit-tiny", "resnet-tiny"}) {
    const auto model = create(options_for(name, false, DType::kBFloat16));
    ASSERT_TRUE(model);
    const Batch batch = model->make_batch(kBatch, kSeq, 1);
    const at::Tensor output = model->forward(batch.input);
    EXPECT_EQ(output.scalar_type(), at::kBFloat16) << name;
    const at::Tensor loss = model->loss(output, batch.target);
    EXPECT_EQ(loss.scalar_type(), at::kFloat) << name;
    EXPECT_TRUE(std::isfinite(loss.item<float>())) << name;
  }
}

TEST_F(ZooTest, AdamWStepTrainsOnlyTheAdapters) {
  const auto model = create(options_for("llama-tiny", true));
  ASSERT_TRUE(model);
  std::vector<at::Tensor> before;
  for (const auto& parameter : model->parameters()) before.push_back(parameter.detach().clone());
  torch::optim::AdamW optimizer(model->trainable_parameters(), torch::optim::AdamWOptions(1e-3));
  const Batch batch = model->make_batch(kBatch, kSeq, 1);
  model->loss(model->forward(batch.input), batch.target).backward();
  optimizer.step();

  const auto after = model->parameters();
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < after.size(); ++i) {
    if (after[i].requires_grad()) {
      EXPECT_FALSE(after[i].equal(before[i])) << "adapter " << i << " did not move";
    } else {
      EXPECT_TRUE(after[i].equal(before[i])) << "frozen " << i << " moved";
    }
  }
}

struct Case {
  std::string model;
  bool lora = false;
};

class EveryTinyModel : public ZooTest, public ::testing::WithParamInterface<Case> {};

TEST_P(EveryTinyModel, CountMatchesTheBuiltModel) {
  const ModelOptions options = options_for(GetParam().model, GetParam().lora);
  const auto model = create(options);
  ASSERT_TRUE(model);
  const ParameterCount count = count_parameters(options.spec, options.lora);
  EXPECT_EQ(count.total, numel(model->parameters()));
  EXPECT_EQ(count.trainable, numel(model->trainable_parameters()));
  // Each parameter belongs to exactly one stage, so per-stage weight memory adds up to the model's.
  int64_t in_stages = 0;
  for (size_t index = 0; index < model->stage_count(); ++index) in_stages += numel(model->stage(index).parameters());
  EXPECT_EQ(in_stages, count.total);
  if (options.lora.enabled()) {
    EXPECT_LT(count.trainable, count.total / 2);
  }
}

TEST_P(EveryTinyModel, BackwardReachesExactlyTheTrainableParameters) {
  const auto model = create(options_for(GetParam().model, GetParam().lora));
  ASSERT_TRUE(model);
  const Batch batch = model->make_batch(kBatch, kSeq, 1);
  const at::Tensor output = model->forward(batch.input);
  EXPECT_EQ(output.sizes(), expected_output_shape(model->options().spec));
  const at::Tensor loss = model->loss(output, batch.target);
  ASSERT_TRUE(std::isfinite(loss.item<float>()));
  loss.backward();
  for (const auto& item : model->module().named_parameters()) {
    const std::string& name = item.key();
    const at::Tensor& parameter = item.value();
    if (parameter.requires_grad()) {
      ASSERT_TRUE(parameter.grad().defined()) << name;
      EXPECT_GT(parameter.grad().abs().max().item<float>(), 0.0F) << name;
    } else {
      EXPECT_FALSE(parameter.grad().defined()) << name;
    }
  }
}

TEST_P(EveryTinyModel, StagesOneByOneEqualForward) {
  const auto model = create(options_for(GetParam().model, GetParam().lora));
  ASSERT_TRUE(model);
  model->module().eval();  // BatchNorm on running statistics: both passes see the same normalisation
  at::NoGradGuard no_grad;
  const at::Tensor input = model->make_batch(kBatch, kSeq, 1).input;
  at::Tensor x = input;
  for (size_t index = 0; index < model->stage_count(); ++index) x = model->stage(index).forward(x);
  EXPECT_TRUE(x.equal(model->forward(input)));
  EXPECT_EQ(model->stage_info(0).name, model->options().spec.family == Family::kResNet ? "stem" : "embedding");
  EXPECT_EQ(model->stage_info(model->stage_count() - 1).name, "head");
}

INSTANTIATE_TEST_SUITE_P(Zoo, EveryTinyModel,
                         ::testing::Values(Case{"llama-tiny", false}, Case{"llama-tiny", true},
                                           Case{"gpt2-tiny", false}, Case{"gpt2-tiny", true}, Case{"vit-tiny", false},
                                           Case{"vit-tiny", true}, Case{"resnet-tiny", false}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           std::string name = param_info.param.model + (param_info.param.lora ? "_lora" : "_full");
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace vram::zoo
