#include "vram/profile/checkpoint.h"

#include <ATen/core/Generator.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace vram::profile {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The default generator of the input's device, its state saved at forward and put back for the recomputation.
struct RngState {
  at::Generator generator;
  at::Tensor state;
};

RngState save_rng(const at::Device& device) {
  at::Generator generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return {generator, generator.get_state()};
}

// Sets a generator's state for the recomputation and puts the state it had back afterwards, so the checkpoint
// leaves the random stream of the rest of the step as it was.
class RngRestore {
 public:
  explicit RngRestore(const RngState& saved) : generator_(saved.generator) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    current_ = generator_.get_state();
    generator_.set_state(saved.state);
  }
  ~RngRestore() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(current_);
  }
  RngRestore(const RngRestore&) = delete;
  RngRestore& operator=(const RngRestore&) = delete;

 private:
  at::Generator generator_;
  at::Tensor current_;
};

// The stages of a segment and the observer of its first forward, handed to the autograd node by address (its
// non-tensor arguments travel as IValues). Lives on the caller's stack until the node's forward returns; the node
// keeps the stages' addresses for backward.
struct Segment {
  std::vector<zoo::Stage*> stages;
  SegmentObserver observer;
  Offload offload;
  Streamed streamed;
};

// Holds a streamed segment's weights on the device for the recomputation and its backward.
class AcquiredWeights {
 public:
  AcquiredWeights(WeightStream* weights, size_t unit) : weights_(weights), unit_(unit) {
    if (weights_ == nullptr) return;
    weights_->acquire(unit_);
    // The segment before this one runs backward next: its weights travel under this one's work.
    if (unit_ > 0) weights_->prefetch(unit_ - 1);
  }
  ~AcquiredWeights() {
    if (weights_ != nullptr) weights_->release(unit_);
  }
  AcquiredWeights(const AcquiredWeights&) = delete;
  AcquiredWeights& operator=(const AcquiredWeights&) = delete;

 private:
  WeightStream* weights_;
  size_t unit_;
};

// What the segment's gradients are taken for: the stages' own trainable parameters and those they share with
// another stage, each once.
std::vector<at::Tensor> trainable_parameters(const std::vector<zoo::Stage*>& stages) {
  std::vector<at::Tensor> trainable;
  const auto add = [&](const at::Tensor& parameter) {
    if (!parameter.requires_grad()) return;
    for (const auto& seen : trainable) {
      if (seen.is_same(parameter)) return;
    }
    trainable.push_back(parameter);
  };
  for (zoo::Stage* stage : stages) {
    for (const auto& parameter : stage->parameters()) add(parameter);
    for (const auto& parameter : stage->shared_parameters()) add(parameter);
  }
  return trainable;
}

// The stage's trainable parameters are inputs of the node, so autograd calls backward even when the stage input
// needs no gradient (a frozen embedding before a LoRA layer) and accumulates their gradients as for any input.
class Checkpoint : public torch::autograd::Function<Checkpoint> {
 public:
  // `parameters` is a TensorList: LibTorch counts each of its tensors as a forward input (a std::vector would
  // count as one non-tensor argument).
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, at::TensorList parameters,
                               int64_t segment_address) {
    const Segment& segment = segment_from(segment_address);
    ctx->saved_data["input_needs_grad"] = input.requires_grad();
    ctx->saved_data["parameters"] = static_cast<int64_t>(parameters.size());
    ctx->saved_data["rng_state"] = save_rng(input.device()).state;
    ctx->saved_data["device"] = input.device().str();
    if (segment.offload.stash != nullptr) {
      segment.offload.stash->put(segment.offload.slot, input);
      ctx->saved_data["stash"] = static_cast<int64_t>(reinterpret_cast<intptr_t>(segment.offload.stash));  // NOLINT
      ctx->saved_data["slot"] = static_cast<int64_t>(segment.offload.slot);
    } else {
      ctx->save_for_backward({input});
    }
    if (segment.streamed.weights != nullptr) {
      ctx->saved_data["weights"] =
          static_cast<int64_t>(reinterpret_cast<intptr_t>(segment.streamed.weights));  // NOLINT
      ctx->saved_data["unit"] = static_cast<int64_t>(segment.streamed.unit);
    }
    std::vector<int64_t> addresses;
    for (zoo::Stage* stage : segment.stages) {
      addresses.push_back(static_cast<int64_t>(reinterpret_cast<intptr_t>(stage)));  // NOLINT: see stage_from
    }
    ctx->saved_data["stages"] = addresses;
    at::NoGradGuard no_grad;
    at::Tensor x = input;
    for (size_t i = 0; i < segment.stages.size(); ++i) {
      if (segment.observer) segment.observer(i, true);
      x = segment.stages[i]->forward(x);
      if (segment.observer) segment.observer(i, false);
    }
    return {x};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    at::Tensor input;
    if (ctx->saved_data.count("stash")) {
      auto* stash = reinterpret_cast<HostStash*>(static_cast<intptr_t>(ctx->saved_data["stash"].toInt()));  // NOLINT
      const auto slot = static_cast<size_t>(ctx->saved_data["slot"].toInt());
      // The segment before this one runs backward next: start bringing its input back now, under this one's work.
      if (slot > 0) stash->prefetch(slot - 1);
      input = stash->take(slot);
    } else {
      input = ctx->get_saved_variables().at(0);
    }
    std::vector<zoo::Stage*> stages;
    for (const int64_t address : ctx->saved_data["stages"].toIntVector()) stages.push_back(&stage_from(address));
    const bool input_needs_grad = ctx->saved_data["input_needs_grad"].toBool();
    const auto parameter_count = static_cast<size_t>(ctx->saved_data["parameters"].toInt());

    WeightStream* weights = nullptr;
    size_t unit = 0;
    if (ctx->saved_data.count("weights")) {
      weights = reinterpret_cast<WeightStream*>(static_cast<intptr_t>(ctx->saved_data["weights"].toInt()));  // NOLINT
      unit = static_cast<size_t>(ctx->saved_data["unit"].toInt());
    }
    const AcquiredWeights acquired(weights, unit);  // until the gradients below are taken

    at::Tensor replay_input = input.detach().requires_grad_(input_needs_grad);
    const std::vector<at::Tensor> trainable = trainable_parameters(stages);
    at::Tensor output;
    {
      const at::Device device(ctx->saved_data["device"].toStringRef());
      RngState saved{at::globalContext().defaultGenerator(device), ctx->saved_data["rng_state"].toTensor()};
      RngRestore restore(saved);
      at::AutoGradMode grad_mode(true);
      output = replay_input;
      for (zoo::Stage* stage : stages) output = stage->forward(output);
    }
    std::vector<at::Tensor> wrt;
    wrt.reserve(trainable.size() + 1);
    if (input_needs_grad) wrt.push_back(replay_input);
    for (const auto& parameter : trainable) wrt.push_back(parameter);
    const auto grads = torch::autograd::grad({output}, wrt, {grad_outputs.at(0)}, /*retain_graph=*/false,
                                             /*create_graph=*/false, /*allow_unused=*/true);
    // One gradient per forward input: the input, each parameter, and none for the address.
    variable_list result;
    size_t next = 0;
    result.push_back(input_needs_grad ? grads[next++] : at::Tensor());
    for (size_t i = 0; i < parameter_count; ++i) result.push_back(grads.at(next++));
    result.emplace_back();
    return result;
  }

 private:
  // Addresses carried through IValues: the segment lives until forward returns; the stages outlive the step.
  static const Segment& segment_from(int64_t address) {
    return *reinterpret_cast<const Segment*>(static_cast<intptr_t>(address));  // NOLINT
  }
  static zoo::Stage& stage_from(int64_t address) {
    return *reinterpret_cast<zoo::Stage*>(static_cast<intptr_t>(address));  // NOLINT
  }
};

}  // namespace

at::Tensor checkpointed_forward(const std::vector<zoo::Stage*>& stages, const at::Tensor& input,
                                const SegmentObserver& observer, Offload offload, Streamed streamed) {
  if (!at::GradMode::is_enabled()) {
    at::Tensor x = input;
    for (size_t i = 0; i < stages.size(); ++i) {
      if (observer) observer(i, true);
      x = stages[i]->forward(x);
      if (observer) observer(i, false);
    }
    return x;
  }
  const Segment segment{stages, observer, offload, streamed};
  const variable_list trainable = trainable_parameters(stages);
  const auto address = static_cast<int64_t>(reinterpret_cast<intptr_t>(&segment));  // NOLINT: see segment_from
  return Checkpoint::apply(input, at::TensorList(trainable), address).at(0);
}

at::Tensor checkpointed_forward(zoo::Stage& stage, const at::Tensor& input) {
  const std::vector<zoo::Stage*> segment(1, &stage);
  return checkpointed_forward(segment, input);
}

namespace {

// One piece of the chunked loss as a stage: the head, then the summed cross-entropy of the piece's tokens in
// float32. Its gradients go to the head's parameters, which it uses but does not own.
class ChunkLoss final : public zoo::Stage {
 public:
  ChunkLoss(zoo::Stage& head, at::Tensor target) : head_(head), target_(std::move(target)) {}

  at::Tensor forward(const at::Tensor& hidden) override {
    const at::Tensor logits = head_.forward(hidden).to(at::kFloat);
    return at::nll_loss(at::log_softmax(logits, -1), target_, {}, at::Reduction::Sum);
  }

  std::vector<at::Tensor> shared_parameters() const override {
    std::vector<at::Tensor> used = head_.parameters();
    for (const auto& parameter : head_.shared_parameters()) used.push_back(parameter);
    return used;
  }

 private:
  zoo::Stage& head_;
  at::Tensor target_;
};

}  // namespace

at::Tensor chunked_head_loss(zoo::Model& model, const at::Tensor& hidden, const at::Tensor& target,
                             int64_t tokens_per_chunk, std::vector<std::unique_ptr<zoo::Stage>>& keep_alive) {
  zoo::Stage& head = model.stage(model.stage_count() - 1);
  const at::Tensor rows = hidden.flatten(0, -2);
  const at::Tensor targets = target.flatten();
  const int64_t count = rows.size(0);
  at::Tensor total;
  for (int64_t begin = 0; begin < count; begin += tokens_per_chunk) {
    const int64_t end = std::min(count, begin + tokens_per_chunk);
    keep_alive.push_back(std::make_unique<ChunkLoss>(head, targets.slice(0, begin, end)));
    const at::Tensor part = checkpointed_forward(*keep_alive.back(), rows.slice(0, begin, end));
    total = total.defined() ? total + part : part;
  }
  return total / static_cast<double>(count);
}

}  // namespace vram::profile
