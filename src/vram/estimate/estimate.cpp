#include "vram/estimate/estimate.h"

#include <algorithm>
#include <string>

#include "vram/estimate/tape.h"

namespace vram::estimate {
namespace {

using zoo::Family;
constexpr int64_t kFloat32 = 4;
constexpr int64_t kInt64 = 8;

// What one stage does to memory, from its forward replayed on a Tape.
struct StageReplay {
  StageEstimate estimate;
  int64_t input_bytes = 0;
  int64_t output_bytes = 0;
  int64_t saved_bytes = 0;  // kept for backward, the stage input included when kept
  bool input_kept = false;
  bool output_requires_grad = false;
  int64_t backward_gradient_bytes = -1;  // gradients made in its backward interval; -1: its trainable bytes
};

struct Context {
  const zoo::Workload& workload;
  const Backend& backend;
  int64_t element_bytes;
  bool train;
  bool full;  // every weight trains (no LoRA)

  bool adapts(const std::string& target) const {
    const auto& targets = workload.lora.targets;
    return workload.lora.enabled() && std::find(targets.begin(), targets.end(), target) != targets.end();
  }
};

// at::linear over `rows` rows, plus the LoRA adapter y += (x A^T) B^T * scale when the projection is a target.
Sym linear(Tape& tape, const Context& c, const Sym& x, int64_t rows, int64_t out, const std::string& name) {
  const int64_t e = c.element_bytes;
  Sym y = tape.make(rows * out * e, x.requires_grad || c.full);
  if (c.full) tape.save(x);  // the weight's gradient needs the input
  if (!c.adapts(name)) return y;
  tape.save(x);  // A's gradient needs the input
  const Sym xa = tape.make(rows * c.workload.lora.rank * e, true);
  const Sym xab = tape.make(rows * out * e, true);
  tape.save(xa);  // B's gradient needs x A^T
  const Sym scaled = tape.make(rows * out * e, true);
  const Sym sum = tape.make(rows * out * e, true);
  // C++ destroys an expression's temporaries when the whole expression ends.
  tape.release(xab);
  tape.release(scaled);
  tape.release(xa);
  tape.release(y);
  return sum;
}

// Llama's RMSNorm as the zoo writes it: float32 statistics, cast back, times the weight. Lifetimes follow the
// zoo's code: `input_fp32` and `normalized` are locals; the statistics are temporaries of one expression.
Sym rms_norm(Tape& tape, const Context& c, const Sym& x, int64_t rows, int64_t width) {
  const int64_t e = c.element_bytes;
  const bool grad = x.requires_grad;
  const Sym xf = e == kFloat32 ? x : tape.make(rows * width * kFloat32, grad);  // .to(float) of float is itself
  if (grad) tape.save(xf);                                                      // pow keeps its input
  const Sym square = tape.make(rows * width * kFloat32, grad);
  const Sym mean = tape.make(rows * kFloat32, grad);
  if (grad && c.backend.mean_keeps_input) tape.save(square);
  const Sym shifted = tape.make(rows * kFloat32, grad);
  const Sym rstd = tape.make(rows * kFloat32, grad);
  if (grad) tape.save(rstd);
  const Sym normalized = tape.make(rows * width * kFloat32, grad);
  for (const Sym& temporary : {square, mean, shifted, rstd}) tape.release(temporary);
  const Sym cast = e == kFloat32 ? normalized : tape.make(rows * width * e, grad);
  const Sym out = tape.make(rows * width * e, grad || c.full);
  if (c.full) tape.save(cast);  // the weight's gradient needs the normalized input
  tape.release(cast);
  tape.release(normalized);
  tape.release(xf);
  return out;
}

Sym layer_norm(Tape& tape, const Context& c, const Sym& x, int64_t rows, int64_t width) {
  const Sym out = tape.make(rows * width * c.element_bytes, x.requires_grad || c.full);
  if (x.requires_grad || c.full) {
    tape.save(x);
    tape.keep(2 * rows * kFloat32);  // mean and reciprocal standard deviation
  }
  return out;
}

Sym norm(Tape& tape, const Context& c, const Sym& x, int64_t rows) {
  const int64_t width = c.workload.model.hidden;
  return c.workload.model.family == Family::kLlama ? rms_norm(tape, c, x, rows, width)
                                                   : layer_norm(tape, c, x, rows, width);
}

// x * cos + rotate_half(x) * sin; the multiplications keep the [seq, head_dim] tables.
Sym rotary(Tape& tape, const Context& c, const Sym& x, int64_t seq, int64_t head_dim) {
  const Sym with_cos = tape.make(x.bytes, x.requires_grad);
  const Sym negated = tape.make(x.bytes / 2, x.requires_grad);  // inside rotate_half
  const Sym rotated = tape.make(x.bytes, x.requires_grad);
  tape.release(negated);
  const Sym with_sin = tape.make(x.bytes, x.requires_grad);
  const Sym out = tape.make(x.bytes, x.requires_grad);
  for (const Sym& temporary : {with_cos, rotated, with_sin}) tape.release(temporary);
  if (x.requires_grad) tape.keep(seq * head_dim * c.element_bytes);
  tape.release(x);  // the caller assigns the result over x
  return out;
}

// What a stage's replay leaves: kept bytes (its input too when kept, unless it is the batch), transient, output.
StageReplay finish_replay(const Tape& tape, const Sym& y, int64_t in_bytes, bool persistent_input) {
  StageReplay replay;
  replay.input_bytes = persistent_input ? 0 : in_bytes;
  const auto summary = tape.finish(y);
  replay.saved_bytes = summary.kept_bytes + (summary.input_kept && !persistent_input ? in_bytes : 0);
  replay.input_kept = summary.input_kept && !persistent_input;
  replay.estimate.forward_transient_bytes = summary.transient_bytes;
  replay.output_bytes = y.bytes;
  replay.output_requires_grad = y.requires_grad;
  return replay;
}

StageReplay attention_stage(const Context& c, int64_t batch, int64_t seq, int64_t in_bytes, bool in_grad) {
  const auto& m = c.workload.model;
  const int64_t e = c.element_bytes;
  const int64_t rows = batch * seq;
  const int64_t head_dim = m.hidden / m.heads;
  const int64_t kv_width = m.kv_heads * head_dim;
  Tape tape(c.train);
  const Sym x = tape.input(in_bytes, in_grad, false);
  // Locals of the zoo's Attention::forward (normalized, q, k, v, attended) live until it returns.
  const Sym n = norm(tape, c, x, rows);
  Sym q = linear(tape, c, n, rows, m.hidden, "q");
  Sym k = linear(tape, c, n, rows, kv_width, "k");
  const Sym v = linear(tape, c, n, rows, kv_width, "v");
  if (m.family == Family::kLlama) {
    q = rotary(tape, c, q, seq, head_dim);
    k = rotary(tape, c, k, seq, head_dim);
  }
  Sym k_all = k;
  Sym v_all = v;
  if (m.kv_heads != m.heads) {  // repeat_kv copies the shared heads out to every query head
    k_all = tape.make(rows * m.hidden * e, k.requires_grad);
    v_all = tape.make(rows * m.hidden * e, v.requires_grad);
  }
  const bool grad = q.requires_grad || k.requires_grad || v.requires_grad;
  Sym attended;
  Sym projected_input;
  if (c.backend.fused_attention) {
    // Flash / memory-efficient attention keeps its inputs, its output and a float32 log-sum-exp per row.
    attended = tape.make(rows * m.hidden * e, grad);
    if (grad) {
      tape.save(q);
      tape.save(k_all);
      tape.save(v_all);
      tape.save(attended);
      tape.keep(batch * m.heads * ((seq + 31) / 32 * 32) * kFloat32);
    }
    projected_input = attended;  // [batch, seq, heads, head_dim] already: the transpose-reshape is a view
  } else {
    // The math path: batched matmuls keep (contiguous copies of) q, k and v, and the probabilities.
    const int64_t scores_bytes = batch * m.heads * seq * seq * e;
    const Sym q_copy = tape.make(rows * m.hidden * e, grad);
    const Sym k_copy = tape.make(rows * m.hidden * e, grad);
    const Sym scores = tape.make(scores_bytes, grad);
    if (m.family != Family::kVit && grad) tape.keep(seq * seq);  // the causal mask, kept by masked_fill
    const Sym probabilities = tape.make(scores_bytes, grad);
    const Sym v_copy = tape.make(rows * m.hidden * e, grad);
    attended = tape.make(rows * m.hidden * e, grad);
    if (grad) {
      for (const Sym& kept : {q_copy, k_copy, probabilities, v_copy}) tape.save(kept);
    }
    for (const Sym& temporary : {q_copy, k_copy, scores, probabilities, v_copy}) tape.release(temporary);
    projected_input = tape.make(rows * m.hidden * e, grad);  // heads back to [batch, seq, hidden]: a copy
  }
  if (m.kv_heads != m.heads) {  // temporaries of the attend(...) expression
    tape.release(k_all);
    tape.release(v_all);
  }
  const Sym o = linear(tape, c, projected_input, rows, m.hidden, "o");
  const Sym y = tape.make(rows * m.hidden * e, in_grad || o.requires_grad);
  for (const Sym& local : {o, projected_input, attended, n, q, k, v}) tape.release(local);
  StageReplay replay = finish_replay(tape, y, in_bytes, false);
  // Backward: the gradients of q, k, v and the projection input, the float32 accumulator of flash attention, and
  // the norm's float32 gradients. The math path also holds the gradients of the scores and the probabilities.
  const int64_t attention_workspace =
      c.backend.fused_attention ? rows * m.hidden * kFloat32 : 2 * batch * m.heads * seq * seq * e;
  replay.estimate.backward_transient_bytes =
      c.train ? rows * m.hidden * (4 * e + 2 * kFloat32) + attention_workspace : 0;
  return replay;
}

StageReplay mlp_stage(const Context& c, int64_t rows, int64_t in_bytes, bool in_grad) {
  const auto& m = c.workload.model;
  const int64_t e = c.element_bytes;
  const int64_t hidden_bytes = rows * m.intermediate * e;
  Tape tape(c.train);
  const Sym x = tape.input(in_bytes, in_grad, false);
  // Locals of the zoo's Mlp::forward (normalized, hidden) live until it returns; the rest are temporaries of
  // the expression that makes `hidden`.
  const Sym n = norm(tape, c, x, rows);
  Sym h;
  if (m.family == Family::kLlama) {
    const Sym gate = linear(tape, c, n, rows, m.intermediate, "gate");
    const Sym activated = tape.make(hidden_bytes, gate.requires_grad);
    if (gate.requires_grad) tape.save(gate);  // silu keeps its input
    const Sym up = linear(tape, c, n, rows, m.intermediate, "up");
    h = tape.make(hidden_bytes, activated.requires_grad || up.requires_grad);
    if (activated.requires_grad) tape.save(up);  // each factor's gradient needs the other
    if (up.requires_grad) tape.save(activated);
    for (const Sym& temporary : {gate, activated, up}) tape.release(temporary);
  } else {
    const Sym fc1 = linear(tape, c, n, rows, m.intermediate, "fc1");
    h = tape.make(hidden_bytes, fc1.requires_grad);
    if (fc1.requires_grad) tape.save(fc1);  // gelu keeps its input
    tape.release(fc1);
  }
  const Sym down = linear(tape, c, h, rows, m.hidden, m.family == Family::kLlama ? "down" : "fc2");
  const Sym y = tape.make(rows * m.hidden * e, in_grad || down.requires_grad);
  for (const Sym& local : {down, h, n}) tape.release(local);
  StageReplay replay = finish_replay(tape, y, in_bytes, false);
  replay.estimate.backward_transient_bytes = c.train ? 3 * hidden_bytes + rows * m.hidden * 2 * kFloat32 : 0;
  return replay;
}

// Parameters of one stage (total, and those that train), as the zoo builds them.
struct StageParameters {
  int64_t total = 0;
  int64_t trainable = 0;
};

int64_t adapter(const Context& c, const std::string& name, int64_t in, int64_t out) {
  return c.adapts(name) ? c.workload.lora.rank * (in + out) : 0;
}

StageParameters transformer_parameters(const Context& c, const std::string& kind) {
  const auto& m = c.workload.model;
  const int64_t h = m.hidden;
  const bool llama = m.family == Family::kLlama;
  const int64_t norm = llama ? h : 2 * h;
  const int64_t bias = llama ? 0 : 1;
  StageParameters p;
  int64_t adapters = 0;
  if (kind == "embedding") {
    if (m.family == Family::kVit) {
      const int64_t patches = (m.image_size / m.patch) * (m.image_size / m.patch);
      p.total = h * 3 * m.patch * m.patch + h + h + (patches + 1) * h;
    } else {
      p.total = m.vocab * h + m.max_positions * h;
    }
  } else if (kind == "attention") {
    const int64_t kv = m.kv_heads * (h / m.heads);
    p.total = norm + 2 * (h * h + bias * h) + 2 * (h * kv + bias * kv);
    adapters = adapter(c, "q", h, h) + adapter(c, "k", h, kv) + adapter(c, "v", h, kv) + adapter(c, "o", h, h);
  } else if (kind == "mlp") {
    const int64_t i = m.intermediate;
    if (llama) {
      p.total = norm + 3 * h * i;
      adapters = adapter(c, "gate", h, i) + adapter(c, "up", h, i) + adapter(c, "down", i, h);
    } else {
      p.total = norm + h * i + i + i * h + h;
      adapters = adapter(c, "fc1", h, i) + adapter(c, "fc2", i, h);
    }
  } else if (kind == "norm") {
    p.total = norm;
  } else if (kind == "head") {
    if (m.family == Family::kLlama) p.total = m.vocab * h;
    if (m.family == Family::kVit) p.total = h * m.classes + m.classes;  // GPT-2's head is the embedding's table
  }
  p.total += adapters;
  p.trainable = c.full ? p.total : adapters;
  return p;
}

bool chunked_loss(const Context& c) {
  return c.train && c.workload.plan.loss_chunk_tokens > 0 && c.workload.model.is_language_model();
}

// Stages whose replay is a single output: embeddings, the final norm, heads.
StageReplay simple_stage(const Context& c, int64_t in_bytes, bool in_grad, int64_t out_bytes, bool keeps_input,
                         int64_t transient_extra, bool persistent_input = false) {
  StageReplay replay;
  replay.input_bytes = persistent_input ? 0 : in_bytes;
  replay.output_bytes = out_bytes;
  replay.output_requires_grad = in_grad || c.full;
  const bool record = c.train && (in_grad || c.full);
  replay.saved_bytes = record && keeps_input && !persistent_input ? in_bytes : 0;
  replay.input_kept = replay.saved_bytes > 0;
  replay.estimate.forward_transient_bytes = out_bytes + transient_extra;
  replay.estimate.backward_transient_bytes = c.train ? in_bytes + out_bytes : 0;
  return replay;
}

// The four ResNet stage kinds, replayed with the tape's shapes.
class ResNetReplay {
 public:
  explicit ResNetReplay(const Context& c) : c_(c), batch_(c.workload.batch) {}

  Sym conv(Tape& tape, const Sym& x, int64_t channels, int64_t& side, int64_t kernel, int64_t stride) const {
    side = (side + 2 * (kernel / 2) - kernel) / stride + 1;
    const Sym y = tape.make(batch_ * channels * side * side * c_.element_bytes, x.requires_grad || c_.full);
    if (c_.full) tape.save(x);
    return y;
  }
  // BatchNorm then, when relu, an in-place ReLU that keeps its result. The convolution output it normalizes is a
  // temporary of the statement, gone after it unless `keep_input_alive` (an enclosing expression goes on).
  Sym bn(Tape& tape, const Sym& x, int64_t channels, bool relu, bool keep_input_alive = false) const {
    const Sym y = tape.make(x.bytes, x.requires_grad || c_.full);
    if (x.requires_grad || c_.full) {
      tape.save(x);
      tape.keep(2 * channels * kFloat32);
    }
    if (!keep_input_alive) tape.release(x);
    if (relu && y.requires_grad) tape.save(y);
    return y;
  }

 private:
  const Context& c_;
  int64_t batch_;
};

int64_t image_bytes(const Context& c) {
  const int64_t side = c.workload.model.image_size;
  return c.workload.batch * 3 * side * side * c.element_bytes;
}

std::vector<StageReplay> resnet_stages(const Context& c) {
  const auto& m = c.workload.model;
  const ResNetReplay r(c);
  std::vector<StageReplay> stages;
  int64_t side = m.image_size;
  {
    Tape tape(c.train);
    const Sym image = tape.input(image_bytes(c), false, true);
    // max_pool2d(relu_(bn(conv(images)))): one expression, every temporary alive until it ends.
    const Sym conv = r.conv(tape, image, m.base_width, side, 7, 2);
    const Sym act = r.bn(tape, conv, m.base_width, true, true);
    side = (side + 2 - 3) / 2 + 1;
    const int64_t pooled = c.workload.batch * m.base_width * side * side;
    const Sym out = tape.make(pooled * c.element_bytes, act.requires_grad);
    if (act.requires_grad) {
      tape.save(act);
      tape.save(tape.make(pooled * kInt64, true));  // max-pool indices
    }
    tape.release(act);
    tape.release(conv);
    stages.push_back(finish_replay(tape, out, image.bytes, true));
    stages.back().estimate.name = "stem";
    stages.back().estimate.kind = "conv";
    stages.back().estimate.parameter_bytes = (3 * m.base_width * 49 + 2 * m.base_width) * c.element_bytes;
  }
  int64_t in_channels = m.base_width;
  for (size_t stage = 0; stage < m.blocks_per_stage.size(); ++stage) {
    const int64_t width = m.base_width << stage;
    for (int64_t block = 0; block < m.blocks_per_stage[stage]; ++block) {
      const int64_t stride = block == 0 && stage > 0 ? 2 : 1;
      Tape tape(c.train);
      const int64_t in_bytes = stages.back().output_bytes;
      const Sym x = tape.input(in_bytes, stages.back().output_requires_grad, false);
      int64_t s = side;
      Sym y = r.bn(tape, r.conv(tape, x, width, s, 1, 1), width, true);
      Sym z = r.bn(tape, r.conv(tape, y, width, s, 3, stride), width, true);
      tape.release(y);
      Sym w = r.bn(tape, r.conv(tape, z, 4 * width, s, 1, 1), 4 * width, false);
      tape.release(z);
      Sym identity = x;
      if (block == 0) {
        int64_t ds = side;
        identity = r.bn(tape, r.conv(tape, x, 4 * width, ds, 1, stride), 4 * width, false);
      }
      const Sym out = tape.make(w.bytes, w.requires_grad || identity.requires_grad);
      if (out.requires_grad) tape.save(out);  // the in-place ReLU keeps its result
      tape.release(w);
      tape.release(identity);
      side = s;
      in_channels = 4 * width;
      const std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(block);
      stages.push_back(finish_replay(tape, out, in_bytes, false));
      stages.back().estimate.name = name;
      stages.back().estimate.kind = "block";
      stages.back().estimate.backward_transient_bytes = c.train ? 3 * out.bytes : 0;
      const int64_t block_in = stage == 0 && block == 0 ? m.base_width : (block == 0 ? 2 * width : 4 * width);
      const int64_t weights = block_in * width + 9 * width * width + 4 * width * width + 12 * width +
                              (block == 0 ? block_in * 4 * width + 8 * width : 0);
      stages.back().estimate.parameter_bytes = weights * c.element_bytes;
    }
  }
  const int64_t pooled = c.workload.batch * in_channels * c.element_bytes;
  stages.push_back(simple_stage(c, stages.back().output_bytes, stages.back().output_requires_grad,
                                c.workload.batch * m.classes * c.element_bytes, false, pooled));
  stages.back().saved_bytes = c.train && c.full ? pooled : 0;  // the linear keeps the pooled features
  stages.back().estimate.name = "head";
  stages.back().estimate.kind = "head";
  stages.back().estimate.parameter_bytes = (in_channels * m.classes + m.classes) * c.element_bytes;
  for (auto& stage : stages) stage.estimate.trainable_bytes = stage.estimate.parameter_bytes;
  return stages;
}

std::vector<StageReplay> transformer_stages(const Context& c) {
  const auto& m = c.workload.model;
  const int64_t e = c.element_bytes;
  const bool vit = m.family == Family::kVit;
  const int64_t batch = c.workload.batch;
  const int64_t seq = vit ? (m.image_size / m.patch) * (m.image_size / m.patch) + 1 : c.workload.seq;
  const int64_t rows = batch * seq;
  const int64_t hidden_bytes = rows * m.hidden * e;
  std::vector<StageReplay> stages;

  if (vit) {
    // Convolution (keeps the image, which the batch holds anyway), class token concatenated, positions added.
    const int64_t patches = batch * (seq - 1) * m.hidden * e;
    stages.push_back(simple_stage(c, image_bytes(c), false, hidden_bytes, false, patches + hidden_bytes, true));
  } else {
    const int64_t extra = m.family == Family::kGpt2 ? hidden_bytes + seq * m.hidden * e : 0;
    stages.push_back(simple_stage(c, batch * seq * kInt64, false, hidden_bytes, false, extra, true));
    stages.back().estimate.backward_transient_bytes = 0;
  }
  stages.back().estimate.name = "embedding";
  stages.back().estimate.kind = "embedding";
  for (int64_t layer = 0; layer < m.layers; ++layer) {
    const std::string prefix = "layers." + std::to_string(layer);
    const auto& previous = stages.back();
    stages.push_back(attention_stage(c, batch, seq, previous.output_bytes, previous.output_requires_grad));
    stages.back().estimate.name = prefix + ".attention";
    stages.back().estimate.kind = "attention";
    const auto& attention = stages.back();
    stages.push_back(mlp_stage(c, rows, attention.output_bytes, attention.output_requires_grad));
    stages.back().estimate.name = prefix + ".mlp";
    stages.back().estimate.kind = "mlp";
  }
  {
    Tape tape(c.train);
    const auto& previous = stages.back();
    const Sym x = tape.input(previous.output_bytes, previous.output_requires_grad, false);
    const Sym y = norm(tape, c, x, rows);
    stages.push_back(finish_replay(tape, y, x.bytes, false));
    stages.back().estimate.name = "norm";
    stages.back().estimate.kind = "norm";
    stages.back().estimate.backward_transient_bytes = c.train ? 3 * rows * m.hidden * kFloat32 : 0;
  }
  const auto& previous = stages.back();
  const int64_t head_rows = vit ? batch : rows;
  const int64_t classes = vit ? m.classes : m.vocab;
  if (chunked_loss(c)) {
    // The head and the loss, a checkpointed piece at a time: the hidden states are kept; one piece's logits, their
    // float32 copy and log-probabilities exist at once; the output is the loss itself.
    const int64_t piece = std::min(rows, c.workload.plan.loss_chunk_tokens) * classes;
    StageReplay head = simple_stage(c, previous.output_bytes, previous.output_requires_grad, 0, true, 0);
    const int64_t pieces = (rows + c.workload.plan.loss_chunk_tokens - 1) / c.workload.plan.loss_chunk_tokens;
    head.saved_bytes += pieces * c.backend.rng_state_bytes;
    head.estimate.forward_transient_bytes = piece * (e + 2 * kFloat32);
    // In backward, piece by piece: the recomputed log-probabilities and the two float32 gradients of the loss,
    // then the gradient of the hidden states.
    head.estimate.backward_transient_bytes = 3 * piece * kFloat32 + previous.output_bytes;
    stages.push_back(head);
  } else {
    // The head keeps its input when its weight trains (for ViT the class-token view keeps the whole input).
    stages.push_back(
        simple_stage(c, previous.output_bytes, previous.output_requires_grad, head_rows * classes * e, c.full, 0));
  }
  stages.back().estimate.name = "head";
  stages.back().estimate.kind = "head";
  for (auto& stage : stages) {
    const auto p = transformer_parameters(c, stage.estimate.kind);
    stage.estimate.parameter_bytes = p.total * e;
    stage.estimate.trainable_bytes = p.trainable * e;
  }
  return stages;
}

std::vector<StageReplay> replay_stages(const Context& c) {
  return c.workload.model.family == Family::kResNet ? resnet_stages(c) : transformer_stages(c);
}

// A checkpoint segment (a stage and those that join it) runs its forward without autograd and keeps only its
// input. Its backward, in the interval of its last stage, first runs the forward again with autograd (what the
// stages would have kept, and each one's transient on the way), then backward through all of them.
void apply_plan(const Context& c, std::vector<StageReplay>& stages) {
  const auto& plan = c.workload.plan;
  if (!c.train || plan.stages.empty()) return;
  Context without_autograd = c;
  without_autograd.train = false;
  const std::vector<StageReplay> plain = replay_stages(without_autograd);
  int64_t previous_offloaded_input = 0;  // prefetched while the next segment runs backward
  for (size_t first = 0; first < stages.size(); ++first) {
    if (!zoo::starts_segment(plan.policy(first))) continue;
    const bool offload = plan.policy(first) == zoo::StagePolicy::kOffload;
    size_t last = first;
    while (last + 1 < stages.size() && plan.policy(last + 1) == zoo::StagePolicy::kJoin) ++last;
    int64_t kept = 0;  // by the recomputation so far, the segment input excluded (it is kept already)
    int64_t recompute = 0;
    int64_t gradients = 0;
    std::vector<int64_t> kept_by;
    for (size_t i = first; i <= last; ++i) {
      const StageReplay& stage = stages[i];
      const int64_t flowing_input = i > first && !stage.input_kept ? stage.input_bytes : 0;
      recompute = std::max(recompute, kept + flowing_input + stage.estimate.forward_transient_bytes);
      kept_by.push_back(stage.saved_bytes - (i == first && stage.input_kept ? stage.input_bytes : 0));
      kept += kept_by.back();
      gradients += stage.backward_gradient_bytes >= 0 ? stage.backward_gradient_bytes : stage.estimate.trainable_bytes;
    }
    // Then backward, last stage first, each releasing what it kept when done.
    int64_t alive = kept + stages[last].output_bytes;
    for (size_t i = last + 1; i-- > first;) {
      recompute = std::max(recompute, alive + stages[i].estimate.backward_transient_bytes);
      alive -= kept_by[i - first];
    }
    // An offloaded input comes back for this backward, and the segment before's is prefetched under it.
    if (offload) {
      recompute += stages[first].input_bytes + previous_offloaded_input;
      previous_offloaded_input = stages[first].input_bytes;
    }
    for (size_t i = first; i <= last; ++i) {
      StageReplay& stage = stages[i];
      stage.estimate.forward_transient_bytes = plain[i].estimate.forward_transient_bytes;
      // The input stays on the device unless offloaded (0 when it is the batch, held anyway).
      stage.saved_bytes = i == first && !offload ? stage.input_bytes : 0;
      if (i == first) stage.saved_bytes += c.backend.rng_state_bytes;
      stage.input_kept = i == first && !offload && stage.input_bytes > 0;
      stage.estimate.backward_transient_bytes = i == last ? recompute : 0;
      stage.backward_gradient_bytes = i == last ? gradients : 0;
    }
    first = last;
  }
}

int64_t optimizer_state_bytes(const zoo::Workload& w, int64_t trainable_bytes) {
  if (w.mode != zoo::Mode::kTrain) return 0;
  switch (w.optimizer) {
    case zoo::Optimizer::kAdamW: return 2 * trainable_bytes;
    case zoo::Optimizer::kSgdMomentum: return trainable_bytes;
    case zoo::Optimizer::kSgd: return 0;
  }
  return 0;
}

// Elements of the largest tensor that trains: the optimizer's temporaries are sized by it.
int64_t largest_trainable_tensor(const zoo::Workload& w) {
  const auto& m = w.model;
  if (w.lora.enabled()) return w.lora.rank * std::max(m.hidden, m.intermediate);
  if (m.family == Family::kResNet) {
    const int64_t last = m.base_width << (m.blocks_per_stage.size() - 1);
    return std::max({9 * last * last, 4 * last * last, 4 * last * m.classes});
  }
  return std::max({m.vocab * m.hidden, m.hidden * m.intermediate, m.hidden * m.classes});
}

// Weight streaming, as the runner groups it: every checkpoint segment before a chunked loss's head is a unit whose
// frozen weights live in host memory. Returns the bytes streamed and the size of the largest unit (one device
// buffer).
std::pair<int64_t, int64_t> streamed_weights(const Context& c, const std::vector<StageReplay>& stages) {
  const auto& plan = c.workload.plan;
  if (!plan.stream_weights) return {0, 0};
  const size_t looped = stages.size() - (chunked_loss(c) ? 1 : 0);
  int64_t streamed = 0;
  int64_t largest = 0;
  for (const auto& segment : zoo::segments(plan, looped)) {
    int64_t unit = 0;
    for (size_t i = segment.first; i <= segment.last; ++i) {
      unit += stages[i].estimate.parameter_bytes - stages[i].estimate.trainable_bytes;
    }
    streamed += unit;
    largest = std::max(largest, unit);
  }
  return {streamed, largest};
}

int64_t batch_input_bytes(const Context& c) {
  const auto& w = c.workload;
  if (w.model.is_language_model()) return (c.train ? 2 : 1) * w.batch * w.seq * kInt64;
  return image_bytes(c) + (c.train ? w.batch * kInt64 : 0);
}

}  // namespace

Backend backend_for(bool cuda, int libtorch_major, int cuda_capability_major) {
  Backend backend;
  backend.cuda = cuda;
  backend.fused_attention = cuda || libtorch_major >= 2;
  backend.mean_keeps_input = libtorch_major < 2;
  backend.rng_state_bytes = cuda ? 16 : 5056;
  backend.blas_workspace_bytes = !cuda ? 0 : cuda_capability_major >= 9 ? 32ll << 20 : (8ll << 20) + (128ll << 10);
  return backend;
}

core::Result<Estimate> estimate(const zoo::Workload& workload, const Backend& backend) {
  if (auto valid = zoo::validate(workload.model, workload.lora); !valid.ok()) return valid.error();
  if (workload.batch < 0 || (workload.model.is_language_model() && workload.seq < 1)) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "batch must be >= 0 and sequence length >= 1");
  }
  if (workload.plan.micro_batches < 1 || (workload.plan.stream_weights && workload.plan.weight_buffers < 2)) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "micro-batches must be at least 1 and weight buffers at least 2");
  }
  const int64_t e = zoo::bytes_per_element(workload.dtype);
  const bool train = workload.mode == zoo::Mode::kTrain;
  // Micro-batches: the stages run at the largest micro-batch; the inputs of the whole batch stay, and from the
  // second micro-batch on every gradient exists while the next one runs.
  const int64_t parts =
      train ? std::clamp<int64_t>(workload.plan.micro_batches, 1, std::max<int64_t>(workload.batch, 1)) : 1;
  zoo::Workload micro = workload;
  micro.batch = (workload.batch + parts - 1) / parts;
  const Context c{micro, backend, e, train, !workload.lora.enabled()};
  const Context whole{workload, backend, e, train, !workload.lora.enabled()};
  const auto counts = zoo::count_parameters(workload.model, workload.lora);

  Estimate result;
  result.parameter_bytes = counts.total * e;
  result.trainable_bytes = counts.trainable * e;
  result.gradient_bytes = c.train ? result.trainable_bytes : 0;
  result.optimizer_bytes = optimizer_state_bytes(workload, result.trainable_bytes);
  // cuBLAS keeps one workspace per thread that multiplies: the caller's and, in training, autograd's.
  result.workspace_bytes = backend.cuda ? backend.blas_workspace_bytes * (c.train ? 2 : 1) : 0;
  result.input_bytes = batch_input_bytes(whole);
  std::vector<StageReplay> stages = replay_stages(c);
  const auto [streamed, largest_unit] = streamed_weights(c, stages);
  result.streamed_bytes = streamed;
  result.weight_buffer_bytes = largest_unit * workload.plan.weight_buffers;
  const int64_t resident = result.parameter_bytes - streamed + result.weight_buffer_bytes;
  const int64_t fixed = resident + result.optimizer_bytes + result.workspace_bytes;
  if (workload.batch == 0) {
    result.peak_bytes = fixed;
    result.peak_phase = "parameters";
    return result;
  }

  apply_plan(c, stages);
  for (auto& stage : stages) {
    // As the profiler measures it: allocated after the stage's forward minus before.
    stage.estimate.activation_bytes = stage.saved_bytes + stage.output_bytes - stage.input_bytes;
  }

  // Replay the step interval by interval.
  const int64_t accumulated = parts > 1 ? result.gradient_bytes : 0;
  const int64_t base = fixed + result.input_bytes + accumulated;
  int64_t peak = 0;
  const auto consider = [&](int64_t bytes, const char* phase, const std::string& stage) {
    if (bytes > peak) {
      peak = bytes;
      result.peak_phase = phase;
      result.peak_stage = stage;
    }
  };
  int64_t kept = 0;  // saved by the stages so far
  for (size_t i = 0; i < stages.size(); ++i) {
    const auto& stage = stages[i];
    const int64_t input = i == 0 ? 0 : stage.input_bytes;  // the batch is in `base`
    consider(base + kept + input + stage.estimate.forward_transient_bytes, "forward", stage.estimate.name);
    kept += stage.saved_bytes;
  }
  result.activation_bytes = kept;
  if (c.train) {
    const auto& m = workload.model;
    const int64_t rows = m.is_language_model() ? workload.batch * workload.seq : workload.batch;
    const int64_t classes = m.family == Family::kLlama || m.family == Family::kGpt2 ? m.vocab : m.classes;
    const int64_t logits = rows * classes * e;
    const int64_t log_probs = rows * classes * kFloat32;
    const int64_t cast = e == kFloat32 ? 0 : log_probs;
    if (!chunked_loss(c)) {  // a chunked loss runs inside the head's forward and backward
      consider(base + kept + logits + cast + log_probs, "loss", "loss");
      // Backward of the loss: the gradient of the log-probabilities, then of the float32 logits.
      consider(base + kept + log_probs + 2 * log_probs, "backward", "loss");
    }
    int64_t gradients = 0;
    for (size_t i = stages.size(); i-- > 0;) {
      const auto& stage = stages[i];
      // Alive: what stages up to this one keep, the gradient arriving at its output, gradients so far.
      const int64_t stage_gradients =
          stage.backward_gradient_bytes >= 0 ? stage.backward_gradient_bytes : stage.estimate.trainable_bytes;
      consider(base + kept + gradients + stage.output_bytes + stage.estimate.backward_transient_bytes + stage_gradients,
               "backward", stage.estimate.name);
      kept -= stage.saved_bytes;
      // Accumulating into existing gradients frees the new ones at once.
      if (parts == 1) gradients += stage_gradients;
    }
    // The optimizer: every gradient; AdamW's update makes two temporaries the size of the largest parameter.
    const int64_t largest = largest_trainable_tensor(workload) * e;
    consider(
        base - accumulated + result.gradient_bytes + (workload.optimizer == zoo::Optimizer::kAdamW ? 2 * largest : 0),
        "optimizer", "optimizer");
  }
  result.peak_bytes = peak;
  for (auto& stage : stages) result.stages.push_back(stage.estimate);
  return result;
}

}  // namespace vram::estimate
