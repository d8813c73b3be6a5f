#include "vram/zoo/spec.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace vram::zoo {
namespace {

ModelSpec llama(std::string name, int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t intermediate,
                int64_t vocab) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.family = Family::kLlama;
  spec.hidden = hidden;
  spec.layers = layers;
  spec.heads = heads;
  spec.kv_heads = kv_heads;
  spec.intermediate = intermediate;
  spec.vocab = vocab;
  return spec;
}

ModelSpec gpt2(std::string name, int64_t hidden, int64_t layers, int64_t heads, int64_t vocab, int64_t positions) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.family = Family::kGpt2;
  spec.hidden = hidden;
  spec.layers = layers;
  spec.heads = heads;
  spec.kv_heads = heads;
  spec.intermediate = 4 * hidden;
  spec.vocab = vocab;
  spec.max_positions = positions;
  return spec;
}

ModelSpec vit(std::string name, int64_t image_size, int64_t patch, int64_t hidden, int64_t layers, int64_t heads,
              int64_t classes) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.family = Family::kVit;
  spec.hidden = hidden;
  spec.layers = layers;
  spec.heads = heads;
  spec.kv_heads = heads;
  spec.intermediate = 4 * hidden;
  spec.image_size = image_size;
  spec.patch = patch;
  spec.classes = classes;
  return spec;
}

ModelSpec resnet(std::string name, std::vector<int64_t> blocks_per_stage, int64_t base_width, int64_t classes,
                 int64_t image_size) {
  ModelSpec spec;
  spec.name = std::move(name);
  spec.family = Family::kResNet;
  spec.blocks_per_stage = std::move(blocks_per_stage);
  spec.base_width = base_width;
  spec.classes = classes;
  spec.image_size = image_size;
  return spec;
}

const std::vector<ModelSpec>& known_models() {
  static const std::vector<ModelSpec> models = {
      llama("llama-7b", 4096, 32, 32, 32, 11008, 32000),
      llama("llama-13b", 5120, 40, 40, 40, 13824, 32000),
      llama("llama-1b", 2048, 22, 32, 4, 5632, 32000),  // TinyLlama-1.1B
      llama("llama-tiny", 64, 2, 4, 2, 176, 256),       // grouped-query attention, like llama-1b
      gpt2("gpt2", 768, 12, 12, 50257, 1024),
      gpt2("gpt2-medium", 1024, 24, 16, 50257, 1024),
      gpt2("gpt2-tiny", 64, 2, 4, 256, 64),
      vit("vit-b16", 224, 16, 768, 12, 12, 1000),
      vit("vit-tiny", 32, 8, 64, 2, 4, 10),
      resnet("resnet50", {3, 4, 6, 3}, 64, 1000, 224),
      resnet("resnet-tiny", {1, 1, 1, 1}, 8, 10, 32),
  };
  return models;
}

std::vector<std::string> family_lora_targets(Family family) {
  switch (family) {
    case Family::kLlama: return {"q", "k", "v", "o", "gate", "up", "down"};
    case Family::kGpt2:
    case Family::kVit: return {"q", "k", "v", "o", "fc1", "fc2"};
    case Family::kResNet: return {};
  }
  return {};
}

std::string join(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

core::Error invalid(const ModelSpec& model, const std::string& what) {
  return core::make_error(core::ErrorCode::kInvalidArgument, "model '" + model.name + "': " + what);
}

core::Status validate_shapes(const ModelSpec& model) {
  if (model.family == Family::kResNet) {
    const auto& blocks = model.blocks_per_stage;
    if (blocks.size() != 4 || std::any_of(blocks.begin(), blocks.end(), [](int64_t n) { return n <= 0; })) {
      return invalid(model, "blocks_per_stage needs four positive counts");
    }
    if (model.base_width <= 0 || model.classes <= 0 || model.image_size <= 0) {
      return invalid(model, "base_width, classes and image_size must be positive");
    }
    return {};
  }
  if (model.hidden <= 0 || model.layers <= 0 || model.heads <= 0 || model.intermediate <= 0) {
    return invalid(model, "hidden, layers, heads and intermediate must be positive");
  }
  if (model.hidden % model.heads != 0) return invalid(model, "heads must divide hidden");
  switch (model.family) {
    case Family::kLlama:
      if (model.kv_heads <= 0 || model.heads % model.kv_heads != 0) {
        return invalid(model, "kv_heads must be positive and divide heads");
      }
      // Rotary embeddings rotate pairs of channels.
      if ((model.hidden / model.heads) % 2 != 0) return invalid(model, "the head width must be even");
      if (model.vocab <= 0) return invalid(model, "vocab must be positive");
      return {};
    case Family::kGpt2:
      if (model.vocab <= 0 || model.max_positions <= 0)
        return invalid(model, "vocab and max_positions must be positive");
      return {};
    case Family::kVit:
      if (model.patch <= 0 || model.image_size <= 0 || model.image_size % model.patch != 0) {
        return invalid(model, "patch must be positive and divide image_size");
      }
      if (model.classes <= 0) return invalid(model, "classes must be positive");
      return {};
    case Family::kResNet: break;
  }
  return {};
}

bool has_target(const LoraSpec& lora, const std::string& target) {
  return lora.enabled() && std::find(lora.targets.begin(), lora.targets.end(), target) != lora.targets.end();
}

// Adds parameters in the order the zoo builds them; base weights train only without LoRA.
class Counter {
 public:
  explicit Counter(const LoraSpec& lora) : lora_(lora) {}

  void base(int64_t numel) {
    count_.total += numel;
    if (!lora_.enabled()) count_.trainable += numel;
  }
  void linear(int64_t in, int64_t out, bool bias, const std::string& target) {
    base(in * out + (bias ? out : 0));
    if (has_target(lora_, target)) {
      count_.total += lora_.rank * (in + out);
      count_.trainable += lora_.rank * (in + out);
    }
  }
  void layer_norm(int64_t width) { base(2 * width); }
  // GPT-2 and ViT blocks: LayerNorm, q/k/v/o with bias, LayerNorm, fc1/fc2 with bias.
  void encoder_layer(const ModelSpec& model) {
    layer_norm(model.hidden);
    for (const char* target : {"q", "k", "v", "o"}) linear(model.hidden, model.hidden, true, target);
    layer_norm(model.hidden);
    linear(model.hidden, model.intermediate, true, "fc1");
    linear(model.intermediate, model.hidden, true, "fc2");
  }
  ParameterCount count() const { return count_; }

 private:
  const LoraSpec& lora_;
  ParameterCount count_;
};

void count_llama(const ModelSpec& model, Counter& counter) {
  const int64_t kv_width = model.kv_heads * (model.hidden / model.heads);
  counter.base(model.vocab * model.hidden);
  for (int64_t layer = 0; layer < model.layers; ++layer) {
    counter.base(model.hidden);
    counter.linear(model.hidden, model.hidden, false, "q");
    counter.linear(model.hidden, kv_width, false, "k");
    counter.linear(model.hidden, kv_width, false, "v");
    counter.linear(model.hidden, model.hidden, false, "o");
    counter.base(model.hidden);
    counter.linear(model.hidden, model.intermediate, false, "gate");
    counter.linear(model.hidden, model.intermediate, false, "up");
    counter.linear(model.intermediate, model.hidden, false, "down");
  }
  counter.base(model.hidden);
  counter.linear(model.hidden, model.vocab, false, "head");
}

void count_gpt2(const ModelSpec& model, Counter& counter) {
  counter.base(model.vocab * model.hidden + model.max_positions * model.hidden);
  for (int64_t layer = 0; layer < model.layers; ++layer) counter.encoder_layer(model);
  counter.layer_norm(model.hidden);  // the head reuses the token embedding
}

void count_vit(const ModelSpec& model, Counter& counter) {
  const int64_t side_patches = model.image_size / model.patch;
  counter.base(3 * model.patch * model.patch * model.hidden + model.hidden);      // patch convolution with bias
  counter.base(model.hidden + (side_patches * side_patches + 1) * model.hidden);  // class token, positions
  for (int64_t layer = 0; layer < model.layers; ++layer) counter.encoder_layer(model);
  counter.layer_norm(model.hidden);
  counter.linear(model.hidden, model.classes, true, "head");
}

void count_resnet(const ModelSpec& model, Counter& counter) {
  constexpr int64_t kExpansion = 4;
  counter.base(model.base_width * 3 * 7 * 7 + 2 * model.base_width);  // stem convolution and BatchNorm
  int64_t in_channels = model.base_width;
  for (size_t stage = 0; stage < model.blocks_per_stage.size(); ++stage) {
    const int64_t width = model.base_width << stage;
    const int64_t out_channels = kExpansion * width;
    for (int64_t block = 0; block < model.blocks_per_stage[stage]; ++block) {
      counter.base(in_channels * width + 2 * width);
      counter.base(9 * width * width + 2 * width);
      counter.base(width * out_channels + 2 * out_channels);
      if (block == 0) counter.base(in_channels * out_channels + 2 * out_channels);  // downsample
      in_channels = out_channels;
    }
  }
  counter.linear(in_channels, model.classes, true, "head");
}

core::Error unknown(const std::string& kind, const std::string& text, const std::string& known) {
  return core::make_error(core::ErrorCode::kInvalidArgument, "unknown " + kind + " '" + text + "'; use " + known);
}

}  // namespace

int64_t bytes_per_element(DType dtype) { return dtype == DType::kFloat32 ? 4 : 2; }

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "fp32";
    case DType::kFloat16: return "fp16";
    case DType::kBFloat16: return "bf16";
  }
  return "?";
}

core::Result<DType> parse_dtype(const std::string& text) {
  if (text == "fp32" || text == "float32") return DType::kFloat32;
  if (text == "fp16" || text == "float16") return DType::kFloat16;
  if (text == "bf16" || text == "bfloat16") return DType::kBFloat16;
  return unknown("dtype", text, "fp32, fp16 or bf16");
}

const char* to_string(Mode mode) { return mode == Mode::kTrain ? "train" : "inference"; }

const char* to_string(Optimizer optimizer) {
  switch (optimizer) {
    case Optimizer::kAdamW: return "adamw";
    case Optimizer::kSgd: return "sgd";
    case Optimizer::kSgdMomentum: return "sgd-momentum";
  }
  return "?";
}

core::Result<Optimizer> parse_optimizer(const std::string& text) {
  for (auto optimizer : {Optimizer::kAdamW, Optimizer::kSgd, Optimizer::kSgdMomentum}) {
    if (text == to_string(optimizer)) return optimizer;
  }
  return unknown("optimizer", text, "adamw, sgd or sgd-momentum");
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& model : known_models()) names.push_back(model.name);
  return names;
}

core::Result<ModelSpec> find_model(const std::string& name) {
  for (const auto& model : known_models()) {
    if (model.name == name) return model;
  }
  return core::make_error(core::ErrorCode::kNotFound,
                          "unknown model '" + name + "'; known models: " + join(model_names()));
}

core::Status validate(const ModelSpec& model, const LoraSpec& lora) {
  if (auto shapes = validate_shapes(model); !shapes.ok()) return shapes;
  if (lora.rank < 0) return invalid(model, "LoRA rank must not be negative");
  if (!lora.enabled()) return {};
  const auto targets = family_lora_targets(model.family);
  if (targets.empty()) return invalid(model, "this family has no LoRA targets; use rank 0 (a full fine-tune)");
  if (lora.targets.empty()) return invalid(model, "LoRA needs at least one target; use " + join(targets));
  for (const auto& target : lora.targets) {
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
      return invalid(model, "no LoRA target '" + target + "' in this family; use " + join(targets));
    }
  }
  return {};
}

ParameterCount count_parameters(const ModelSpec& model, const LoraSpec& lora) {
  Counter counter(lora);
  switch (model.family) {
    case Family::kLlama: count_llama(model, counter); break;
    case Family::kGpt2: count_gpt2(model, counter); break;
    case Family::kVit: count_vit(model, counter); break;
    case Family::kResNet: count_resnet(model, counter); break;
  }
  return counter.count();
}

core::Result<LoraSpec> parse_lora(const std::string& text) {
  const auto colon = text.find(':');
  std::string rank_text = text.substr(0, colon);
  if (!rank_text.empty() && rank_text.front() == 'r') rank_text.erase(0, 1);
  LoraSpec lora;
  if (text.empty()) return lora;
  const char* end = rank_text.data() + rank_text.size();
  const auto [parsed_end, error] = std::from_chars(rank_text.data(), end, lora.rank);
  if (rank_text.empty() || error != std::errc() || parsed_end != end || lora.rank < 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "bad LoRA spec '" + text + "'; use a rank with optional targets, e.g. \"r16:q,k,v,o\"");
  }
  if (colon == std::string::npos) return lora;
  lora.targets.clear();
  std::istringstream targets(text.substr(colon + 1));
  for (std::string target; std::getline(targets, target, ',');) {
    if (!target.empty()) lora.targets.push_back(target);
  }
  return lora;
}

const char* to_string(StagePolicy policy) {
  switch (policy) {
    case StagePolicy::kKeep: return "keep";
    case StagePolicy::kCheckpoint: return "checkpoint";
    case StagePolicy::kJoin: return "join";
    case StagePolicy::kOffload: return "offload";
  }
  return "keep";
}

std::vector<StageName> stage_layout(const ModelSpec& model) {
  std::vector<StageName> stages;
  if (model.family == Family::kResNet) {
    stages.push_back({"stem", "conv"});
    for (size_t stage = 0; stage < model.blocks_per_stage.size(); ++stage) {
      for (int64_t block = 0; block < model.blocks_per_stage[stage]; ++block) {
        stages.push_back({"layer" + std::to_string(stage + 1) + "." + std::to_string(block), "block"});
      }
    }
  } else {
    stages.push_back({"embedding", "embedding"});
    for (int64_t layer = 0; layer < model.layers; ++layer) {
      stages.push_back({"layers." + std::to_string(layer) + ".attention", "attention"});
      stages.push_back({"layers." + std::to_string(layer) + ".mlp", "mlp"});
    }
    stages.push_back({"norm", "norm"});
  }
  stages.push_back({"head", "head"});
  return stages;
}

Plan first_segments(const Plan& plan, size_t count) {
  Plan first = plan;
  size_t seen = 0;
  bool dropping = false;
  for (auto& policy : first.stages) {
    if (starts_segment(policy)) dropping = ++seen > count;
    if (dropping) policy = StagePolicy::kKeep;
  }
  return first;
}

std::vector<Segment> segments(const Plan& plan, size_t stage_count) {
  std::vector<Segment> found;
  for (size_t i = 0; i < stage_count; ++i) {
    if (!starts_segment(plan.policy(i))) continue;
    Segment segment{i, i, plan.policy(i) == StagePolicy::kOffload};
    while (segment.last + 1 < stage_count && plan.policy(segment.last + 1) == StagePolicy::kJoin) ++segment.last;
    found.push_back(segment);
    i = segment.last;
  }
  return found;
}

size_t segment_count(const Plan& plan) { return segments(plan, plan.stages.size()).size(); }

core::Result<Plan> parse_plan(const std::string& text, const ModelSpec& model) {
  Plan plan;
  if (text.empty() || text == "keep") return plan;
  if (const size_t colon = text.find(':'); colon != std::string::npos) {
    // "offload:24": the named plan's first 24 segments.
    auto named = parse_plan(text.substr(0, colon), model);
    if (!named) return named.error();
    const std::string number = text.substr(colon + 1);
    size_t count = 0;
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), count);
    const size_t total = segment_count(*named);
    if (error != std::errc() || end != number.data() + number.size() || count < 1 || count > total) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "plan '" + text + "': after the colon, how many of the " + std::to_string(total) +
                                  " segments (1 to " + std::to_string(total) + ")");
    }
    return first_segments(*named, count);
  }
  const auto layout = stage_layout(model);
  const size_t stage_count = layout.size();
  if (text == "checkpoint" || text == "checkpoint-stages" || text == "offload") {
    // Transformer layers and ResNet blocks: where the activations are; embeddings, norms and heads stay.
    const bool per_layer = text != "checkpoint-stages";
    const StagePolicy start = text == "offload" ? StagePolicy::kOffload : StagePolicy::kCheckpoint;
    for (const auto& stage : layout) {
      if (stage.kind == "mlp" && per_layer) {
        plan.stages.push_back(StagePolicy::kJoin);
      } else {
        const bool block = stage.kind == "attention" || stage.kind == "mlp" || stage.kind == "block";
        plan.stages.push_back(block ? start : StagePolicy::kKeep);
      }
    }
    return plan;
  }
  if (text == "checkpoint-mlp") {
    // Selective: the MLPs' wide activations (4-5x the hidden width) are recomputed, attention keeps what it saves
    // (fused attention: its inputs, output and a log-sum-exp per row, costly to recompute and cheap to keep).
    for (const auto& stage : layout) {
      plan.stages.push_back(stage.kind == "mlp" ? StagePolicy::kCheckpoint : StagePolicy::kKeep);
    }
    return plan;
  }
  const auto invalid = [&](const std::string& why) {
    return core::make_error(
        core::ErrorCode::kInvalidArgument,
        "plan '" + text + "': " + why +
            "; use keep, checkpoint, checkpoint-mlp, checkpoint-stages, offload, NAME:N, or one letter per stage (" +
            std::to_string(stage_count) + " stages; k = keep, c = checkpoint, j = join the segment before)");
  };
  if (text.size() != stage_count || text.find_first_not_of("kcoj") != std::string::npos) {
    return invalid("not one of k, c, o, j per stage");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == 'j' && (i == 0 || text[i - 1] == 'k')) return invalid("j must follow c or j");
    plan.stages.push_back(c == 'c'   ? StagePolicy::kCheckpoint
                          : c == 'o' ? StagePolicy::kOffload
                          : c == 'j' ? StagePolicy::kJoin
                                     : StagePolicy::kKeep);
  }
  return plan;
}

std::string describe(const Plan& plan, const ModelSpec& model) {
  std::string text;
  for (const char* name : {"keep", "checkpoint", "checkpoint-mlp", "checkpoint-stages", "offload"}) {
    const Plan named = parse_plan(name, model).value();
    if (text.empty() && named.stages == plan.stages) text = name;
    for (size_t count = 1; text.empty() && count < segment_count(named); ++count) {
      if (first_segments(named, count).stages == plan.stages) text = std::string(name) + ":" + std::to_string(count);
    }
  }
  if (text.empty() && std::all_of(plan.stages.begin(), plan.stages.end(),
                                  [](StagePolicy policy) { return policy == StagePolicy::kKeep; })) {
    text = "keep";
  }
  if (text.empty()) {
    for (const StagePolicy policy : plan.stages) {
      text += policy == StagePolicy::kCheckpoint ? 'c'
              : policy == StagePolicy::kOffload  ? 'o'
              : policy == StagePolicy::kJoin     ? 'j'
                                                 : 'k';
    }
  }
  if (plan.stream_weights) text += " + stream weights";
  if (plan.loss_chunk_tokens > 0) text += " + loss in pieces of " + std::to_string(plan.loss_chunk_tokens) + " tokens";
  if (plan.micro_batches > 1) text += " + " + std::to_string(plan.micro_batches) + " micro-batches";
  return text;
}

}  // namespace vram::zoo
