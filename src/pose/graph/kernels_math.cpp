// Element-wise kernels, reductions, ArgMax, TopKV2 and Select. TF broadcasting matches LibTorch's, and both keep
// int32 arithmetic in int32, so most of these are one LibTorch call.

#include <ATen/ATen.h>

#include <array>
#include <utility>

#include "pose/graph/kernels.h"

namespace pose::graph {
namespace {

using UnaryFn = at::Tensor (*)(const at::Tensor&);
using BinaryFn = at::Tensor (*)(const at::Tensor&, const at::Tensor&);

struct UnaryEntry {
  std::string_view op;
  UnaryFn fn;
};

struct BinaryEntry {
  std::string_view op;
  BinaryFn fn;
};

constexpr std::array kUnary{
    UnaryEntry{"Abs", [](const at::Tensor& x) { return at::abs(x); }},
    UnaryEntry{"Exp", [](const at::Tensor& x) { return at::exp(x); }},
    UnaryEntry{"Sqrt", [](const at::Tensor& x) { return at::sqrt(x); }},
    UnaryEntry{"Sigmoid", [](const at::Tensor& x) { return at::sigmoid(x); }},
    UnaryEntry{"Reciprocal", [](const at::Tensor& x) { return at::reciprocal(x); }},
    UnaryEntry{"Relu", [](const at::Tensor& x) { return at::relu(x); }},
    UnaryEntry{"Relu6", [](const at::Tensor& x) { return at::clamp(x, 0, 6); }},
};

constexpr std::array kBinary{
    BinaryEntry{"AddV2", [](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }},
    BinaryEntry{"Add", [](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b); }},
    BinaryEntry{"Sub", [](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b); }},
    BinaryEntry{"Mul", [](const at::Tensor& a, const at::Tensor& b) { return at::mul(a, b); }},
    BinaryEntry{"RealDiv", [](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b); }},
    // TF's FloorDiv rounds towards -inf for integers and floats alike.
    BinaryEntry{"FloorDiv", [](const at::Tensor& a, const at::Tensor& b) { return at::div(a, b, "floor"); }},
    BinaryEntry{"Maximum", [](const at::Tensor& a, const at::Tensor& b) { return at::maximum(a, b); }},
    BinaryEntry{"Minimum", [](const at::Tensor& a, const at::Tensor& b) { return at::minimum(a, b); }},
    BinaryEntry{"SquaredDifference",
                [](const at::Tensor& a, const at::Tensor& b) {
                  const at::Tensor difference = at::sub(a, b);
                  return at::mul(difference, difference);
                }},
    BinaryEntry{"Greater", [](const at::Tensor& a, const at::Tensor& b) { return at::gt(a, b); }},
    BinaryEntry{"GreaterEqual", [](const at::Tensor& a, const at::Tensor& b) { return at::ge(a, b); }},
    BinaryEntry{"Less", [](const at::Tensor& a, const at::Tensor& b) { return at::lt(a, b); }},
    BinaryEntry{"Equal", [](const at::Tensor& a, const at::Tensor& b) { return at::eq(a, b); }},
    BinaryEntry{"LogicalAnd", [](const at::Tensor& a, const at::Tensor& b) { return at::logical_and(a, b); }},
};

template <class Table>
auto find_fn(const Table& table, std::string_view op) -> decltype(table[0].fn) {
  for (const auto& entry : table) {
    if (entry.op == op) return entry.fn;
  }
  return nullptr;
}

std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> dims;
  for (const int64_t axis : axes) dims.push_back(normalize_axis(axis, rank));
  return dims;
}

}  // namespace

core::Result<Kernel> build_unary(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 1) return node_error("expects 1 input");
  const UnaryFn fn = find_fn(kUnary, node.op);
  if (fn == nullptr) return node_error("has no unary kernel");
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fresh_output = true;
  kernel.fn = [fn](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = fn(in[0]); };
  return kernel;
}

core::Result<Kernel> build_binary(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs");
  const BinaryFn fn = find_fn(kBinary, node.op);
  if (fn == nullptr) return node_error("has no binary kernel");
  Kernel kernel;
  kernel.runtime_inputs = {0, 1};
  kernel.fresh_output = true;
  kernel.fn = [fn](std::span<const at::Tensor> in, std::span<at::Tensor> out) { out[0] = fn(in[0], in[1]); };
  return kernel;
}

core::Result<Kernel> build_add_n(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.empty()) return node_error("expects at least 1 input");
  Kernel kernel;
  for (size_t i = 0; i < inputs.size(); ++i) kernel.runtime_inputs.push_back(i);
  kernel.fresh_output = true;
  kernel.fn = [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor sum = in.size() == 1 ? in[0].clone() : at::add(in[0], in[1]);
    for (size_t i = 2; i < in.size(); ++i) sum.add_(in[i]);
    out[0] = std::move(sum);
  };
  return kernel;
}

core::Result<Kernel> build_reduce(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, axes)");
  const auto axes = constant_ints(inputs[1]);
  if (!axes) return core::make_error(core::ErrorCode::kUnsupported, "the reduction axes must be constant");
  const bool keep_dims = node.bool_attr("keep_dims").value_or(false);
  const bool is_sum = node.op == "Sum";
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [axes = *axes, keep_dims, is_sum](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    // TF reduces nothing for an empty axis list; LibTorch would reduce everything.
    if (axes.empty()) {
      out[0] = x;
      return;
    }
    const std::vector<int64_t> dims = normalize_axes(axes, x.dim());
    // at::sum would widen int32 to int64; TF keeps the input type.
    out[0] = is_sum ? at::sum(x, at::IntArrayRef(dims), keep_dims, x.scalar_type())
                    : at::amax(x, at::IntArrayRef(dims), keep_dims);
  };
  return kernel;
}

core::Result<Kernel> build_arg_max(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, dimension)");
  const auto axis = constant_ints(inputs[1]);
  if (!axis || axis->size() != 1) {
    return core::make_error(core::ErrorCode::kUnsupported, "the dimension must be a constant scalar");
  }
  const at::ScalarType type = node.type_attr("output_type").value_or(at::kLong);
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fresh_output = true;
  // Both TF and LibTorch return the first index of the maximum.
  kernel.fn = [a = (*axis)[0], type](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = at::argmax(in[0], normalize_axis(a, in[0].dim()), false).to(type);
  };
  return kernel;
}

core::Result<Kernel> build_top_k(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, k)");
  const auto k = constant_ints(inputs[1]);
  if (!k || k->size() != 1) return core::make_error(core::ErrorCode::kUnsupported, "k must be a constant scalar");
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.num_outputs = 2;
  // TF orders equal values by lower index first; a stable descending sort guarantees that where at::topk does not.
  kernel.fn = [count = (*k)[0]](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    TORCH_CHECK(in[0].dim() >= 1 && in[0].size(-1) >= count, "TopKV2 k=", count, " exceeds the last dimension");
    auto [values, indices] = at::sort(in[0], /*stable=*/true, /*dim=*/-1, /*descending=*/true);
    out[0] = values.narrow(-1, 0, count);
    out[1] = indices.narrow(-1, 0, count).to(at::kInt);
  };
  return kernel;
}

core::Result<Kernel> build_select(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 3) return node_error("expects 3 inputs (condition, then, else)");
  const bool legacy = node.op == "Select";
  Kernel kernel;
  kernel.runtime_inputs = {0, 1, 2};
  kernel.fresh_output = true;
  kernel.fn = [legacy](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    at::Tensor condition = in[0];
    // Select (v1) lets a vector condition pick whole rows of higher-rank operands.
    if (legacy && condition.dim() == 1 && in[1].dim() > 1) {
      std::vector<int64_t> shape(static_cast<size_t>(in[1].dim()), 1);
      shape[0] = condition.size(0);
      condition = condition.reshape(shape);
    }
    out[0] = at::where(condition, in[1], in[2]);
  };
  return kernel;
}

}  // namespace pose::graph
