#include "vram/profile/planned.h"

#include <torch/nn/modules/container/any.h>

#include <algorithm>
#include <string>
#include <utility>

#include "vram/profile/checkpoint.h"
#include "vram/profile/runner.h"

namespace vram::profile {
namespace {

// A run of stages the plan treats as one: a checkpoint segment (a stage that starts one and those joining it) or
// one kept stage.
struct Group {
  size_t first = 0;
  size_t last = 0;
  bool segment = false;
  bool offload = false;
  size_t offload_slot = 0;
  int unit = -1;  // its streamed weights; -1: not streamed
};

std::vector<Group> group_stages(const zoo::Plan& plan, size_t stage_count) {
  std::vector<Group> groups;
  size_t next_slot = 0;
  size_t stage = 0;
  const auto keep_until = [&](size_t end) {
    for (; stage < end; ++stage) groups.push_back(Group{stage, stage});
  };
  for (const auto& segment : zoo::segments(plan, stage_count)) {
    keep_until(segment.first);
    groups.push_back(Group{segment.first, segment.last, true, segment.offload, segment.offload ? next_slot++ : 0});
    stage = segment.last + 1;
  }
  keep_until(stage_count);
  return groups;
}

// A module of a Sequential as a stage.
class ModuleStage final : public zoo::Stage {
 public:
  explicit ModuleStage(torch::nn::AnyModule module) : module_(std::move(module)) {
    register_module("module", module_.ptr());
  }
  at::Tensor forward(const at::Tensor& input) override { return module_.forward(input); }

 private:
  torch::nn::AnyModule module_;
};

}  // namespace

struct PlannedStages::Impl {
  std::vector<zoo::Stage*> stages;
  std::vector<Group> groups;
  std::unique_ptr<HostStash> stash;       // offloaded segment inputs; null without offload
  std::unique_ptr<WeightStream> weights;  // null without streaming
};

PlannedStages::PlannedStages(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlannedStages::~PlannedStages() = default;

core::Result<std::unique_ptr<PlannedStages>> PlannedStages::create(std::vector<zoo::Stage*> stages,
                                                                   const zoo::Plan& plan, const at::Device& device) {
  if (!plan.stages.empty() && plan.stages.size() != stages.size()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "the plan has " + std::to_string(plan.stages.size()) +
                                                                   " policies for " + std::to_string(stages.size()) +
                                                                   " stages; it needs one per stage");
  }
  auto impl = std::make_unique<Impl>();
  impl->stages = std::move(stages);
  impl->groups = group_stages(plan, impl->stages.size());
  const bool offload =
      std::any_of(impl->groups.begin(), impl->groups.end(), [](const Group& group) { return group.offload; });
  if (offload) impl->stash = HostStash::create(device);
  if (plan.stream_weights) {
    std::vector<std::vector<zoo::Stage*>> units;
    for (auto& group : impl->groups) {
      if (!group.segment) continue;
      std::vector<zoo::Stage*> unit(impl->stages.begin() + static_cast<std::ptrdiff_t>(group.first),
                                    impl->stages.begin() + static_cast<std::ptrdiff_t>(group.last) + 1);
      if (streamed_bytes(unit) == 0) continue;  // nothing frozen: it stays as it is
      group.unit = static_cast<int>(units.size());
      units.push_back(std::move(unit));
    }
    if (units.empty()) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              "streaming weights needs checkpoint segments with frozen weights; this plan has none "
                              "(use checkpoint or offload, and LoRA or inference)");
    }
    try {
      auto weights = WeightStream::create(device, units, plan.weight_buffers);
      if (!weights) return weights.error();
      impl->weights = std::move(weights.value());
    } catch (const c10::Error& error) {
      return core::make_error(core::ErrorCode::kOutOfMemory,
                              std::string("weight streaming: ") + error.what_without_backtrace());
    }
  }
  return std::unique_ptr<PlannedStages>(new PlannedStages(std::move(impl)));
}

at::Tensor PlannedStages::forward(const at::Tensor& input, StepObserver* observer) {
  WeightStream* weights = impl_->weights.get();
  const bool train = at::GradMode::is_enabled();
  at::Tensor x = input;
  int last_unit = -1;
  for (const Group& group : impl_->groups) {
    at::Tensor output;
    if (group.segment) {
      std::vector<zoo::Stage*> segment(impl_->stages.begin() + static_cast<std::ptrdiff_t>(group.first),
                                       impl_->stages.begin() + static_cast<std::ptrdiff_t>(group.last) + 1);
      SegmentObserver segment_observer;
      if (observer) {
        segment_observer = [observer, first = group.first](size_t i, bool before) {
          before ? observer->on_forward_begin(first + i) : observer->on_forward_end(first + i);
        };
      }
      Offload offload;
      if (group.offload) offload = {impl_->stash.get(), group.offload_slot};
      Streamed streamed;
      if (weights && group.unit >= 0) {
        const auto unit = static_cast<size_t>(group.unit);
        streamed = {weights, unit};
        weights->acquire(unit);
        weights->prefetch(unit + 1);
        last_unit = group.unit;
      }
      output = checkpointed_forward(segment, x, segment_observer, offload, streamed);
      if (streamed.weights) weights->release(streamed.unit);
    } else {
      if (observer) observer->on_forward_begin(group.first);
      output = impl_->stages[group.first]->forward(x);
      x = at::Tensor();
      if (observer) observer->on_forward_end(group.first);
    }
    x = at::Tensor();
    // Backward of the whole group starts when its last stage's output has its gradient.
    if (observer && train && output.requires_grad()) {
      output.register_hook([observer, last = group.last](const at::Tensor&) { observer->on_backward_reached(last); });
    }
    x = std::move(output);
  }
  // Backward starts with the last streamed segment: its weights may still be in their buffer, or travel now.
  if (weights && train && last_unit >= 0) weights->prefetch(static_cast<size_t>(last_unit));
  return x;
}

size_t PlannedStages::stage_count() const { return impl_->stages.size(); }

int64_t PlannedStages::host_bytes() const {
  return (impl_->stash ? impl_->stash->host_bytes() : 0) + (impl_->weights ? impl_->weights->host_bytes() : 0);
}

const WeightStream* PlannedStages::weights() const { return impl_->weights.get(); }

std::vector<std::unique_ptr<zoo::Stage>> stages_of(const torch::nn::Sequential& sequential) {
  std::vector<std::unique_ptr<zoo::Stage>> stages;
  for (const auto& module : *sequential) stages.push_back(std::make_unique<ModuleStage>(module));
  return stages;
}

std::vector<zoo::Stage*> pointers(const std::vector<std::unique_ptr<zoo::Stage>>& stages) {
  std::vector<zoo::Stage*> raw;
  raw.reserve(stages.size());
  for (const auto& stage : stages) raw.push_back(stage.get());
  return raw;
}

}  // namespace vram::profile
