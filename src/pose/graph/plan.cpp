#include "pose/graph/plan.h"

#include <torch/cuda.h>

#include <chrono>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <new>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace pose::graph {
namespace {

// "node" and "node:0" name the same value; keys are always written with the index.
std::string value_key(std::string_view name) {
  return name.find(':') == std::string_view::npos ? std::string(name) + ":0" : std::string(name);
}

std::string_view node_of(std::string_view name) { return name.substr(0, name.find(':')); }

bool is_convolution(std::string_view op) {
  return op == "Conv2D" || op == "_FusedConv2D" || op == "DepthwiseConv2dNative" || op == "FusedDepthwiseConv2dNative";
}

}  // namespace

class PlanBuilder {
 public:
  PlanBuilder(const ModelDef& model, WeightMap weights, const PlanRequest& request)
      : model_(model), weights_(std::move(weights)), request_(request) {
    plan_.model_name_ = model.path.filename().string();
  }

  core::Result<Plan> build() {
    if (auto status = index_nodes(); !status) return status.error();
    auto order = dependency_order();
    if (!order) return order.error();
    plan_.stats_.nodes = order->size();
    for (const NodeDef* node : *order) {
      if (auto status = add_node(*node); !status) return status.error();
    }
    if (auto status = resolve_inputs_and_outputs(); !status) return status.error();
    fuse_activations();
    remove_dead_steps();
    assign_releases();
    keep_read_constants();
    plan_.stats_.steps = plan_.steps_.size();
    return std::move(plan_);
  }

 private:
  core::Error error(core::ErrorCode code, const std::string& message) const {
    return core::make_error(code, model_.path.string() + ": " + message);
  }

  core::Error node_failure(const NodeDef& node, const core::Error& cause) const {
    return error(cause.code, "node '" + node.name + "' (" + node.op + "): " + cause.message);
  }

  core::Status index_nodes() {
    for (const auto& node : model_.nodes) {
      if (!nodes_by_name_.emplace(node.name, &node).second) {
        return error(core::ErrorCode::kInvalidArgument, "node '" + node.name + "' is defined twice");
      }
    }
    return {};
  }

  core::Status resolve_inputs_and_outputs() {
    for (const auto& name : request_.inputs) {
      // An input the requested outputs do not depend on still takes a slot, which nothing reads.
      const auto slot = find_value(name);
      plan_.input_slots_.push_back(slot ? *slot : new_slot({}));
    }
    for (const auto& name : request_.outputs) {
      const auto slot = find_value(name);
      if (!slot) return error(core::ErrorCode::kInvalidArgument, "output '" + name + "' does not exist");
      plan_.output_slots_.push_back(*slot);
    }
    return {};
  }

  // Nodes the outputs depend on, each after its inputs (iterative DFS: graphs are hundreds of nodes deep).
  core::Result<std::vector<const NodeDef*>> dependency_order() const {
    enum class Mark { kNew, kOpen, kDone };
    std::unordered_map<const NodeDef*, Mark> marks;
    std::vector<const NodeDef*> order;
    std::vector<std::pair<const NodeDef*, size_t>> stack;
    const auto visit = [&](std::string_view name, const NodeDef* reader) -> core::Status {
      const auto it = nodes_by_name_.find(node_of(name));
      if (it == nodes_by_name_.end()) {
        return error(core::ErrorCode::kInvalidArgument,
                     reader ? "node '" + reader->name + "' reads '" + std::string(name) + "', which is not in the graph"
                            : "output '" + std::string(name) + "' is not a node of the graph");
      }
      Mark& mark = marks[it->second];
      if (mark == Mark::kOpen) {
        return error(core::ErrorCode::kInvalidArgument,
                     "the graph has a cycle through node '" + it->second->name + "'");
      }
      if (mark == Mark::kNew) {
        mark = Mark::kOpen;
        stack.emplace_back(it->second, 0);
      }
      return {};
    };
    for (const auto& output : request_.outputs) {
      if (auto status = visit(output, nullptr); !status) return status.error();
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->inputs.size()) {
          const NodeDef* reader = node;
          if (auto status = visit(node->inputs[next++], reader); !status) return status.error();
          continue;
        }
        marks[node] = Mark::kDone;
        order.push_back(node);
        stack.pop_back();
      }
    }
    return order;
  }

  std::optional<int32_t> find_value(std::string_view name) const {
    const auto it = values_.find(value_key(name));
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  core::Error missing_value(const NodeDef& reader, std::string_view name) const {
    return error(core::ErrorCode::kInvalidArgument,
                 "node '" + reader.name + "' reads '" + std::string(name) + "', which its node does not produce");
  }

  int32_t new_slot(at::Tensor constant) {
    constants_.push_back(std::move(constant));
    return static_cast<int32_t>(constants_.size() - 1);
  }

  bool is_constant(int32_t slot) const { return constants_[static_cast<size_t>(slot)].defined(); }

  core::Status add_node(const NodeDef& node) {
    try {
      if (node.op == "Const") return add_constant(node);
      if (node.op == "Placeholder") {
        values_[node.name + ":0"] = new_slot({});
        return {};
      }
      if (node.op == "Identity") {
        if (node.inputs.size() != 1) {
          return error(core::ErrorCode::kInvalidArgument, "Identity '" + node.name + "' needs 1 input");
        }
        const auto source = find_value(node.inputs[0]);
        if (!source) return missing_value(node, node.inputs[0]);
        values_[node.name + ":0"] = *source;
        return {};
      }
      return add_kernel(node);
    } catch (const c10::Error& failure) {
      return node_failure(node, core::make_error(core::ErrorCode::kInternal, failure.what_without_backtrace()));
    }
  }

  core::Status add_constant(const NodeDef& node) {
    const auto it = weights_.find(node.name);
    if (it == weights_.end()) {
      return error(core::ErrorCode::kCorrupt,
                   "Const node '" + node.name + "' has no entry in the weights manifest (re-install the model)");
    }
    at::Tensor value = std::move(it->second);
    weights_.erase(it);
    const auto options = at::isFloatingType(value.scalar_type()) ? request_.float_options
                                                                 : request_.float_options.dtype(value.scalar_type());
    values_[node.name + ":0"] = new_slot(value.to(options));
    return {};
  }

  // A convolution reading a Pad of H and W only reads the Pad's input instead and pads itself (kPrePadAttr); the
  // Pad step is removed later if nothing else reads it.
  NodeDef fold_pad(const NodeDef& node) {
    if (!is_convolution(node.op) || node.inputs.empty() || node.attrs.contains(kPrePadAttr)) return node;
    const auto input = find_value(node.inputs[0]);
    const auto producer = input ? producers_.find(*input) : producers_.end();
    if (producer == producers_.end() || producer->second->op != "Pad" || producer->second->inputs.size() != 2)
      return node;
    const NodeDef& pad = *producer->second;
    const auto paddings_slot = find_value(pad.inputs[1]);
    if (!paddings_slot || !is_constant(*paddings_slot)) return node;
    const auto paddings = constant_ints(NodeInput{pad.inputs[1], &constants_[static_cast<size_t>(*paddings_slot)]});
    if (!paddings || paddings->size() != 8) return node;
    const auto& p = *paddings;
    if (p[0] != 0 || p[1] != 0 || p[6] != 0 || p[7] != 0 ||
        std::any_of(p.begin(), p.end(), [](int64_t v) { return v < 0; })) {
      return node;
    }
    NodeDef folded = node;
    folded.inputs[0] = pad.inputs[0];
    folded.attrs[std::string(kPrePadAttr)] = std::vector<int64_t>{p[2], p[3], p[4], p[5]};
    ++plan_.stats_.fused_pads;
    return folded;
  }

  core::Status add_kernel(const NodeDef& original) {
    const KernelBuilder builder = find_kernel_builder(original.op);
    if (builder == nullptr) {
      return error(core::ErrorCode::kUnsupported,
                   "node '" + original.name + "' uses op '" + original.op + "', which pose::graph does not support");
    }
    const NodeDef node = fold_pad(original);
    std::vector<NodeInput> inputs;
    std::vector<int32_t> slots;
    for (const auto& name : node.inputs) {
      const auto found = find_value(name);
      if (!found) return missing_value(node, name);
      const int32_t slot = *found;
      slots.push_back(slot);
      inputs.push_back(NodeInput{name, is_constant(slot) ? &constants_[static_cast<size_t>(slot)] : nullptr});
    }
    auto kernel = builder(node, inputs, KernelContext{request_.float_options});
    if (!kernel) return node_failure(node, kernel.error());

    std::vector<int32_t> runtime_slots;
    for (const size_t index : kernel->runtime_inputs) runtime_slots.push_back(slots.at(index));
    const bool foldable =
        std::all_of(runtime_slots.begin(), runtime_slots.end(), [&](int32_t s) { return is_constant(s); });
    if (foldable) {
      fold(node, *kernel, runtime_slots);
      return {};
    }

    Plan::Step step{node.name, node.op, std::move(kernel->fn), kernel->fresh_output, std::move(runtime_slots), {}, {}};
    for (size_t k = 0; k < kernel->num_outputs; ++k) {
      const int32_t slot = new_slot({});
      step.outputs.push_back(slot);
      values_[node.name + ":" + std::to_string(k)] = slot;
      producers_[slot] = &original;
    }
    plan_.steps_.push_back(std::move(step));
    return {};
  }

  // Runs a node whose inputs are all constant now, once, and keeps its outputs as constants.
  void fold(const NodeDef& node, const Kernel& kernel, const std::vector<int32_t>& runtime_slots) {
    std::vector<at::Tensor> args;
    for (const int32_t slot : runtime_slots) args.push_back(constants_[static_cast<size_t>(slot)]);
    std::vector<at::Tensor> results(kernel.num_outputs);
    kernel.fn(args, results);
    for (size_t k = 0; k < results.size(); ++k) values_[node.name + ":" + std::to_string(k)] = new_slot(results[k]);
    ++plan_.stats_.folded;
  }

  // A Relu/Relu6 whose input has no other reader and comes fresh from its producer is applied by the producer,
  // in place, saving a pass over memory and an allocation (BlazePose's residual add + Relu6).
  void fuse_activations() {
    std::unordered_map<int32_t, size_t> readers;
    std::unordered_map<int32_t, size_t> producer_step;
    const std::unordered_set<int32_t> outputs(plan_.output_slots_.begin(), plan_.output_slots_.end());
    for (size_t i = 0; i < plan_.steps_.size(); ++i) {
      for (const int32_t slot : plan_.steps_[i].inputs) ++readers[slot];
      for (const int32_t slot : plan_.steps_[i].outputs) producer_step[slot] = i;
    }
    std::vector<Plan::Step> kept;
    std::vector<size_t> new_index(plan_.steps_.size());
    for (size_t i = 0; i < plan_.steps_.size(); ++i) {
      Plan::Step& step = plan_.steps_[i];
      const auto activation = activation_of_op(step.op);
      if (activation && step.inputs.size() == 1) {
        const int32_t source = step.inputs[0];
        const auto producer = producer_step.find(source);
        if (producer != producer_step.end() && readers[source] == 1 && !outputs.contains(source)) {
          Plan::Step& target = kept[new_index[producer->second]];
          if (target.fresh_output && target.outputs[0] == source) {
            target.fn = [inner = std::move(target.fn), act = *activation](std::span<const at::Tensor> in,
                                                                          std::span<at::Tensor> out) {
              inner(in, out);
              apply_activation_(out[0], act);
            };
            target.outputs[0] = step.outputs[0];
            producer_step[step.outputs[0]] = producer->second;
            ++plan_.stats_.fused_activations;
            continue;
          }
        }
      }
      new_index[i] = kept.size();
      kept.push_back(std::move(step));
    }
    plan_.steps_ = std::move(kept);
  }

  // Steps none of whose outputs reach a graph output (Pads folded into convolutions) are dropped.
  void remove_dead_steps() {
    std::unordered_set<int32_t> needed(plan_.output_slots_.begin(), plan_.output_slots_.end());
    std::vector<Plan::Step> kept;
    for (auto it = plan_.steps_.rbegin(); it != plan_.steps_.rend(); ++it) {
      if (std::none_of(it->outputs.begin(), it->outputs.end(), [&](int32_t s) { return needed.contains(s); })) {
        continue;
      }
      needed.insert(it->inputs.begin(), it->inputs.end());
      kept.push_back(std::move(*it));
    }
    std::reverse(kept.begin(), kept.end());
    plan_.steps_ = std::move(kept);
  }

  // Each value is freed right after its last reader (or its producer, if nothing reads it), so peak memory is the
  // live set and not the whole graph.
  void assign_releases() {
    const std::unordered_set<int32_t> outputs(plan_.output_slots_.begin(), plan_.output_slots_.end());
    std::unordered_map<int32_t, size_t> last_use;
    for (size_t i = 0; i < plan_.steps_.size(); ++i) {
      for (const int32_t slot : plan_.steps_[i].outputs) last_use[slot] = i;
      for (const int32_t slot : plan_.steps_[i].inputs) last_use[slot] = i;
    }
    for (const auto& [slot, step] : last_use) {
      if (!outputs.contains(slot)) plan_.steps_[step].release.push_back(slot);
    }
    for (auto& step : plan_.steps_) {
      std::sort(step.release.begin(), step.release.end());
      plan_.max_step_inputs_ = std::max(plan_.max_step_inputs_, step.inputs.size());
      plan_.max_step_outputs_ = std::max(plan_.max_step_outputs_, step.outputs.size());
    }
  }

  // Only constants a step or an output reads stay alive; the raw TF filters the convolutions converted go.
  void keep_read_constants() {
    plan_.initial_slots_.assign(constants_.size(), at::Tensor());
    const auto keep = [&](int32_t slot) {
      plan_.initial_slots_[static_cast<size_t>(slot)] = constants_[static_cast<size_t>(slot)];
    };
    for (const auto& step : plan_.steps_) std::for_each(step.inputs.begin(), step.inputs.end(), keep);
    std::for_each(plan_.output_slots_.begin(), plan_.output_slots_.end(), keep);
    for (const int32_t slot : plan_.output_slots_) plan_.output_is_constant_.push_back(is_constant(slot));
  }

  const ModelDef& model_;
  WeightMap weights_;
  const PlanRequest& request_;
  std::unordered_map<std::string_view, const NodeDef*> nodes_by_name_;
  std::unordered_map<std::string, int32_t> values_;        // "node:k" -> slot
  std::unordered_map<int32_t, const NodeDef*> producers_;  // slot -> the node whose step writes it
  std::vector<at::Tensor> constants_;                      // per slot; defined for constants
  Plan plan_;
};

core::Result<Plan> Plan::build(const ModelDef& model, WeightMap weights, const PlanRequest& request) {
  const c10::InferenceMode inference;
  return PlanBuilder(model, std::move(weights), request).build();
}

core::Result<std::vector<at::Tensor>> Plan::execute(std::vector<at::Tensor> inputs, OpProfile* profile) const {
  if (inputs.size() != input_slots_.size()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, model_name_ + ": expected " +
                                                                   std::to_string(input_slots_.size()) +
                                                                   " inputs, got " + std::to_string(inputs.size()));
  }
  const Step* current = nullptr;
  try {
    const c10::InferenceMode inference;
    std::vector<at::Tensor> slots = initial_slots_;
    for (size_t i = 0; i < inputs.size(); ++i) slots[static_cast<size_t>(input_slots_[i])] = std::move(inputs[i]);
    std::vector<at::Tensor> args;
    args.reserve(max_step_inputs_);
    std::vector<at::Tensor> results(max_step_outputs_);
    for (const Step& step : steps_) {
      current = &step;
      for (const int32_t slot : step.inputs) args.push_back(slots[static_cast<size_t>(slot)]);
      const auto start = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
      step.fn(args, std::span<at::Tensor>(results.data(), step.outputs.size()));
      if (profile) {
        if (!step.outputs.empty() && results[0].defined() && results[0].is_cuda()) torch::cuda::synchronize();
        OpTiming& timing = (*profile)[step.op];
        ++timing.calls;
        timing.total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      }
      args.clear();  // drop these references before releasing, so memory is really returned
      for (size_t k = 0; k < step.outputs.size(); ++k) {
        slots[static_cast<size_t>(step.outputs[k])] = std::move(results[k]);
      }
      for (const int32_t slot : step.release) slots[static_cast<size_t>(slot)].reset();
    }
    std::vector<at::Tensor> outputs;
    outputs.reserve(output_slots_.size());
    for (size_t i = 0; i < output_slots_.size(); ++i) {
      const at::Tensor& value = slots[static_cast<size_t>(output_slots_[i])];
      outputs.push_back(output_is_constant_[i] ? value.clone() : value);
    }
    return outputs;
  } catch (const c10::Error& failure) {
    const bool oom = dynamic_cast<const c10::OutOfMemoryError*>(&failure) != nullptr;
    const std::string where = current ? "node '" + current->node + "' (" + current->op + ")" : "preparing the run";
    return core::make_error(oom ? core::ErrorCode::kOutOfMemory : core::ErrorCode::kInternal,
                            model_name_ + ": " + where + " failed: " + failure.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return core::make_error(core::ErrorCode::kOutOfMemory, model_name_ + ": out of memory while running");
  }
}

}  // namespace pose::graph
