#include "vram/plan/plan.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace vram::plan {
namespace {

using zoo::Family;
using zoo::StagePolicy;

// Work a stage does besides its multiply-adds, per pass (kernel launches, norms, elementwise): what makes many
// small micro-batches slower than one large batch.
constexpr double kStageOverheadSeconds = 60e-6;

double adapter_flops(const zoo::Workload& w, const std::string& target, double rows, double in, double out) {
  const auto& t = w.lora.targets;
  if (!w.lora.enabled() || std::find(t.begin(), t.end(), target) == t.end()) return 0.0;
  return 2.0 * rows * static_cast<double>(w.lora.rank) * (in + out);
}

std::vector<StageCost> stage_costs(const zoo::Workload& w) {
  const auto& m = w.model;
  const auto layout = zoo::stage_layout(m);
  std::vector<StageCost> costs(layout.size());
  const double full = w.lora.enabled() ? 0.0 : 1.0;
  if (m.family == Family::kResNet) {
    // ResNet-50 at 224 pixels: 4.1 G multiply-adds per image, spread over the blocks by their parameters; other
    // widths and sides scale with parameters and pixels.
    const auto counts = zoo::count_parameters(m, w.lora);
    const double pixels = static_cast<double>(m.image_size * m.image_size) / (224.0 * 224.0);
    const double total = 8.2e9 * pixels * static_cast<double>(counts.total) / 25.557e6 * static_cast<double>(w.batch);
    const double blocks = static_cast<double>(layout.size() - 1);
    for (size_t i = 0; i + 1 < layout.size(); ++i) costs[i] = {total / blocks, full};
    costs.back() = {0.0, full};
    return costs;
  }
  const double h = static_cast<double>(m.hidden);
  const double inter = static_cast<double>(m.intermediate);
  const int64_t patches_per_side = m.family == Family::kVit ? m.image_size / m.patch : 0;  // whole patches
  const double seq = m.family == Family::kVit ? static_cast<double>(patches_per_side * patches_per_side + 1)
                                              : static_cast<double>(w.seq);
  const double rows = static_cast<double>(w.batch) * seq;
  const double kv = static_cast<double>(m.kv_heads > 0 ? m.kv_heads : m.heads) * h / static_cast<double>(m.heads);
  // Scores and weighted values: 2 x 2 x seq x hidden per row; causal attention computes half.
  const double attention_core = 4.0 * rows * seq * h * (m.family == Family::kVit ? 1.0 : 0.5);
  for (size_t i = 0; i < layout.size(); ++i) {
    const auto& kind = layout[i].kind;
    StageCost& c = costs[i];
    c.trainable_fraction = full;
    if (kind == "attention") {
      c.flops = 2.0 * rows * (2.0 * h * h + 2.0 * h * kv) + attention_core + adapter_flops(w, "q", rows, h, h) +
                adapter_flops(w, "k", rows, h, kv) + adapter_flops(w, "v", rows, h, kv) +
                adapter_flops(w, "o", rows, h, h);
    } else if (kind == "mlp") {
      const double projections = m.family == Family::kLlama ? 3.0 : 2.0;
      c.flops = 2.0 * rows * projections * h * inter + adapter_flops(w, "gate", rows, h, inter) +
                adapter_flops(w, "up", rows, h, inter) + adapter_flops(w, "down", rows, inter, h) +
                adapter_flops(w, "fc1", rows, h, inter) + adapter_flops(w, "fc2", rows, inter, h);
    } else if (kind == "head") {
      const double classes = static_cast<double>(m.is_language_model() ? m.vocab : m.classes);
      c.flops = 2.0 * (m.is_language_model() ? rows : static_cast<double>(w.batch)) * h * classes;
      // GPT-2's head is the tied embedding, which trains only in a full fine-tune.
    } else if (kind == "embedding" && m.family == Family::kVit) {
      c.flops = 2.0 * rows * h * 3.0 * static_cast<double>(m.patch * m.patch);
    }
  }
  return costs;
}

int64_t items_per_step(const zoo::Workload& w) { return w.batch * (w.model.is_language_model() ? w.seq : 1); }

// Plans in order of how much machinery they use: a tie in predicted speed goes to the simpler one.
int complexity(const zoo::Plan& plan) {
  int score = 0;
  for (const auto policy : plan.stages) score += policy == StagePolicy::kOffload ? 2 : zoo::starts_segment(policy);
  // Micro-batches repeat every streamed copy and every kernel launch: the costliest to be wrong about.
  return score + (plan.stream_weights ? 100 : 0) + (plan.loss_chunk_tokens > 0 ? 10 : 0) +
         (plan.loss_chunk_tokens > 0 && plan.loss_chunk_tokens < 2048 ? 1 : 0) +
         static_cast<int>(50 * (plan.micro_batches - 1));
}

std::string gib_text(int64_t bytes) {
  std::ostringstream out;
  out.precision(2);
  out << std::fixed << static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30) << " GiB";
  return out.str();
}

}  // namespace

Costs assumed_costs(bool cuda) {
  Costs costs;
  // As `vram bench` measured them on an H200 for a llama-7b layer in bf16 (docs/benchmarks.md).
  costs.flops_per_second = cuda ? 437e12 : 50e9;
  costs.backward_flops_per_second = cuda ? 336e12 : 50e9;
  costs.host_to_device_bytes_per_second = cuda ? 52e9 : 5e9;
  costs.device_to_host_bytes_per_second = costs.host_to_device_bytes_per_second;
  return costs;
}

std::vector<StageCost> stage_costs_of(const zoo::Workload& workload) { return stage_costs(workload); }

double predict_step_seconds(const zoo::Workload& workload, const Costs& costs) {
  const bool train = workload.mode == zoo::Mode::kTrain;
  const auto& plan = workload.plan;
  const int64_t parts = train ? std::clamp<int64_t>(plan.micro_batches, 1, std::max<int64_t>(workload.batch, 1)) : 1;
  zoo::Workload micro = workload;
  micro.batch = std::max<int64_t>(1, (workload.batch + parts - 1) / parts);
  const auto stages = stage_costs(micro);
  const double fps = costs.flops_per_second;
  const double backward_fps = costs.backward_flops_per_second > 0 ? costs.backward_flops_per_second : fps;
  const bool chunked = train && plan.loss_chunk_tokens > 0 && workload.model.is_language_model();
  const size_t looped = stages.size() - (chunked ? 1 : 0);

  double forward = 0.0;
  double backward = 0.0;
  for (const auto& s : stages) {
    forward += s.flops / fps + kStageOverheadSeconds;
    // Gradients for the input (as much as the forward) and for the weights that train.
    if (train) backward += s.flops * (1.0 + s.trainable_fraction) / backward_fps + 2 * kStageOverheadSeconds;
  }
  double recompute = chunked ? stages.back().flops / fps : 0.0;
  double stalls = 0.0;
  // Streamed bytes per unit: the frozen weights of a segment (what the estimator counts per stage).
  std::vector<int64_t> stage_frozen;
  if (plan.stream_weights) {
    auto estimate = estimate::estimate(micro, estimate::backend_for(true, 2, 9));
    if (estimate) {
      for (const auto& s : estimate->stages) stage_frozen.push_back(s.parameter_bytes - s.trainable_bytes);
    }
  }
  const int64_t row_bytes = micro.model.hidden * zoo::bytes_per_element(workload.dtype) *
                            (micro.model.is_language_model() ? micro.seq : 1) * micro.batch;
  for (const auto& segment : zoo::segments(plan, looped)) {
    double segment_forward = 0.0;
    double segment_backward = 0.0;
    int64_t frozen = 0;
    for (size_t i = segment.first; i <= segment.last; ++i) {
      segment_forward += stages[i].flops / fps;
      segment_backward += stages[i].flops / fps + stages[i].flops * (1.0 + stages[i].trainable_fraction) / backward_fps;
      if (i < stage_frozen.size()) frozen += stage_frozen[i];
    }
    if (train) recompute += segment_forward;
    // What each pass copies beside its compute: the weights coming in, the segment input going out (forward)
    // and the previous one's coming back (backward).
    const double weights_in = static_cast<double>(frozen) / costs.host_to_device_bytes_per_second;
    const double input_out =
        segment.offload && train ? static_cast<double>(row_bytes) / costs.device_to_host_bytes_per_second : 0.0;
    const double input_in =
        segment.offload && train ? static_cast<double>(row_bytes) / costs.host_to_device_bytes_per_second : 0.0;
    stalls += std::max(0.0, std::max(weights_in, input_out) - segment_forward);
    if (train) stalls += std::max(0.0, weights_in + input_in - segment_backward);
  }
  return static_cast<double>(parts) * (forward + backward + recompute + stalls);
}

core::Result<Choice> choose(const zoo::Workload& workload, const PlannerOptions& options) {
  if (options.budget_bytes <= 0)
    return core::make_error(core::ErrorCode::kInvalidArgument, "the budget must be positive");
  if (options.costs.flops_per_second <= 0 || options.costs.host_to_device_bytes_per_second <= 0 ||
      options.costs.device_to_host_bytes_per_second <= 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "the planner's costs must be positive");
  }
  if (auto valid = zoo::validate(workload.model, workload.lora); !valid.ok()) return valid.error();
  const bool train = workload.mode == zoo::Mode::kTrain;
  const auto& model = workload.model;

  // Which layers keep their activations: none, the first quarter, half, three quarters or all checkpointed, the
  // segment inputs on the device or in host memory. Inference keeps nothing anyway, but streams through segments.
  std::vector<zoo::Plan> layouts = {zoo::Plan{}};
  if (train && model.family != Family::kResNet) {
    const zoo::Plan mlp = zoo::parse_plan("checkpoint-mlp", model).value();
    const size_t count = zoo::segments(mlp, mlp.stages.size()).size();
    layouts.push_back(zoo::first_segments(mlp, count / 2));
    layouts.push_back(mlp);
  }
  for (const char* named : {"checkpoint", "offload"}) {
    const zoo::Plan all = zoo::parse_plan(named, model).value();
    const size_t count = zoo::segments(all, all.stages.size()).size();
    if (!train) {
      if (std::string(named) == "checkpoint") layouts.push_back(all);
      continue;
    }
    for (const size_t part : {count / 4, count / 2, 3 * count / 4}) {
      if (part > 0 && part < count) layouts.push_back(zoo::first_segments(all, part));
    }
    layouts.push_back(all);
  }
  std::vector<int64_t> chunks = {0};
  if (train && model.is_language_model()) chunks = {0, 2048, 512};
  std::vector<int64_t> micro = {1};
  if (train) {
    for (int64_t m = 2; m <= workload.batch; m *= 2) {
      if (workload.batch % m == 0) micro.push_back(m);
    }
  }
  const bool frozen_weights = workload.lora.enabled() || !train;

  Choice choice;
  choice.floor_bytes = -1;
  const double usable = static_cast<double>(options.budget_bytes) * (1.0 - options.headroom);
  for (const auto& layout : layouts) {
    const bool has_segments = !zoo::segments(layout, layout.stages.size()).empty();
    for (const bool stream : {false, true}) {
      if (stream && !(has_segments && frozen_weights)) continue;
      for (const int64_t chunk : chunks) {
        if (chunk >= workload.batch * workload.seq) continue;  // one piece is the whole loss
        for (const int64_t parts : micro) {
          zoo::Workload w = workload;
          w.plan = layout;
          w.plan.stream_weights = stream;
          w.plan.loss_chunk_tokens = chunk;
          w.plan.micro_batches = parts;
          auto predicted = estimate::estimate(w, options.backend);
          if (!predicted) return predicted.error();
          Candidate c;
          c.plan = w.plan;
          c.predicted_peak_bytes = predicted->peak_bytes;
          c.predicted_step_seconds = predict_step_seconds(w, options.costs);
          c.predicted_items_per_second = static_cast<double>(items_per_step(w)) / c.predicted_step_seconds;
          c.fits = static_cast<double>(c.predicted_peak_bytes) <= usable;
          if (choice.floor_bytes < 0 || c.predicted_peak_bytes < choice.floor_bytes) {
            choice.floor_bytes = c.predicted_peak_bytes;
            choice.floor_plan = zoo::describe(c.plan, model);
          }
          choice.candidates.push_back(std::move(c));
        }
      }
    }
  }
  // Fitting first, fastest first. The choice: among the plans that fit and are within 1% of the fastest, the
  // simplest, then the one with the smaller peak.
  std::stable_sort(choice.candidates.begin(), choice.candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.fits != b.fits) return a.fits;
    return a.predicted_step_seconds < b.predicted_step_seconds;
  });
  size_t best = 0;
  for (size_t i = 1; i < choice.candidates.size() && choice.candidates[i].fits; ++i) {
    const Candidate& c = choice.candidates[i];
    const Candidate& b = choice.candidates[best];
    if (c.predicted_step_seconds > 1.01 * choice.candidates.front().predicted_step_seconds) break;
    if (complexity(c.plan) < complexity(b.plan) ||
        (complexity(c.plan) == complexity(b.plan) && c.predicted_peak_bytes < b.predicted_peak_bytes)) {
      best = i;
    }
  }
  std::rotate(choice.candidates.begin(), choice.candidates.begin() + static_cast<std::ptrdiff_t>(best),
              choice.candidates.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  if (choice.candidates.empty() || !choice.candidates.front().fits) {
    const auto floor_budget =
        static_cast<int64_t>(std::ceil(static_cast<double>(choice.floor_bytes) / (1.0 - options.headroom)));
    return core::make_error(core::ErrorCode::kOutOfMemory,
                            model.name + " at batch " + std::to_string(workload.batch) +
                                (model.is_language_model() ? " x " + std::to_string(workload.seq) + " tokens" : "") +
                                " needs a budget of at least " + gib_text(floor_budget) + " (plan " +
                                choice.floor_plan + ": a peak of " + gib_text(choice.floor_bytes) + " and " +
                                std::to_string(static_cast<int>(options.headroom * 100)) +
                                "% headroom); the budget is " + gib_text(options.budget_bytes) +
                                ". Lower the batch or sequence length, or use LoRA.");
  }
  choice.best = choice.candidates.front();
  return choice;
}

}  // namespace vram::plan
