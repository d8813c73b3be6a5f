#include "vram/profile/runner.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "vram/memory/memory.h"
#include "vram/profile/checkpoint.h"

namespace vram::profile {

struct Runner::Impl {
  RunnerOptions options;
  std::unique_ptr<zoo::Model> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;    // null for inference
  std::unique_ptr<HostStash> stash;                      // where offloaded segment inputs wait; null without
  std::vector<std::unique_ptr<zoo::Stage>> loss_pieces;  // the chunked loss's pieces, alive until backward ran
  std::optional<zoo::Batch> batch;                       // the last shape's inputs, reused while it repeats
  int64_t batch_size = 0;
  int64_t batch_seq = 0;

  void clear_gradients() {
    for (auto& parameter : model->trainable_parameters()) parameter.mutable_grad() = at::Tensor();
  }

  const zoo::Batch& batch_for(int64_t size, int64_t seq) {
    if (!batch || size != batch_size || seq != batch_seq) {
      batch.reset();  // free the old inputs before making the new ones
      batch = model->make_batch(size, seq, options.seed + 1);
      batch_size = size;
      batch_seq = seq;
    }
    return *batch;
  }

  void run(int64_t size, int64_t seq, StepObserver* observer) {
    const bool train = options.workload.mode == zoo::Mode::kTrain;
    if (observer) observer->on_step_begin();
    // Gradients of the previous step go before this one starts, as `zero_grad(set_to_none=True)` does.
    clear_gradients();
    loss_pieces.clear();  // a step that failed before its backward leaves them
    const zoo::Batch& inputs = batch_for(size, seq);
    std::optional<at::NoGradGuard> no_grad;
    if (!train) no_grad.emplace();
    at::Tensor x = inputs.input;
    const auto& plan = options.workload.plan;
    // A chunked loss runs the head itself, piece by piece, after the other stages.
    const bool chunked_loss = train && plan.loss_chunk_tokens > 0 && options.workload.model.is_language_model();
    const size_t looped_stages = model->stage_count() - (chunked_loss ? 1 : 0);
    size_t next_slot = 0;
    for (size_t stage = 0; stage < looped_stages;) {
      // A checkpoint segment: this stage and the ones that join it.
      size_t last = stage;
      const bool segment_starts = train && zoo::starts_segment(plan.policy(stage));
      if (segment_starts) {
        while (last + 1 < looped_stages && plan.policy(last + 1) == zoo::StagePolicy::kJoin) ++last;
      }
      at::Tensor output;
      if (segment_starts) {
        std::vector<zoo::Stage*> segment;
        for (size_t i = stage; i <= last; ++i) segment.push_back(&model->stage(i));
        SegmentObserver segment_observer;
        if (observer) {
          segment_observer = [observer, stage](size_t i, bool before) {
            before ? observer->on_forward_begin(stage + i) : observer->on_forward_end(stage + i);
          };
        }
        Offload offload;
        if (plan.policy(stage) == zoo::StagePolicy::kOffload) offload = {stash.get(), next_slot++};
        output = checkpointed_forward(segment, x, segment_observer, offload);
        x = at::Tensor();
      } else {
        if (observer) observer->on_forward_begin(stage);
        output = model->stage(stage).forward(x);
        x = at::Tensor();
        if (observer) observer->on_forward_end(stage);
      }
      // Backward of the whole segment starts when its last stage's output has its gradient.
      if (observer && train && output.requires_grad()) {
        output.register_hook([observer, last](const at::Tensor&) { observer->on_backward_reached(last); });
      }
      x = std::move(output);
      stage = last + 1;
    }
    if (!train) return;
    at::Tensor loss;
    if (chunked_loss) {
      const size_t head = model->stage_count() - 1;
      if (observer) observer->on_forward_begin(head);
      loss = chunked_head_loss(*model, x, inputs.target, plan.loss_chunk_tokens, loss_pieces);
      x = at::Tensor();
      if (observer) observer->on_forward_end(head);
    } else {
      loss = model->loss(x, inputs.target);
      x = at::Tensor();  // the loss keeps what backward needs
    }
    if (observer) observer->on_loss_end();
    loss.backward();
    loss = at::Tensor();
    loss_pieces.clear();
    if (observer) observer->on_backward_end();
    optimizer->step();
    if (observer) observer->on_optimizer_end();
  }
};

Runner::Runner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runner::~Runner() = default;

core::Result<std::unique_ptr<Runner>> Runner::create(const RunnerOptions& options) {
  if (!options.workload.plan.stages.empty() &&
      options.workload.plan.stages.size() != zoo::stage_layout(options.workload.model).size()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "the plan needs one policy per stage");
  }
  zoo::ModelOptions model_options;
  model_options.spec = options.workload.model;
  model_options.dtype = options.workload.dtype;
  model_options.lora = options.workload.lora;
  model_options.device = options.device;
  model_options.seed = options.seed;
  auto model = zoo::Model::create(model_options);
  if (!model) return model.error();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->model = std::move(model.value());
  if (options.workload.mode == zoo::Mode::kTrain) {
    auto parameters = impl->model->trainable_parameters();
    switch (options.workload.optimizer) {
      case zoo::Optimizer::kAdamW:
        impl->optimizer = std::make_unique<torch::optim::AdamW>(
            parameters, torch::optim::AdamWOptions(options.learning_rate).weight_decay(0.01));
        break;
      case zoo::Optimizer::kSgd:
        impl->optimizer =
            std::make_unique<torch::optim::SGD>(parameters, torch::optim::SGDOptions(options.learning_rate));
        break;
      case zoo::Optimizer::kSgdMomentum:
        impl->optimizer = std::make_unique<torch::optim::SGD>(
            parameters, torch::optim::SGDOptions(options.learning_rate).momentum(0.9));
        break;
    }
  } else {
    impl->model->module().eval();
  }
  const auto& stages = options.workload.plan.stages;
  if (std::find(stages.begin(), stages.end(), zoo::StagePolicy::kOffload) != stages.end()) {
    impl->stash = HostStash::create(at::Device(options.device));
  }
  return std::unique_ptr<Runner>(new Runner(std::move(impl)));
}

core::Status Runner::step(int64_t batch, int64_t seq, StepObserver* observer) {
  if (batch < 1 || (impl_->options.workload.model.is_language_model() && seq < 1)) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "batch and sequence length must be at least 1");
  }
  try {
    impl_->run(batch, seq, observer);
    return {};
  } catch (const c10::Error& error) {
    const std::string what = error.what_without_backtrace();
    // The failed step's tensors are gone with the unwound frames; its partial gradients and inputs go here.
    impl_->clear_gradients();
    impl_->batch.reset();
    impl_->loss_pieces.clear();
    if (memory::is_out_of_memory(what)) {
      return core::make_error(core::ErrorCode::kOutOfMemory, "out of memory at batch " + std::to_string(batch) +
                                                                 ", sequence " + std::to_string(seq) + " on " +
                                                                 impl_->options.device);
    }
    return core::make_error(core::ErrorCode::kInternal, "step failed: " + what);
  }
}

zoo::Model& Runner::model() { return *impl_->model; }
const RunnerOptions& Runner::options() const { return impl_->options; }

int64_t Runner::optimizer_state_bytes() const {
  if (!impl_->optimizer) return 0;
  int64_t bytes = 0;
  const auto tensor_bytes = [](const at::Tensor& tensor) {
    return tensor.defined() ? static_cast<int64_t>(tensor.nbytes()) : int64_t{0};
  };
  for (const auto& [key, state] : impl_->optimizer->state()) {
    if (const auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(state.get())) {
      bytes +=
          tensor_bytes(adamw->exp_avg()) + tensor_bytes(adamw->exp_avg_sq()) + tensor_bytes(adamw->max_exp_avg_sq());
    } else if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state.get())) {
      bytes += tensor_bytes(sgd->momentum_buffer());
    }
  }
  return bytes;
}

void Runner::synchronize() const {
  if (impl_->options.device != "cpu") torch::cuda::synchronize();
}

}  // namespace vram::profile
