#pragma once
// The model zoo in LibTorch: every model is an ordered list of stages, each a module from one tensor to the next
// (token ids -> hidden states -> ... -> logits). That shape is what the VRAM tools work with: the profiler
// attributes memory to stages, and checkpointing, offload and weight streaming act stage by stage.
//
// Private to the vram modules: apps and other modules use the plain vram/zoo/spec.h.
// Thread-safety: a Model is used by one thread at a time.

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "vram/zoo/spec.h"

namespace vram::zoo {

// One stage: a module whose forward maps one tensor to the next. Residual connections stay inside a stage, so a
// Llama layer is two stages: "layers.3.attention" (x + attn(norm(x))) and "layers.3.mlp" (x + mlp(norm(x))).
class Stage : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& input) = 0;
  // Parameters this stage uses but another stage owns (GPT-2's head uses the embedding's table). Whoever
  // re-runs a stage's forward to take gradients (checkpointing) must include them.
  virtual std::vector<at::Tensor> shared_parameters() const { return {}; }
};

struct StageInfo {
  std::string name;  // "embedding", "layers.0.attention", "layers.0.mlp", "norm", "head"
  std::string kind;  // "embedding", "attention", "mlp", "norm", "head"; ResNet: "conv" (stem), "block", "head"
};

// Inputs and targets of one step, on the model's device.
struct Batch {
  at::Tensor input;   // token ids [batch, seq] (int64) or images [batch, 3, side, side] in the model dtype
  at::Tensor target;  // next-token ids [batch, seq] or class ids [batch] (int64)
};

struct ModelOptions {
  ModelSpec spec;
  DType dtype = DType::kBFloat16;
  LoraSpec lora;               // rank 0: every parameter trains; otherwise only the adapters do
  std::string device = "cpu";  // "cpu", "cuda", "cuda:1"
  uint64_t seed = 0;           // parameters are random (no weights can be downloaded; memory depends only on shapes)
  // Stage i's frozen parameters move to host memory as soon as the stage is built, so the device never holds
  // them all (weight streaming brings them back segment by segment). Missing entries: false.
  std::vector<bool> frozen_to_host;
};

class Model {
 public:
  // Fails with kInvalidArgument for impossible shapes or LoRA targets the family lacks, kUnavailable for a
  // missing device, kOutOfMemory when the parameters do not fit.
  static core::Result<std::unique_ptr<Model>> create(const ModelOptions& options);

  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model();

  const ModelOptions& options() const;
  size_t stage_count() const;
  const StageInfo& stage_info(size_t index) const;
  Stage& stage(size_t index);

  // forward, loss and make_batch are LibTorch computations: like any LibTorch call they throw c10::Error (out
  // of memory above all), which the caller, running LibTorch itself, catches at its own boundary.

  // All stages in order.
  at::Tensor forward(const at::Tensor& input);
  // Mean cross-entropy (next-token for language models, class for vision), computed in float32.
  at::Tensor loss(const at::Tensor& output, const at::Tensor& target) const;
  // Random ids/images of the given shape (seq is ignored by vision models), reproducible from seed.
  Batch make_batch(int64_t batch, int64_t seq, uint64_t seed) const;

  // Parameters with requires_grad (the adapters under LoRA), and all of them.
  std::vector<at::Tensor> trainable_parameters();
  std::vector<at::Tensor> parameters();
  torch::nn::Module& module();  // the root that owns every stage

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vram::zoo
