#include "pose/graph/kernels.h"

#include <ATen/ATen.h>

#include <array>

namespace pose::graph {
namespace {

struct KernelEntry {
  std::string_view op;
  KernelBuilder builder;
};

// Every op the executor implements. Const, Placeholder and Identity never become kernels: the planner turns them
// into constants, inputs and aliases.
constexpr std::array kKernels{
    KernelEntry{"Conv2D", build_conv2d},
    KernelEntry{"_FusedConv2D", build_conv2d},
    KernelEntry{"DepthwiseConv2dNative", build_depthwise_conv2d},
    KernelEntry{"FusedDepthwiseConv2dNative", build_depthwise_conv2d},
    KernelEntry{"MaxPool", build_max_pool},
    KernelEntry{"ResizeBilinear", build_resize_bilinear},
    KernelEntry{"Pad", build_pad},
    KernelEntry{"DepthToSpace", build_depth_to_space},
    KernelEntry{"Reshape", build_reshape},
    KernelEntry{"Squeeze", build_squeeze},
    KernelEntry{"ExpandDims", build_expand_dims},
    KernelEntry{"StridedSlice", build_strided_slice},
    KernelEntry{"Pack", build_pack},
    KernelEntry{"Unpack", build_unpack},
    KernelEntry{"ConcatV2", build_concat},
    KernelEntry{"Split", build_split},
    KernelEntry{"Tile", build_tile},
    KernelEntry{"GatherNd", build_gather_nd},
    KernelEntry{"Shape", build_shape_of},
    KernelEntry{"Size", build_size_of},
    KernelEntry{"Fill", build_fill},
    KernelEntry{"Range", build_range},
    KernelEntry{"Cast", build_cast},
    KernelEntry{"Abs", build_unary},
    KernelEntry{"Exp", build_unary},
    KernelEntry{"Sqrt", build_unary},
    KernelEntry{"Sigmoid", build_unary},
    KernelEntry{"Reciprocal", build_unary},
    KernelEntry{"Relu", build_unary},
    KernelEntry{"Relu6", build_unary},
    KernelEntry{"AddV2", build_binary},
    KernelEntry{"Add", build_binary},
    KernelEntry{"Sub", build_binary},
    KernelEntry{"Mul", build_binary},
    KernelEntry{"RealDiv", build_binary},
    KernelEntry{"FloorDiv", build_binary},
    KernelEntry{"Maximum", build_binary},
    KernelEntry{"Minimum", build_binary},
    KernelEntry{"SquaredDifference", build_binary},
    KernelEntry{"Greater", build_binary},
    KernelEntry{"GreaterEqual", build_binary},
    KernelEntry{"Less", build_binary},
    KernelEntry{"Equal", build_binary},
    KernelEntry{"LogicalAnd", build_binary},
    KernelEntry{"AddN", build_add_n},
    KernelEntry{"Sum", build_reduce},
    KernelEntry{"Max", build_reduce},
    KernelEntry{"ArgMax", build_arg_max},
    KernelEntry{"TopKV2", build_top_k},
    KernelEntry{"Select", build_select},
    KernelEntry{"SelectV2", build_select},
};

std::vector<int64_t> to_int64_vector(const at::Tensor& tensor) {
  const at::Tensor host = tensor.to(at::kCPU).to(at::kLong).contiguous();
  const int64_t* data = host.data_ptr<int64_t>();
  return {data, data + host.numel()};
}

}  // namespace

KernelBuilder find_kernel_builder(std::string_view op) {
  for (const auto& entry : kKernels) {
    if (entry.op == op) return entry.builder;
  }
  return nullptr;
}

void apply_activation_(at::Tensor& tensor, Activation activation) {
  switch (activation) {
    case Activation::kNone: break;
    case Activation::kRelu: tensor.relu_(); break;
    case Activation::kRelu6: tensor.clamp_(0, 6); break;
  }
}

std::optional<Activation> activation_of_op(std::string_view op) {
  if (op == "Relu") return Activation::kRelu;
  if (op == "Relu6") return Activation::kRelu6;
  return std::nullopt;
}

core::Error node_error(std::string message) {
  return core::make_error(core::ErrorCode::kInvalidArgument, std::move(message));
}

std::optional<std::vector<int64_t>> constant_ints(const NodeInput& input) {
  if (input.constant == nullptr) return std::nullopt;
  if (at::isFloatingType(input.constant->scalar_type())) return std::nullopt;
  return to_int64_vector(*input.constant);
}

std::vector<int64_t> tensor_to_ints(const at::Tensor& tensor) {
  TORCH_CHECK(!at::isFloatingType(tensor.scalar_type()), "expected an integer tensor, got ", tensor.scalar_type());
  return to_int64_vector(tensor);
}

int64_t normalize_axis(int64_t axis, int64_t rank) {
  const int64_t normalized = axis < 0 ? axis + rank : axis;
  TORCH_CHECK(normalized >= 0 && normalized < rank, "axis ", axis, " is out of range for rank ", rank);
  return normalized;
}

at::ScalarType compute_type(at::ScalarType tf_type, const KernelContext& context) {
  return tf_type == at::kFloat ? c10::typeMetaToScalarType(context.float_options.dtype()) : tf_type;
}

}  // namespace pose::graph
