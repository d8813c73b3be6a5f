// The public face of pose::graph: resolves the model's signature, checks what callers pass, and moves tensors
// between the caller's dtypes and the plan's device and compute dtype. Parsing, kernels and execution live in
// model_json.cpp, weights.cpp, kernels*.cpp and plan.cpp.

#include "pose/graph/graph.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <chrono>
#include <sstream>
#include <unordered_set>

#include "pose/graph/model_json.h"
#include "pose/graph/plan.h"
#include "pose/graph/weights.h"

namespace pose::graph {
namespace {

std::string dtype_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kInt: return "int32";
    case at::kBool: return "bool";
    case at::kLong: return "int64";
    case at::kHalf: return "float16";
    case at::kByte: return "uint8";
    default: return c10::toString(type);
  }
}

std::string shape_text(at::IntArrayRef shape) {
  std::ostringstream text;
  text << '[';
  for (size_t i = 0; i < shape.size(); ++i) text << (i ? "," : "") << shape[i];
  text << ']';
  return text.str();
}

const NodeDef* find_node(const ModelDef& model, std::string_view name) {
  for (const auto& node : model.nodes) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

std::string node_name_of(std::string_view tensor) { return std::string(tensor.substr(0, tensor.find(':'))); }

// Feeding an inner node: it becomes a Placeholder (float32, any shape), so the planner neither runs nor needs
// what produced it.
core::Status feed_inner_nodes(ModelDef* model, const std::vector<std::string>& feeds) {
  for (const auto& feed : feeds) {
    const auto node = std::find_if(model->nodes.begin(), model->nodes.end(),
                                   [&](const NodeDef& n) { return n.name == node_name_of(feed); });
    if (node == model->nodes.end()) {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              model->path.string() + ": input node '" + feed + "' is not in the graph");
    }
    node->op = "Placeholder";
    node->inputs.clear();
    node->attrs.clear();
    node->attrs["dtype"] = c10::ScalarType::Float;
    model->fed_nodes.push_back(node->name);
  }
  return {};
}

// Inputs come from the signature when there is one (friendly names), else from the Placeholders. The dtype and
// shape are the Placeholder's: it is what the graph accepts (MoveNet-MultiPose's signature says 256x256, its
// Placeholder takes any size).
core::Result<std::vector<TensorInfo>> input_infos(const ModelDef& model) {
  std::vector<TensorInfo> infos;
  if (!model.fed_nodes.empty()) {
    for (const auto& name : model.fed_nodes) infos.push_back(TensorInfo{name, name + ":0", at::kFloat, {}});
    return infos;
  }
  if (model.inputs.empty()) {
    for (const auto& node : model.nodes) {
      if (node.op == "Placeholder") infos.push_back(TensorInfo{node.name, node.name + ":0", {}, {}});
    }
  } else {
    for (const auto& entry : model.inputs) {
      infos.push_back(TensorInfo{entry.key, entry.tensor, entry.dtype, entry.shape.dims});
    }
  }
  for (auto& info : infos) {
    const NodeDef* node = find_node(model, node_name_of(info.node));
    if (node == nullptr || node->op != "Placeholder") {
      return core::make_error(core::ErrorCode::kInvalidArgument,
                              model.path.string() + ": signature input '" + info.name + "' is not a Placeholder node");
    }
    if (const auto dtype = node->type_attr("dtype")) info.dtype = *dtype;
    if (const auto shape = node->shape_attr("shape"); shape && !shape->unknown_rank) info.shape = shape->dims;
  }
  return infos;
}

// Without a signature, the outputs are the nodes nothing reads (TFJS does the same).
std::vector<TensorInfo> sink_outputs(const ModelDef& model) {
  std::unordered_set<std::string_view> read;
  for (const auto& node : model.nodes) {
    for (const auto& input : node.inputs) read.insert(std::string_view(input).substr(0, input.find(':')));
  }
  std::vector<TensorInfo> infos;
  for (const auto& node : model.nodes) {
    if (node.op != "Const" && !read.contains(node.name)) {
      infos.push_back(TensorInfo{node.name, node.name + ":0", {}, {}});
    }
  }
  return infos;
}

std::vector<TensorInfo> output_infos(const ModelDef& model, const GraphOptions& options) {
  std::vector<TensorInfo> infos;
  if (!options.outputs.empty()) {
    for (const auto& name : options.outputs) {
      const std::string node = name.find(':') == std::string::npos ? name + ":0" : name;
      infos.push_back(TensorInfo{name, node, {}, {}});
    }
  } else if (!model.outputs.empty()) {
    for (const auto& entry : model.outputs) {
      infos.push_back(TensorInfo{entry.key, entry.tensor, entry.dtype, entry.shape.dims});
    }
  } else {
    infos = sink_outputs(model);
  }
  return infos;
}

at::ScalarType float_type(ComputeType compute) { return compute == ComputeType::kFloat16 ? at::kHalf : at::kFloat; }

core::Status check_device(const GraphOptions& options) {
  if (options.device.is_cuda() && !at::hasCUDA()) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            "a CUDA device was requested but LibTorch sees none (CPU-only build or no driver)");
  }
  if (!options.device.is_cuda() && options.compute == ComputeType::kFloat16) {
    return core::make_error(core::ErrorCode::kUnsupported,
                            "float16 compute needs a CUDA device; use ComputeType::kFloat32 on the CPU");
  }
  return {};
}

// cuDNN computes float32 convolutions in TF32 unless the application turns that off. It is a process-wide
// LibTorch setting, so pose::graph leaves it alone and says what it costs: about 1e-3 relative error per layer,
// enough to move MoveNet's keypoints to another heatmap cell (measured on an H200 with LibTorch 2.11).
void warn_if_tf32(const GraphOptions& options, const std::filesystem::path& model_json) {
  if (options.device.is_cuda() && options.compute == ComputeType::kFloat32 && at::globalContext().allowTF32CuDNN()) {
    options.logger.warn(model_json.filename().string(),
                        ": cuDNN may run these float32 convolutions in TF32; for float32 results call "
                        "at::globalContext().setAllowTF32CuDNN(false) at start-up");
  }
}

double megabytes(const WeightMap& weights) {
  double bytes = 0;
  for (const auto& [name, tensor] : weights) bytes += static_cast<double>(tensor.nbytes());
  return bytes / 1e6;
}

}  // namespace

struct Graph::Impl {
  std::string model_name;
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  Plan plan;
  c10::Device device;
  at::ScalarType compute_float;
  bool any_batch;
};

Graph::Graph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Graph::~Graph() = default;

const std::vector<TensorInfo>& Graph::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Graph::outputs() const { return impl_->outputs; }

core::Result<std::unique_ptr<Graph>> Graph::load(const std::filesystem::path& model_json, const GraphOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (auto status = check_device(options); !status) {
    return core::make_error(status.error().code, model_json.string() + ": " + status.error().message);
  }
  auto model = parse_model_json(model_json);
  if (!model) return model.error();
  if (auto fed = feed_inner_nodes(&*model, options.inputs); !fed) return fed.error();
  auto weights = load_weights(*model);
  if (!weights) return weights.error();
  auto inputs = input_infos(*model);
  if (!inputs) return inputs.error();
  const double weight_mb = megabytes(*weights);

  PlanRequest request;
  for (const auto& info : *inputs) request.inputs.push_back(node_name_of(info.node));
  std::vector<TensorInfo> outputs = output_infos(*model, options);
  for (const auto& info : outputs) request.outputs.push_back(info.node);
  request.float_options = at::TensorOptions().device(options.device).dtype(float_type(options.compute));

  try {
    auto plan = Plan::build(*model, std::move(*weights), request);
    if (!plan) return plan.error();
    const PlanStats& stats = plan->stats();
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    warn_if_tf32(options, model_json);
    options.logger.info(model_json.filename().string(), ": ", stats.nodes, " nodes -> ", stats.steps, " steps (",
                        stats.folded, " folded, ", stats.fused_pads, " pads and ", stats.fused_activations,
                        " activations fused), ", weight_mb, " MB of weights, ", load_ms, " ms, on ",
                        options.device.str());
    auto impl =
        std::make_unique<Impl>(Impl{model_json.filename().string(), std::move(*inputs), std::move(outputs),
                                    std::move(*plan), options.device, float_type(options.compute), options.any_batch});
    return std::unique_ptr<Graph>(new Graph(std::move(impl)));
  } catch (const c10::Error& error) {
    return core::make_error(core::ErrorCode::kInternal,
                            model_json.string() + ": LibTorch failed while loading: " + error.what_without_backtrace());
  }
}

core::Result<std::vector<at::Tensor>> Graph::run(std::span<const at::Tensor> inputs, OpProfile* profile) const {
  const auto& infos = impl_->inputs;
  const auto fail = [&](const std::string& message) {
    return core::make_error(core::ErrorCode::kInvalidArgument, impl_->model_name + ": " + message);
  };
  if (inputs.size() != infos.size()) {
    return fail("expected " + std::to_string(infos.size()) + " input tensor(s), got " + std::to_string(inputs.size()));
  }
  std::vector<at::Tensor> prepared;
  try {
    for (size_t i = 0; i < inputs.size(); ++i) {
      const at::Tensor& input = inputs[i];
      const TensorInfo& info = infos[i];
      if (!input.defined()) return fail("input '" + info.name + "' is an undefined tensor");
      if (info.dtype != at::ScalarType::Undefined && input.scalar_type() != info.dtype) {
        return fail("input '" + info.name + "' must be " + dtype_name(info.dtype) + ", got " +
                    dtype_name(input.scalar_type()));
      }
      bool shape_ok = info.shape.empty() || static_cast<size_t>(input.dim()) == info.shape.size();
      for (size_t d = 0; shape_ok && d < info.shape.size(); ++d) {
        shape_ok = info.shape[d] < 0 || info.shape[d] == input.size(static_cast<int64_t>(d)) ||
                   (d == 0 && impl_->any_batch && input.size(0) >= 1);
      }
      if (!shape_ok) {
        return fail("input '" + info.name + "' must have shape " + shape_text(info.shape) + " (-1: any), got " +
                    shape_text(input.sizes()));
      }
      const at::ScalarType type = input.scalar_type() == at::kFloat ? impl_->compute_float : input.scalar_type();
      prepared.push_back(input.to(impl_->device, type));
    }
  } catch (const c10::Error& error) {
    return fail(std::string("moving the inputs to ") + impl_->device.str() +
                " failed: " + error.what_without_backtrace());
  }
  auto outputs = impl_->plan.execute(std::move(prepared), profile);
  if (!outputs || impl_->compute_float == at::kFloat) return outputs;
  try {
    for (auto& output : *outputs) {
      if (output.scalar_type() == impl_->compute_float) output = output.to(at::kFloat);
    }
  } catch (const c10::Error& error) {
    return fail(std::string("converting the outputs to float32 failed: ") + error.what_without_backtrace());
  }
  return outputs;
}

}  // namespace pose::graph
