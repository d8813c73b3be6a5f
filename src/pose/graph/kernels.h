#pragma once
// Op kernels: one builder per TF op turns a node (its attributes and whichever inputs are constant) into a
// closure that runs on LibTorch tensors. Builders do their per-node work once, at load: parse attributes, convert
// filters to LibTorch's layout, read constant axes and shapes. Private to pose::graph.
//
// Layout: every value keeps TF's logical shape and axis meaning (NHWC for images). Spatial kernels view NHWC as
// NCHW with permute(), which costs nothing: a contiguous NHWC tensor is exactly a channels_last NCHW tensor, and
// LibTorch's convolution, pooling and resize keep channels_last, so their outputs permute back to contiguous NHWC.
// No other op needs to know about layouts.
//
// Files: kernels.cpp (registry and shared helpers), kernels_spatial.cpp (convolution, pooling, resize, padding),
// kernels_shape.cpp (shape and indexing ops), kernels_math.cpp (element-wise ops and reductions).
//
// Thread-safety: a built Kernel is immutable; its closure may run concurrently on different inputs.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "pose/graph/model_json.h"

namespace pose::graph {

// What the builder knows about one node input.
struct NodeInput {
  std::string_view name;                 // "node" or "node:k"
  const at::Tensor* constant = nullptr;  // the value when it is known at load (weights, folded subgraphs)
};

struct KernelContext {
  at::TensorOptions float_options;  // device and compute dtype of TF floats (float32, or float16 on CUDA)
};

// Runs one node: `inputs` holds the node inputs listed in Kernel::runtime_inputs, in that order; the kernel
// assigns each of `outputs` (sized Kernel::num_outputs). Failures throw c10::Error (TORCH_CHECK); the executor
// catches them and names the node.
using KernelFn = std::function<void(std::span<const at::Tensor> inputs, std::span<at::Tensor> outputs)>;

struct Kernel {
  KernelFn fn;
  std::vector<size_t> runtime_inputs;  // indices of the node inputs fn receives; the rest were consumed at build
  size_t num_outputs = 1;
  // Output 0 is always a tensor no other value shares storage with, so an epilogue may modify it in place.
  bool fresh_output = false;
};

// Node attributes and constant inputs are checked by the builder; errors say what is wrong with the node, and
// the planner adds the file and node name.
using BuildKernel = core::Result<Kernel>(const NodeDef& node, std::span<const NodeInput> inputs,
                                         const KernelContext& context);
using KernelBuilder = BuildKernel*;

// nullptr for an op this executor does not implement.
KernelBuilder find_kernel_builder(std::string_view op);

// Activations that convolutions fuse (TF's fused_ops) and that the planner folds into a preceding op.
enum class Activation { kNone, kRelu, kRelu6 };
void apply_activation_(at::Tensor& tensor, Activation activation);
std::optional<Activation> activation_of_op(std::string_view op);  // for the standalone Relu / Relu6 ops

// The node attribute the planner sets when it folds a spatial-only Pad into a convolution that reads it:
// {top, bottom, left, right} zeros added before the convolution's own padding.
inline constexpr std::string_view kPrePadAttr = "_pre_pad";

// ---- helpers shared by the kernel files ----

// A builder's failure, worded as "what is wrong with this node".
core::Error node_error(std::string message);
// Reads a constant integer tensor (any rank) as int64 values; nullopt when the input is not constant.
std::optional<std::vector<int64_t>> constant_ints(const NodeInput& input);
// Host copy of a runtime integer tensor (shape arguments computed inside the graph).
std::vector<int64_t> tensor_to_ints(const at::Tensor& tensor);
// TF axis (negative counts from the end) to a LibTorch dim; `rank` includes any axis being inserted.
int64_t normalize_axis(int64_t axis, int64_t rank);
// The LibTorch dtype a TF dtype attribute computes in (TF floats use the compute dtype).
at::ScalarType compute_type(at::ScalarType tf_type, const KernelContext& context);

// The builders, one per op family, declared by their signature; find_kernel_builder() maps op names onto them.
// kernels_spatial.cpp
BuildKernel build_conv2d, build_depthwise_conv2d, build_max_pool, build_resize_bilinear, build_pad,
    build_depth_to_space;
// kernels_shape.cpp
BuildKernel build_reshape, build_squeeze, build_expand_dims, build_strided_slice, build_pack, build_unpack,
    build_concat, build_split, build_tile, build_gather_nd, build_shape_of, build_size_of, build_fill, build_range,
    build_cast;
// kernels_math.cpp
BuildKernel build_unary, build_binary, build_add_n, build_reduce, build_arg_max, build_top_k, build_select;

}  // namespace pose::graph
