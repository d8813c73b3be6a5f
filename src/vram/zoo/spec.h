#pragma once
// What a training or inference step is, as plain values: the model's shapes, precision, LoRA, optimizer, batch and
// sequence. Memory depends only on these, so the estimator reads them without LibTorch, and the zoo
// (vram/zoo/zoo.h) builds the same model from them to run and profile.
//
// Thread-safety: plain values; the functions are pure.

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace vram::zoo {

enum class Family {
  kLlama,   // decoder-only: RMSNorm, rotary embeddings, SwiGLU MLP, grouped-query attention
  kGpt2,    // decoder-only: LayerNorm, learned positions, GELU MLP, tied embeddings
  kVit,     // ViT: patch embedding, class token, pre-norm encoder, classification head
  kResNet,  // ResNet v1.5 with bottleneck blocks
};

enum class DType { kFloat32, kFloat16, kBFloat16 };

int64_t bytes_per_element(DType dtype);
const char* to_string(DType dtype);
core::Result<DType> parse_dtype(const std::string& text);  // "fp32"|"float32", "fp16"|"float16", "bf16"|"bfloat16"

// Shapes of one model. Fields a family does not use stay 0.
struct ModelSpec {
  std::string name;  // "llama-7b"
  Family family = Family::kLlama;
  int64_t hidden = 0;                     // model width
  int64_t layers = 0;                     // transformer blocks
  int64_t heads = 0;                      // attention heads
  int64_t kv_heads = 0;                   // Llama: key/value heads (grouped-query attention); = heads for multi-head
  int64_t intermediate = 0;               // MLP width
  int64_t vocab = 0;                      // LLMs: vocabulary size
  int64_t max_positions = 0;              // GPT-2: learned position table size
  int64_t image_size = 0;                 // vision: input side in pixels
  int64_t patch = 0;                      // ViT: patch side in pixels
  int64_t classes = 0;                    // vision: classifier outputs
  std::vector<int64_t> blocks_per_stage;  // ResNet: bottleneck blocks in each of the four stages
  int64_t base_width = 0;                 // ResNet: channels of the first stage's bottleneck

  bool is_language_model() const { return family == Family::kLlama || family == Family::kGpt2; }
};

// The named configurations: llama-7b (Llama-2-7B shapes), llama-13b, llama-1b, llama-tiny, gpt2, gpt2-medium,
// gpt2-tiny, vit-b16, vit-tiny, resnet50, resnet-tiny. Unknown names fail with the list of known ones.
core::Result<ModelSpec> find_model(const std::string& name);
std::vector<std::string> model_names();

// LoRA: low-rank adapters on frozen base weights. rank 0 means a full fine-tune (every weight trains).
struct LoraSpec {
  int64_t rank = 0;
  double alpha = 32.0;  // the update is scaled by alpha / rank
  // Projections that get adapters: "q", "k", "v", "o" (attention), "gate", "up", "down" (Llama MLP),
  // "fc1", "fc2" (GPT-2/ViT MLP). ResNet has no LoRA targets.
  std::vector<std::string> targets = {"q", "k", "v", "o"};

  bool enabled() const { return rank > 0; }
};

enum class Mode { kInference, kTrain };
enum class Optimizer { kAdamW, kSgd, kSgdMomentum };

const char* to_string(Mode mode);
const char* to_string(Optimizer optimizer);
core::Result<Optimizer> parse_optimizer(const std::string& text);  // "adamw", "sgd", "sgd-momentum"

// How a stage's activations are kept between its forward and its backward.
enum class StagePolicy {
  kKeep,        // what autograd saves stays on the device
  kCheckpoint,  // starts a checkpoint segment: only its input is kept; the forward runs again in backward
  kJoin,        // joins the segment of the stage before (a Llama layer: attention and MLP, one kept input)
  kOffload,     // starts a checkpoint segment whose input waits in host memory until its backward
};

// Whether a policy starts a checkpoint segment.
inline bool starts_segment(StagePolicy policy) {
  return policy == StagePolicy::kCheckpoint || policy == StagePolicy::kOffload;
}

// How a step runs: one policy per stage (empty: keep everything).
struct Plan {
  std::vector<StagePolicy> stages;
  // Language models: the head and the loss run over this many tokens at a time, each piece checkpointed, so the
  // float32 logits of the whole batch never exist at once. 0: the whole batch in one piece.
  int64_t loss_chunk_tokens = 0;
  // The frozen weights of every checkpoint segment live in host memory and come to the device one segment ahead
  // of use, in forward and in the recomputation, into a few device buffers (weight_buffers, at least 2).
  // Trainable weights and the stages outside segments stay on the device.
  bool stream_weights = false;
  int64_t weight_buffers = 2;
  // Training: the batch runs as this many micro-batches, each a forward and backward whose gradients add up,
  // then one optimizer step; the loss is the same mean over the whole batch.
  int64_t micro_batches = 1;

  StagePolicy policy(size_t stage) const { return stage < stages.size() ? stages[stage] : StagePolicy::kKeep; }
};

// The stages the zoo builds for a model, in order: {"layers.3.mlp", "mlp"}.
struct StageName {
  std::string name;
  std::string kind;
};
std::vector<StageName> stage_layout(const ModelSpec& model);

const char* to_string(StagePolicy policy);
// "keep"; "checkpoint" (a segment per transformer layer, attention and MLP, and per ResNet block);
// NAME:N (the first N segments of one of the named plans, e.g. "offload:24", the later layers kept);
// "checkpoint-stages" (a segment per attention, MLP or ResNet block); "checkpoint-mlp" (selective: only the
// transformer MLPs, whose wide activations are cheap to recompute; attention keeps its own); "offload" (as
// "checkpoint", the segments'
// inputs in host memory); or one letter per stage: k(eep), c(heckpoint: a segment starts), o(ffload: a segment
// starts, its input goes to host memory), j(oin the segment before).
core::Result<Plan> parse_plan(const std::string& text, const ModelSpec& model);
// A checkpoint segment: a stage that starts one and the stages that join it.
struct Segment {
  size_t first = 0;
  size_t last = 0;
  bool offload = false;  // its input waits in host memory
};
// The plan's segments among its first `stage_count` stages, in order: how the runner, the estimator and the
// planner all group them.
std::vector<Segment> segments(const Plan& plan, size_t stage_count);

// The plan in words: its stages as parse_plan reads them back, then its options: "offload:24 + stream weights +
// loss in pieces of 2048 tokens + 2 micro-batches".
std::string describe(const Plan& plan, const ModelSpec& model);
// The plan's first `count` checkpoint segments; the stages after them are kept.
Plan first_segments(const Plan& plan, size_t count);

// One step: for inference a forward pass without autograd (a prefill for LLMs); for training forward, loss,
// backward and an optimizer step.
struct Workload {
  ModelSpec model;
  Mode mode = Mode::kTrain;
  DType dtype = DType::kBFloat16;  // parameters, activations and optimizer state
  Optimizer optimizer = Optimizer::kAdamW;
  LoraSpec lora;
  int64_t batch = 1;
  int64_t seq = 512;  // tokens per sample for language models; ignored by vision models
  Plan plan;          // training only; inference keeps nothing anyway
};

// Parameter counts from the shapes alone, exactly what the zoo builds (tied embeddings counted once; LoRA
// adapters included in total and, with every other trainable parameter, in trainable).
struct ParameterCount {
  int64_t total = 0;
  int64_t trainable = 0;
};
ParameterCount count_parameters(const ModelSpec& model, const LoraSpec& lora);

// Checks that the shapes are buildable (positive, heads dividing hidden, ...) and that every LoRA target exists in
// the model's family (ResNet has none). Model::create runs it; count_parameters assumes it passed.
core::Status validate(const ModelSpec& model, const LoraSpec& lora);

// Parses "r16:q,k,v,o" or "16" (default targets) into a LoraSpec; "" or "0" is no LoRA.
core::Result<LoraSpec> parse_lora(const std::string& text);

}  // namespace vram::zoo
