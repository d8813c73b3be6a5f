#include "vram/zoo/zoo.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <new>
#include <utility>

namespace vram::zoo {
namespace {

constexpr double kInitStd = 0.02;  // GPT-2's and Llama's initializer range
constexpr double kNormEps = 1e-5;  // Llama-2's RMSNorm and GPT-2's LayerNorm
constexpr double kRopeTheta = 10000.0;
constexpr double kBatchNormMomentum = 0.1;
constexpr int64_t kBottleneckExpansion = 4;

at::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
  }
  return at::kFloat;
}

// A private generator of the device's kind, so that seeding it leaves the process-wide one alone. On the CPU it is
// made directly: LibTorch 1.13's Generator::clone() leaks the clone. Cloning the default generator is the one way
// to get a CUDA generator without CUDA headers.
at::Generator seeded_generator(at::Device device, uint64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Generator global = at::globalContext().defaultGenerator(device);
  at::Generator generator;
  {
    std::lock_guard<std::mutex> lock(global.mutex());
    generator = global.clone();
  }
  generator.set_current_seed(seed);
  return generator;
}

// Creates parameters directly on the target device in the target dtype: building float32 on the CPU and
// converting would need twice the model in host memory and minutes for llama-7b.
class Init {
 public:
  Init(const ModelOptions& options, at::Device device)
      : options_(at::TensorOptions().dtype(scalar_type(options.dtype)).device(device)),
        generator_(seeded_generator(device, options.seed)),
        lora_(options.lora) {}

  at::Tensor normal(at::IntArrayRef shape) { return at::empty(shape, options_).normal_(0.0, kInitStd, generator_); }
  at::Tensor ones(at::IntArrayRef shape) const { return at::ones(shape, options_); }
  at::Tensor zeros(at::IntArrayRef shape) const { return at::zeros(shape, options_); }

  // Under LoRA every base tensor is frozen, norms and embeddings included; only adapters train.
  bool base_trains() const { return !lora_.enabled(); }
  bool adapts(const std::string& target) const {
    return lora_.enabled() && std::find(lora_.targets.begin(), lora_.targets.end(), target) != lora_.targets.end();
  }
  const LoraSpec& lora() const { return lora_; }

 private:
  at::TensorOptions options_;
  at::Generator generator_;
  LoraSpec lora_;
};

// A linear layer, with a LoRA adapter when its name is a LoRA target: y = x W^T + b + (x A^T) B^T * alpha / rank.
class Linear final : public torch::nn::Module {
 public:
  Linear(Init& init, int64_t in, int64_t out, bool bias, const std::string& name) {
    weight_ = register_parameter("weight", init.normal({out, in}), init.base_trains());
    if (bias) bias_ = register_parameter("bias", init.zeros({out}), init.base_trains());
    if (!init.adapts(name)) return;
    const int64_t rank = init.lora().rank;
    lora_a_ = register_parameter("lora_a", init.normal({rank, in}));
    // B starts random, not zero as in PEFT: with B = 0 the first backward gives A a zero gradient, and a test
    // could not tell an A that trains from one cut off the graph. Memory and compute are the same either way.
    lora_b_ = register_parameter("lora_b", init.normal({out, rank}));
    lora_scale_ = init.lora().alpha / static_cast<double>(rank);
  }

  at::Tensor forward(const at::Tensor& input) {
    at::Tensor output = at::linear(input, weight_, bias_);
    if (!lora_a_.defined()) return output;
    return output + at::linear(at::linear(input, lora_a_), lora_b_) * lora_scale_;
  }

 private:
  at::Tensor weight_;
  at::Tensor bias_;
  at::Tensor lora_a_;  // [rank, in]
  at::Tensor lora_b_;  // [out, rank]
  double lora_scale_ = 0.0;
};

enum class NormKind { kRms, kLayer };

NormKind norm_kind(const ModelSpec& spec) { return spec.family == Family::kLlama ? NormKind::kRms : NormKind::kLayer; }

class Norm final : public Stage {
 public:
  Norm(Init& init, int64_t width, NormKind kind) : width_(width) {
    weight_ = register_parameter("weight", init.ones({width}), init.base_trains());
    if (kind == NormKind::kLayer) bias_ = register_parameter("bias", init.zeros({width}), init.base_trains());
  }

  at::Tensor forward(const at::Tensor& input) override {
    if (bias_.defined()) return at::layer_norm(input, {width_}, weight_, bias_, kNormEps);
    // As HF Llama: the mean square in float32 (bf16 squares lose too much), cast back before the weight.
    const at::Tensor input_fp32 = input.to(at::kFloat);
    const at::Tensor normalized = input_fp32 * at::rsqrt(input_fp32.pow(2).mean(-1, true) + kNormEps);
    return weight_ * normalized.to(input.scalar_type());
  }

 private:
  int64_t width_;
  at::Tensor weight_;
  at::Tensor bias_;  // LayerNorm only
};

// HF Llama's rotary convention: channel i rotates with channel i + head_dim / 2.
at::Tensor rotate_half(const at::Tensor& x) {
  const auto halves = x.chunk(2, -1);
  return at::cat({-halves[1], halves[0]}, -1);
}

// cos and sin [seq, head_dim] of the rotary angles, computed in float32 (bf16 positions above 256 are not
// exact) and cast to the activations' dtype. q and k share them.
std::pair<at::Tensor, at::Tensor> rotary_tables(int64_t seq, int64_t head_dim, const at::TensorOptions& options) {
  const auto fp32 = options.dtype(at::kFloat);
  const at::Tensor inverse_frequency =
      at::pow(kRopeTheta, at::arange(0, head_dim, 2, fp32) / static_cast<double>(head_dim)).reciprocal();
  const at::Tensor angles = at::outer(at::arange(seq, fp32), inverse_frequency);
  const at::Tensor both_halves = at::cat({angles, angles}, -1);
  return {both_halves.cos().to(options.dtype()), both_halves.sin().to(options.dtype())};
}

// x [batch, heads, seq, head_dim] rotated by position.
at::Tensor rotate(const at::Tensor& x, const std::pair<at::Tensor, at::Tensor>& cos_sin) {
  return x * cos_sin.first + rotate_half(x) * cos_sin.second;
}

// Softmax(q k^T / sqrt(head_dim)) v over [batch, heads, seq, head_dim].
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
  // LibTorch 1.13 has no public fused attention. The in-place scale and mask touch only the product, which
  // backward does not need, so they save a [seq, seq] buffer per head without changing what autograd keeps.
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)).mul_(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  if (causal) {
    const int64_t seq = q.size(2);
    scores.masked_fill_(at::ones({seq, seq}, q.options().dtype(at::kBool)).triu_(1),
                        -std::numeric_limits<double>::infinity());
  }
  return at::matmul(at::softmax(scores, -1), v);
#endif
}

// Pre-norm self-attention with the residual: x + o(attend(q(n), k(n), v(n))), n = norm(x). Llama adds rotary
// embeddings and shares each key/value head among heads / kv_heads query heads; ViT attends both ways.
class Attention final : public Stage {
 public:
  Attention(Init& init, const ModelSpec& spec)
      : heads_(spec.heads),
        kv_heads_(spec.kv_heads),
        llama_(spec.family == Family::kLlama),
        causal_(spec.family != Family::kVit) {
    const int64_t kv_width = spec.kv_heads * (spec.hidden / spec.heads);
    const bool bias = !llama_;
    norm_ = register_module("norm", std::make_shared<Norm>(init, spec.hidden, norm_kind(spec)));
    q_ = register_module("q", std::make_shared<Linear>(init, spec.hidden, spec.hidden, bias, "q"));
    k_ = register_module("k", std::make_shared<Linear>(init, spec.hidden, kv_width, bias, "k"));
    v_ = register_module("v", std::make_shared<Linear>(init, spec.hidden, kv_width, bias, "v"));
    o_ = register_module("o", std::make_shared<Linear>(init, spec.hidden, spec.hidden, bias, "o"));
  }

  at::Tensor forward(const at::Tensor& input) override {
    const at::Tensor normalized = norm_->forward(input);
    at::Tensor q = split_heads(q_->forward(normalized), heads_);
    at::Tensor k = split_heads(k_->forward(normalized), kv_heads_);
    const at::Tensor v = split_heads(v_->forward(normalized), kv_heads_);
    if (llama_) {
      const auto cos_sin = rotary_tables(input.size(1), q.size(3), q.options());
      q = rotate(q, cos_sin);
      k = rotate(k, cos_sin);
    }
    const at::Tensor attended = attend(q, repeat_kv(k), repeat_kv(v), causal_);
    return input + o_->forward(attended.transpose(1, 2).reshape({input.size(0), input.size(1), -1}));
  }

 private:
  // [batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim]
  static at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
    return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
  }

  at::Tensor repeat_kv(const at::Tensor& x) const {
    const int64_t groups = heads_ / kv_heads_;
    if (groups == 1) return x;
    const int64_t batch = x.size(0), seq = x.size(2), head_dim = x.size(3);
    return x.unsqueeze(2).expand({batch, kv_heads_, groups, seq, head_dim}).reshape({batch, heads_, seq, head_dim});
  }

  int64_t heads_;
  int64_t kv_heads_;
  bool llama_;
  bool causal_;
  std::shared_ptr<Norm> norm_;
  std::shared_ptr<Linear> q_, k_, v_, o_;
};

// Pre-norm MLP with the residual. Llama: x + down(silu(gate(n)) * up(n)); GPT-2 and ViT: x + fc2(gelu(fc1(n))),
// GELU with GPT-2's tanh approximation, exact for ViT.
class Mlp final : public Stage {
 public:
  Mlp(Init& init, const ModelSpec& spec) : gelu_approximation_(spec.family == Family::kGpt2 ? "tanh" : "none") {
    const bool llama = spec.family == Family::kLlama;
    const std::string in_name = llama ? "up" : "fc1";
    const std::string out_name = llama ? "down" : "fc2";
    norm_ = register_module("norm", std::make_shared<Norm>(init, spec.hidden, norm_kind(spec)));
    if (llama)
      gate_ = register_module("gate", std::make_shared<Linear>(init, spec.hidden, spec.intermediate, false, "gate"));
    in_ = register_module(in_name, std::make_shared<Linear>(init, spec.hidden, spec.intermediate, !llama, in_name));
    out_ = register_module(out_name, std::make_shared<Linear>(init, spec.intermediate, spec.hidden, !llama, out_name));
  }

  at::Tensor forward(const at::Tensor& input) override {
    const at::Tensor normalized = norm_->forward(input);
    const at::Tensor hidden = gate_ ? at::silu(gate_->forward(normalized)) * in_->forward(normalized)
                                    : at::gelu(in_->forward(normalized), gelu_approximation_);
    return input + out_->forward(hidden);
  }

 private:
  std::string gelu_approximation_;
  std::shared_ptr<Norm> norm_;
  std::shared_ptr<Linear> gate_;  // Llama only
  std::shared_ptr<Linear> in_, out_;
};

// Token ids [batch, seq] -> [batch, seq, hidden]; GPT-2 adds learned positions.
class TokenEmbedding final : public Stage {
 public:
  TokenEmbedding(Init& init, const ModelSpec& spec) {
    tokens_ = register_parameter("tokens", init.normal({spec.vocab, spec.hidden}), init.base_trains());
    if (spec.max_positions > 0) {
      positions_ = register_parameter("positions", init.normal({spec.max_positions, spec.hidden}), init.base_trains());
    }
  }

  at::Tensor forward(const at::Tensor& input) override {
    const at::Tensor embedded = at::embedding(tokens_, input);
    if (!positions_.defined()) return embedded;
    return embedded + at::embedding(positions_, at::arange(input.size(1), input.options()));
  }

  const at::Tensor& tokens() const { return tokens_; }

 private:
  at::Tensor tokens_;
  at::Tensor positions_;  // GPT-2 only
};

// Images [batch, 3, side, side] -> [batch, 1 + patches, hidden]: class token first, then the patches row by row.
class PatchEmbedding final : public Stage {
 public:
  PatchEmbedding(Init& init, const ModelSpec& spec) : patch_(spec.patch) {
    const int64_t side_patches = spec.image_size / spec.patch;
    weight_ = register_parameter("weight", init.normal({spec.hidden, 3, spec.patch, spec.patch}), init.base_trains());
    bias_ = register_parameter("bias", init.zeros({spec.hidden}), init.base_trains());
    class_token_ = register_parameter("class_token", init.normal({1, 1, spec.hidden}), init.base_trains());
    positions_ = register_parameter("positions", init.normal({1, side_patches * side_patches + 1, spec.hidden}),
                                    init.base_trains());
  }

  at::Tensor forward(const at::Tensor& input) override {
    const at::Tensor patches = at::conv2d(input, weight_, bias_, {patch_, patch_}).flatten(2).transpose(1, 2);
    return at::cat({class_token_.expand({input.size(0), 1, -1}), patches}, 1) + positions_;
  }

 private:
  int64_t patch_;
  at::Tensor weight_, bias_, class_token_, positions_;
};

enum class Pool {
  kNone,         // language models: logits at every position
  kClassToken,   // ViT: the class token
  kSpatialMean,  // ResNet: global average pool
};

class Head final : public Stage {
 public:
  Head(Init& init, int64_t in, int64_t out, bool bias, Pool pool) : pool_(pool) {
    weight_ = register_parameter("weight", init.normal({out, in}), init.base_trains());
    if (bias) bias_ = register_parameter("bias", init.zeros({out}), init.base_trains());
  }
  // GPT-2 ties the head to the token embedding. The tensor stays registered only in the embedding, so
  // parameters() and optimizers see it once.
  explicit Head(at::Tensor tied_weight) : pool_(Pool::kNone), weight_(std::move(tied_weight)), tied_(true) {}

  std::vector<at::Tensor> shared_parameters() const override {
    return tied_ ? std::vector<at::Tensor>{weight_} : std::vector<at::Tensor>{};
  }

  at::Tensor forward(const at::Tensor& input) override {
    switch (pool_) {
      case Pool::kNone: return at::linear(input, weight_, bias_);
      case Pool::kClassToken: return at::linear(input.select(1, 0), weight_, bias_);
      case Pool::kSpatialMean: return at::linear(input.mean({2, 3}), weight_, bias_);
    }
    return {};
  }

 private:
  Pool pool_;
  at::Tensor weight_;
  at::Tensor bias_;
  bool tied_ = false;
};

class Conv final : public torch::nn::Module {
 public:
  Conv(Init& init, int64_t in, int64_t out, int64_t kernel, int64_t stride) : stride_(stride), padding_(kernel / 2) {
    weight_ = register_parameter("weight", init.normal({out, in, kernel, kernel}), init.base_trains());
  }

  at::Tensor forward(const at::Tensor& input) {
    return at::conv2d(input, weight_, {}, {stride_, stride_}, {padding_, padding_});
  }

 private:
  int64_t stride_;
  int64_t padding_;
  at::Tensor weight_;
};

// Batch statistics in train mode, running statistics in eval mode (Module::train/eval on the model's root).
class BatchNorm final : public torch::nn::Module {
 public:
  BatchNorm(Init& init, int64_t channels) {
    weight_ = register_parameter("weight", init.ones({channels}), init.base_trains());
    bias_ = register_parameter("bias", init.zeros({channels}), init.base_trains());
    running_mean_ = register_buffer("running_mean", init.zeros({channels}));
    running_var_ = register_buffer("running_var", init.ones({channels}));
  }

  at::Tensor forward(const at::Tensor& input) {
    return at::batch_norm(input, weight_, bias_, running_mean_, running_var_, is_training(), kBatchNormMomentum,
                          kNormEps, /*cudnn_enabled=*/true);
  }

 private:
  at::Tensor weight_, bias_, running_mean_, running_var_;
};

// 7x7/2 convolution, BatchNorm, ReLU, 3x3/2 max pool: a quarter of the image side.
class Stem final : public Stage {
 public:
  Stem(Init& init, int64_t width) {
    conv_ = register_module("conv", std::make_shared<Conv>(init, 3, width, 7, 2));
    bn_ = register_module("bn", std::make_shared<BatchNorm>(init, width));
  }

  at::Tensor forward(const at::Tensor& input) override {
    return at::max_pool2d(bn_->forward(conv_->forward(input)).relu_(), {3, 3}, {2, 2}, {1, 1});
  }

 private:
  std::shared_ptr<Conv> conv_;
  std::shared_ptr<BatchNorm> bn_;
};

// ResNet v1.5 bottleneck: the stride sits on the 3x3 convolution. ReLUs run in place on BatchNorm outputs, which
// BatchNorm's backward does not need (as torchvision's inplace=True).
class Bottleneck final : public Stage {
 public:
  Bottleneck(Init& init, int64_t in, int64_t width, int64_t stride, bool downsample) {
    const int64_t out = kBottleneckExpansion * width;
    conv1_ = register_module("conv1", std::make_shared<Conv>(init, in, width, 1, 1));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm>(init, width));
    conv2_ = register_module("conv2", std::make_shared<Conv>(init, width, width, 3, stride));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm>(init, width));
    conv3_ = register_module("conv3", std::make_shared<Conv>(init, width, out, 1, 1));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm>(init, out));
    if (!downsample) return;
    downsample_conv_ = register_module("downsample_conv", std::make_shared<Conv>(init, in, out, 1, stride));
    downsample_bn_ = register_module("downsample_bn", std::make_shared<BatchNorm>(init, out));
  }

  at::Tensor forward(const at::Tensor& input) override {
    at::Tensor x = bn1_->forward(conv1_->forward(input)).relu_();
    x = bn2_->forward(conv2_->forward(x)).relu_();
    x = bn3_->forward(conv3_->forward(x));
    const at::Tensor identity = downsample_conv_ ? downsample_bn_->forward(downsample_conv_->forward(input)) : input;
    return (x + identity).relu_();
  }

 private:
  std::shared_ptr<Conv> conv1_, conv2_, conv3_, downsample_conv_;
  std::shared_ptr<BatchNorm> bn1_, bn2_, bn3_, downsample_bn_;
};

// The stages in order, registered under their dotted names ("layers.3.mlp" as layers -> 3 -> mlp) so that
// parameter names start with the name of the stage that holds them.
class Stages {
 public:
  explicit Stages(std::vector<bool> frozen_to_host) : frozen_to_host_(std::move(frozen_to_host)) {}

  void add(const std::string& name, std::string kind, std::shared_ptr<Stage> stage) {
    if (stages_.size() < frozen_to_host_.size() && frozen_to_host_[stages_.size()]) {
      at::NoGradGuard no_grad;
      for (auto& parameter : stage->parameters()) {
        if (!parameter.requires_grad()) parameter.set_data(parameter.to(at::kCPU));
      }
    }
    torch::nn::Module* parent = &root_;
    size_t start = 0;
    for (size_t dot = name.find('.'); dot != std::string::npos; start = dot + 1, dot = name.find('.', start)) {
      const std::string part = name.substr(start, dot - start);
      const auto children = parent->named_children();
      const auto* found = children.find(part);
      parent = found ? found->get() : parent->register_module(part, std::make_shared<torch::nn::Module>()).get();
    }
    parent->register_module(name.substr(start), stage);
    infos_.push_back({name, std::move(kind)});
    stages_.push_back(std::move(stage));
  }

  torch::nn::Module& root() { return root_; }
  size_t size() const { return stages_.size(); }
  const StageInfo& info(size_t index) const { return infos_.at(index); }
  Stage& stage(size_t index) { return *stages_.at(index); }

 private:
  std::vector<bool> frozen_to_host_;
  torch::nn::Module root_{"Model"};
  std::vector<StageInfo> infos_;
  std::vector<std::shared_ptr<Stage>> stages_;  // shared with root_: torch::nn::Module owns children that way
};

void build_transformer(const ModelSpec& spec, Init& init, Stages& stages) {
  at::Tensor token_table;  // for GPT-2's tied head
  if (spec.family == Family::kVit) {
    stages.add("embedding", "embedding", std::make_shared<PatchEmbedding>(init, spec));
  } else {
    auto embedding = std::make_shared<TokenEmbedding>(init, spec);
    token_table = embedding->tokens();
    stages.add("embedding", "embedding", std::move(embedding));
  }
  for (int64_t layer = 0; layer < spec.layers; ++layer) {
    const std::string prefix = "layers." + std::to_string(layer);
    stages.add(prefix + ".attention", "attention", std::make_shared<Attention>(init, spec));
    stages.add(prefix + ".mlp", "mlp", std::make_shared<Mlp>(init, spec));
  }
  stages.add("norm", "norm", std::make_shared<Norm>(init, spec.hidden, norm_kind(spec)));
  switch (spec.family) {
    case Family::kLlama:
      stages.add("head", "head", std::make_shared<Head>(init, spec.hidden, spec.vocab, false, Pool::kNone));
      break;
    case Family::kGpt2: stages.add("head", "head", std::make_shared<Head>(token_table)); break;
    case Family::kVit:
      stages.add("head", "head", std::make_shared<Head>(init, spec.hidden, spec.classes, true, Pool::kClassToken));
      break;
    case Family::kResNet: break;
  }
}

void build_resnet(const ModelSpec& spec, Init& init, Stages& stages) {
  stages.add("stem", "conv", std::make_shared<Stem>(init, spec.base_width));
  int64_t in = spec.base_width;
  for (size_t stage = 0; stage < spec.blocks_per_stage.size(); ++stage) {
    const int64_t width = spec.base_width << stage;
    for (int64_t block = 0; block < spec.blocks_per_stage[stage]; ++block) {
      // The first block of each stage changes the width and, after the first stage, halves the side.
      const int64_t stride = block == 0 && stage > 0 ? 2 : 1;
      const std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(block);
      stages.add(name, "block", std::make_shared<Bottleneck>(init, in, width, stride, block == 0));
      in = kBottleneckExpansion * width;
    }
  }
  stages.add("head", "head", std::make_shared<Head>(init, in, spec.classes, true, Pool::kSpatialMean));
}

core::Result<at::Device> parse_device(const std::string& text) {
  const auto invalid = [&] {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "bad device '" + text + "'; use \"cpu\", \"cuda\" or \"cuda:N\"");
  };
  at::Device device(at::kCPU);
  try {
    device = at::Device(text);
  } catch (const c10::Error&) {
    return invalid();
  }
  if (device.is_cpu()) return device;
  if (!device.is_cuda()) return invalid();
  // size_t in LibTorch 1.13, DeviceIndex in 2.x.
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (count == 0 || (device.has_index() && device.index() >= count)) {
    return core::make_error(core::ErrorCode::kUnavailable, "device '" + text + "' not available: LibTorch sees " +
                                                               std::to_string(count) + " CUDA device(s)");
  }
  return device;
}

}  // namespace

struct Model::Impl {
  ModelOptions options;
  at::Device device;
  Stages stages;
};

core::Result<std::unique_ptr<Model>> Model::create(const ModelOptions& options) {
  if (auto valid = validate(options.spec, options.lora); !valid.ok()) return valid.error();
  auto device = parse_device(options.device);
  if (!device.ok()) return device.error();
  const std::string what = options.spec.name + " in " + to_string(options.dtype) + " on " + options.device;
  try {
    auto impl = std::unique_ptr<Impl>(new Impl{options, *device, Stages(options.frozen_to_host)});
    Init init(options, *device);
    if (options.spec.family == Family::kResNet) {
      build_resnet(options.spec, init, impl->stages);
    } else {
      build_transformer(options.spec, init, impl->stages);
    }
    return std::unique_ptr<Model>(new Model(std::move(impl)));
  } catch (const c10::Error& error) {
    const std::string message = error.what_without_backtrace();
    const bool oom = message.find("out of memory") != std::string::npos ||
                     message.find("can't allocate memory") != std::string::npos;
    if (oom) return core::make_error(core::ErrorCode::kOutOfMemory, "the parameters of " + what + " do not fit");
    return core::make_error(core::ErrorCode::kInternal, "creating " + what + " failed: " + message);
  } catch (const std::bad_alloc&) {
    return core::make_error(core::ErrorCode::kOutOfMemory, "the parameters of " + what + " do not fit");
  }
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const ModelOptions& Model::options() const { return impl_->options; }
size_t Model::stage_count() const { return impl_->stages.size(); }
const StageInfo& Model::stage_info(size_t index) const { return impl_->stages.info(index); }
Stage& Model::stage(size_t index) { return impl_->stages.stage(index); }
torch::nn::Module& Model::module() { return impl_->stages.root(); }

at::Tensor Model::forward(const at::Tensor& input) {
  at::Tensor x = input;
  for (size_t index = 0; index < stage_count(); ++index) x = stage(index).forward(x);
  return x;
}

at::Tensor Model::loss(const at::Tensor& output, const at::Tensor& target) const {
  // Float32 because a bf16 log-softmax over 32k-50k classes loses the small probabilities the loss is made of.
  // Logits [batch, seq, vocab] flatten to [batch * seq, vocab]; class logits [batch, classes] stay as they are.
  const at::Tensor logits = output.to(at::kFloat).flatten(0, -2);
  return at::nll_loss(at::log_softmax(logits, -1), target.flatten());
}

Batch Model::make_batch(int64_t batch, int64_t seq, uint64_t seed) const {
  const ModelSpec& spec = impl_->options.spec;
  at::Generator generator = seeded_generator(impl_->device, seed);
  const auto ids = at::TensorOptions().dtype(at::kLong).device(impl_->device);
  if (spec.is_language_model()) {
    // One token more than the input so that the target is the input shifted by one.
    const at::Tensor tokens = at::randint(spec.vocab, {batch, seq + 1}, generator, ids);
    return {tokens.slice(1, 0, seq).contiguous(), tokens.slice(1, 1).contiguous()};
  }
  const auto pixels = ids.dtype(scalar_type(impl_->options.dtype));
  at::Tensor images = at::empty({batch, 3, spec.image_size, spec.image_size}, pixels).normal_(0.0, 1.0, generator);
  return {images, at::randint(spec.classes, {batch}, generator, ids)};
}

std::vector<at::Tensor> Model::trainable_parameters() {
  std::vector<at::Tensor> trainable;
  for (const auto& parameter : module().parameters()) {
    if (parameter.requires_grad()) trainable.push_back(parameter);
  }
  return trainable;
}

std::vector<at::Tensor> Model::parameters() { return module().parameters(); }

}  // namespace vram::zoo
