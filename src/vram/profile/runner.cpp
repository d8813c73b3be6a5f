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
#include "vram/profile/planned.h"

namespace vram::profile {

struct Runner::Impl {
  RunnerOptions options;
  std::unique_ptr<zoo::Model> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;    // null for inference
  std::unique_ptr<PlannedStages> planned;                // every stage but a chunked loss's head, as planned
  bool chunked_loss = false;                             // the head and loss run in pieces after them
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

  // The mean loss of one (micro-)batch: the planned stages, then the head and loss in pieces, or the model's loss.
  at::Tensor loss_of(const at::Tensor& input, const at::Tensor& target, StepObserver* observer) {
    at::Tensor x = planned->forward(input, observer);
    if (!chunked_loss) return model->loss(x, target);  // it keeps what backward needs
    const size_t head = model->stage_count() - 1;
    if (observer) observer->on_forward_begin(head);
    at::Tensor loss = chunked_head_loss(*model, x, target, options.workload.plan.loss_chunk_tokens, loss_pieces);
    x = at::Tensor();
    if (observer) observer->on_forward_end(head);
    return loss;
  }

  void run(int64_t size, int64_t seq, StepObserver* observer) {
    const bool train = options.workload.mode == zoo::Mode::kTrain;
    if (observer) observer->on_step_begin();
    // Gradients of the previous step go before this one starts, as `zero_grad(set_to_none=True)` does.
    clear_gradients();
    loss_pieces.clear();  // a step that failed before its backward leaves them
    const zoo::Batch& inputs = batch_for(size, seq);
    if (!train) {
      at::NoGradGuard no_grad;
      (void)planned->forward(inputs.input, observer);
      return;
    }
    // Micro-batches: slices of the batch, each loss weighted by its share of the samples so the gradients add up
    // to those of the whole batch's mean loss.
    const int64_t parts = std::min(std::max<int64_t>(options.workload.plan.micro_batches, 1), size);
    for (int64_t part = 0; part < parts; ++part) {
      const int64_t begin = size * part / parts;
      const int64_t end = size * (part + 1) / parts;
      const at::Tensor input = inputs.input.slice(0, begin, end);
      const at::Tensor target = inputs.target.slice(0, begin, end);
      at::Tensor loss = loss_of(input, target, observer);
      if (parts > 1) loss = loss * (static_cast<double>(end - begin) / static_cast<double>(size));
      if (observer) observer->on_loss_end();
      loss.backward();
      loss = at::Tensor();
      loss_pieces.clear();
      if (observer) observer->on_backward_end();
    }
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
  const auto& plan = options.workload.plan;
  if (plan.stream_weights) {
    // The weights a segment streams never all live on the device, not even while the model is built.
    for (size_t i = 0; i < plan.stages.size(); ++i) {
      model_options.frozen_to_host.push_back(plan.stages[i] != zoo::StagePolicy::kKeep);
    }
  }
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
  const auto& workload = options.workload;
  impl->chunked_loss =
      workload.mode == zoo::Mode::kTrain && workload.plan.loss_chunk_tokens > 0 && workload.model.is_language_model();
  std::vector<zoo::Stage*> stages;
  for (size_t i = 0; i < impl->model->stage_count() - (impl->chunked_loss ? 1 : 0); ++i) {
    stages.push_back(&impl->model->stage(i));
  }
  zoo::Plan looped_plan = workload.plan;
  if (!looped_plan.stages.empty()) looped_plan.stages.resize(stages.size());
  auto planned = PlannedStages::create(std::move(stages), looped_plan, at::Device(options.device));
  if (!planned) return planned.error();
  impl->planned = std::move(planned.value());
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
const PlannedStages& Runner::planned() const { return *impl_->planned; }

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
