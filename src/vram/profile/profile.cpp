#include "vram/profile/profile.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include "vram/profile/runner.h"

namespace vram::profile {
namespace {

using Clock = std::chrono::steady_clock;

int64_t tensor_bytes(const at::Tensor& tensor) { return tensor.defined() ? static_cast<int64_t>(tensor.nbytes()) : 0; }

// Records one interval per forward stage, the loss, each stage's backward and the optimizer: the allocation at
// its start, its peak (the allocator's peak statistic, reset at every boundary) and its end.
class TimelineRecorder final : public StepObserver {
 public:
  TimelineRecorder(memory::Meter& meter, const Runner& runner, const zoo::Model& model)
      : meter_(meter), runner_(runner), model_(model) {}

  void on_step_begin() override { start_ = Clock::now(); }
  void on_forward_begin(size_t stage) override { open("forward", model_.stage_info(stage).name); }
  void on_forward_end(size_t stage) override {
    close();
    if (stage + 1 == model_.stage_count() && runner_.options().workload.mode == zoo::Mode::kTrain) {
      open("loss", "loss");
    }
  }
  void on_loss_end() override {
    close();
    open("backward", "loss");
  }
  void on_backward_reached(size_t stage) override {
    close();
    open("backward", model_.stage_info(stage).name);
  }
  void on_backward_end() override {
    close();
    open("optimizer", "optimizer");
  }
  void on_optimizer_end() override { close(); }

  std::vector<TimelineInterval> take() { return std::move(intervals_); }
  int64_t peak_reserved_bytes() const { return peak_reserved_bytes_; }

 private:
  double now_ms() const { return std::chrono::duration<double, std::milli>(Clock::now() - start_).count(); }

  void open(const std::string& phase, const std::string& stage) {
    runner_.synchronize();
    meter_.reset_peak();
    current_ = TimelineInterval{};
    current_.phase = phase;
    current_.stage = stage;
    current_.begin_ms = now_ms();
    current_.begin_bytes = meter_.read().allocated_bytes;
  }

  void close() {
    runner_.synchronize();
    const auto snapshot = meter_.read();
    current_.end_ms = now_ms();
    current_.end_bytes = snapshot.allocated_bytes;
    current_.peak_bytes = std::max(snapshot.peak_allocated_bytes, current_.end_bytes);
    peak_reserved_bytes_ = std::max(peak_reserved_bytes_, snapshot.peak_reserved_bytes);
    intervals_.push_back(current_);
  }

  memory::Meter& meter_;
  const Runner& runner_;
  const zoo::Model& model_;
  Clock::time_point start_;
  TimelineInterval current_;
  std::vector<TimelineInterval> intervals_;
  int64_t peak_reserved_bytes_ = 0;
};

// Parameters, gradients and trainable bytes per stage; a tensor shared by two stages (GPT-2's tied embedding)
// belongs to the first.
void fill_parameters(zoo::Model& model, std::vector<StageMemory>& stages) {
  std::set<const void*> seen;
  for (size_t index = 0; index < model.stage_count(); ++index) {
    auto& stage = stages[index];
    for (const auto& parameter : model.stage(index).parameters()) {
      if (!seen.insert(parameter.data_ptr()).second) continue;
      stage.parameter_bytes += tensor_bytes(parameter);
      if (parameter.requires_grad()) stage.trainable_bytes += tensor_bytes(parameter);
      stage.gradient_bytes += tensor_bytes(parameter.grad());
    }
  }
}

int64_t input_bytes(const zoo::Workload& workload) {
  const int64_t ids = workload.batch * workload.seq * static_cast<int64_t>(sizeof(int64_t));
  if (workload.model.is_language_model()) return workload.mode == zoo::Mode::kTrain ? 2 * ids : ids;
  const int64_t side = workload.model.image_size;
  return workload.batch * 3 * side * side * zoo::bytes_per_element(workload.dtype) +
         workload.batch * static_cast<int64_t>(sizeof(int64_t));
}

PeakBreakdown attribute_peak(const Profile& profile) {
  PeakBreakdown peak;
  const auto top = std::max_element(profile.timeline.begin(), profile.timeline.end(),
                                    [](const auto& a, const auto& b) { return a.peak_bytes < b.peak_bytes; });
  if (top == profile.timeline.end()) return peak;
  peak.phase = top->phase;
  peak.stage = top->stage;
  peak.peak_bytes = top->peak_bytes;
  // Which stages still hold activations, and whose gradients exist, at the peak interval.
  const auto& stages = profile.stages;
  const auto position = std::find_if(stages.begin(), stages.end(), [&](const auto& s) { return s.name == top->stage; });
  const auto stage_index = static_cast<size_t>(position - stages.begin());  // == size() for loss and optimizer
  for (size_t index = 0; index < stages.size(); ++index) {
    const auto& stage = stages[index];
    peak.parameter_bytes += stage.parameter_bytes;
    peak.optimizer_bytes += stage.optimizer_bytes;
    bool holds_activations = false;
    bool has_gradients = false;
    if (top->phase == "forward") {
      holds_activations = index < stage_index;
    } else if (top->phase == "loss" || (top->phase == "backward" && top->stage == "loss")) {
      holds_activations = true;
    } else if (top->phase == "backward") {
      holds_activations = index <= stage_index;
      has_gradients = index > stage_index;
    } else {
      has_gradients = true;
    }
    if (holds_activations) {
      peak.activation_bytes += stage.activation_bytes;
      peak.largest_activations.emplace_back(stage.name, stage.activation_bytes);
    }
    if (has_gradients) peak.gradient_bytes += stage.gradient_bytes;
  }
  std::sort(peak.largest_activations.begin(), peak.largest_activations.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (peak.largest_activations.size() > 5) peak.largest_activations.resize(5);
  peak.input_bytes = input_bytes(profile.workload);
  peak.transient_bytes = top->peak_bytes - top->begin_bytes;
  peak.unattributed_bytes = peak.peak_bytes - peak.parameter_bytes - peak.optimizer_bytes - peak.gradient_bytes -
                            peak.input_bytes - peak.activation_bytes - peak.transient_bytes;
  peak.attributed_fraction = peak.peak_bytes > 0 ? 1.0 - static_cast<double>(std::llabs(peak.unattributed_bytes)) /
                                                             static_cast<double>(peak.peak_bytes)
                                                 : 1.0;
  return peak;
}

void report(const ProfileOptions& options, const std::string& what, double fraction) {
  if (options.progress) options.progress(what, fraction);
}

}  // namespace

core::Result<Profile> profile_step(const ProfileOptions& options) {
  const auto& workload = options.workload;
  auto meter = memory::Meter::create(options.device);
  if (!meter) return meter.error();
  RunnerOptions runner_options;
  runner_options.workload = workload;
  runner_options.device = options.device;
  runner_options.seed = options.seed;
  report(options, "building " + workload.model.name, 0.0);
  auto runner = Runner::create(runner_options);
  if (!runner) return runner.error();
  auto& model = (*runner)->model();

  const int total_steps = options.warmup_steps + 1 + options.timed_steps;
  for (int step = 0; step < options.warmup_steps; ++step) {
    report(options, "warm-up step", static_cast<double>(step) / total_steps);
    if (auto status = (*runner)->step(workload.batch, workload.seq); !status) return status.error();
  }
  (*runner)->synchronize();

  Profile profile;
  profile.workload = workload;
  profile.device = options.device;
  profile.capacity_bytes = (*meter)->capacity_bytes();
  const int64_t optimizer_bytes = (*runner)->optimizer_state_bytes();

  report(options, "profiled step", static_cast<double>(options.warmup_steps) / total_steps);
  (*meter)->reset_peak();
  TimelineRecorder recorder(**meter, **runner, model);
  if (auto status = (*runner)->step(workload.batch, workload.seq, &recorder); !status) return status.error();
  profile.allocator = (*meter)->read();
  profile.timeline = recorder.take();
  // The step starts by dropping the previous step's gradients: its baseline is what the first stage starts with.
  profile.baseline_bytes = profile.timeline.empty() ? 0 : profile.timeline.front().begin_bytes;

  profile.stages.resize(model.stage_count());
  for (size_t index = 0; index < model.stage_count(); ++index) {
    profile.stages[index].name = model.stage_info(index).name;
    profile.stages[index].kind = model.stage_info(index).kind;
  }
  fill_parameters(model, profile.stages);
  int64_t trainable_total = 0;
  for (const auto& stage : profile.stages) trainable_total += stage.trainable_bytes;
  for (auto& stage : profile.stages) {
    // Optimizer state follows trainable parameters (it is built with their shapes and dtype).
    stage.optimizer_bytes = trainable_total > 0
                                ? static_cast<int64_t>(std::llround(static_cast<double>(optimizer_bytes) *
                                                                    static_cast<double>(stage.trainable_bytes) /
                                                                    static_cast<double>(trainable_total)))
                                : 0;
    for (const auto& interval : profile.timeline) {
      if (interval.stage != stage.name) continue;
      if (interval.phase == "forward") {
        stage.activation_bytes = interval.end_bytes - interval.begin_bytes;
        stage.forward_peak_bytes = interval.peak_bytes - interval.begin_bytes;
        stage.forward_ms = interval.end_ms - interval.begin_ms;
      } else if (interval.phase == "backward") {
        stage.backward_peak_bytes = interval.peak_bytes - interval.begin_bytes;
        stage.backward_ms = interval.end_ms - interval.begin_ms;
      }
    }
  }
  profile.peak = attribute_peak(profile);
  // The allocator's own peaks are reset at every interval; over the step they are the intervals' highest.
  profile.allocator.peak_allocated_bytes = profile.peak.peak_bytes;
  profile.allocator.peak_reserved_bytes = recorder.peak_reserved_bytes();

  std::vector<double> step_ms;
  for (int step = 0; step < options.timed_steps; ++step) {
    report(options, "timed step", static_cast<double>(options.warmup_steps + 1 + step) / total_steps);
    const auto start = Clock::now();
    if (auto status = (*runner)->step(workload.batch, workload.seq); !status) return status.error();
    (*runner)->synchronize();
    step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  if (!step_ms.empty()) {
    std::sort(step_ms.begin(), step_ms.end());
    profile.step_ms = step_ms[step_ms.size() / 2];
    const bool language = workload.model.is_language_model();
    const double items = static_cast<double>(workload.batch * (language ? workload.seq : 1));
    profile.items_per_s = items / (profile.step_ms / 1000.0);
    profile.items = language ? "tokens" : "samples";
  }
  report(options, "done", 1.0);
  return profile;
}

}  // namespace vram::profile
