// Spatial kernels: convolutions, max pooling, bilinear resize, padding, depth-to-space. Images stay NHWC values;
// these kernels alone view them as NCHW (see kernels.h for why that is free).

#include <ATen/ATen.h>

#include <array>
#include <limits>
#include <utility>

#include "pose/graph/kernels.h"

namespace pose::graph {
namespace {

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

at::Tensor nhwc_to_nchw(const at::Tensor& x) { return x.permute({0, 3, 1, 2}); }
at::Tensor nchw_to_nhwc(const at::Tensor& x) { return x.permute({0, 2, 3, 1}); }

enum class PaddingMode { kSame, kValid, kExplicit };

// Zeros (or -inf for pooling) around the image: top, bottom, left, right.
using Pads = std::array<int64_t, 4>;

struct WindowParams {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> dilation{1, 1};
  PaddingMode mode = PaddingMode::kValid;
  Pads explicit_pads{};  // PaddingMode::kExplicit
  Pads pre_pads{};       // a Pad op the planner folded into this node (kPrePadAttr)
};

// TF attributes such as strides are NHWC 4-vectors; only the H and W entries may differ from 1.
core::Result<std::array<int64_t, 2>> spatial_pair(const NodeDef& node, std::string_view key) {
  const auto values = node.ints_attr(key);
  if (!values) return std::array<int64_t, 2>{1, 1};
  if (values->size() != 4 || (*values)[0] != 1 || (*values)[3] != 1) {
    return node_error("attribute '" + std::string(key) + "' must be [1, h, w, 1] (NHWC)");
  }
  return std::array<int64_t, 2>{(*values)[1], (*values)[2]};
}

core::Status check_nhwc(const NodeDef& node) {
  if (const auto format = node.string_attr("data_format"); format && *format != "NHWC") {
    return core::make_error(core::ErrorCode::kUnsupported,
                            "data_format '" + *format + "' is not supported (NHWC only)");
  }
  return {};
}

core::Result<WindowParams> parse_window(const NodeDef& node) {
  if (auto status = check_nhwc(node); !status) return status.error();
  WindowParams params;
  auto stride = spatial_pair(node, "strides");
  if (!stride) return stride.error();
  params.stride = *stride;
  auto dilation = spatial_pair(node, "dilations");
  if (!dilation) return dilation.error();
  params.dilation = *dilation;
  const auto padding = node.string_attr("padding");
  if (padding == "SAME") {
    params.mode = PaddingMode::kSame;
  } else if (padding == "VALID") {
    params.mode = PaddingMode::kValid;
  } else if (padding == "EXPLICIT") {
    const auto pads = node.ints_attr("explicit_paddings");
    if (!pads || pads->size() != 8) return node_error("EXPLICIT padding needs 8 explicit_paddings (NHWC pairs)");
    params.mode = PaddingMode::kExplicit;
    params.explicit_pads = {(*pads)[2], (*pads)[3], (*pads)[4], (*pads)[5]};
  } else {
    return node_error("attribute 'padding' must be SAME, VALID or EXPLICIT");
  }
  if (const auto pre = node.ints_attr(kPrePadAttr); pre && pre->size() == 4) {
    params.pre_pads = {(*pre)[0], (*pre)[1], (*pre)[2], (*pre)[3]};
  }
  return params;
}

// TF's SAME: the output has ceil(in / stride) positions and the padding this needs is split with the odd row or
// column at the end (bottom/right), unlike LibTorch's symmetric padding argument.
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t effective_kernel = (kernel - 1) * dilation + 1;
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + effective_kernel - in, 0);
  return {total / 2, total - total / 2};
}

// The padding a window op needs for an NCHW input of spatial size h x w; SAME depends on the input size, so this
// runs per call (MoveNet-MultiPose takes any size).
Pads window_pads(const WindowParams& params, int64_t h, int64_t w, int64_t kernel_h, int64_t kernel_w) {
  Pads pads = params.pre_pads;
  if (params.mode == PaddingMode::kSame) {
    const auto [top, bottom] = same_padding(h + pads[0] + pads[1], kernel_h, params.stride[0], params.dilation[0]);
    const auto [left, right] = same_padding(w + pads[2] + pads[3], kernel_w, params.stride[1], params.dilation[1]);
    pads = {pads[0] + top, pads[1] + bottom, pads[2] + left, pads[3] + right};
  } else if (params.mode == PaddingMode::kExplicit) {
    for (size_t i = 0; i < pads.size(); ++i) pads[i] += params.explicit_pads[i];
  }
  return pads;
}

struct PaddedInput {
  at::Tensor tensor;
  std::array<int64_t, 2> symmetric;  // what is left for the op's own (symmetric) padding argument
};

// Hands the symmetric part of `pads` to the op and pads only the remainder explicitly, so the common symmetric
// case costs no copy. `max_symmetric` bounds what the op accepts (max_pool2d: half the window).
PaddedInput pad_for_window(const at::Tensor& x, const Pads& pads, double value, std::array<int64_t, 2> max_symmetric) {
  const int64_t sym_h = std::min({pads[0], pads[1], max_symmetric[0]});
  const int64_t sym_w = std::min({pads[2], pads[3], max_symmetric[1]});
  const std::array<int64_t, 4> extra{pads[2] - sym_w, pads[3] - sym_w, pads[0] - sym_h, pads[1] - sym_h};
  if (extra == std::array<int64_t, 4>{}) return {x, {sym_h, sym_w}};
  return {at::constant_pad_nd(x, extra, value), {sym_h, sym_w}};
}

constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max();

// fused_ops of _FusedConv2D / FusedDepthwiseConv2dNative: BiasAdd, optionally followed by Relu or Relu6.
core::Result<Activation> parse_fused_ops(const NodeDef& node, bool* has_bias) {
  const auto fused = node.strings_attr("fused_ops").value_or(std::vector<std::string>{});
  *has_bias = false;
  if (fused.empty()) return Activation::kNone;
  std::string listed;
  for (const auto& op : fused) listed += (listed.empty() ? "" : "+") + op;
  const auto unsupported = core::make_error(core::ErrorCode::kUnsupported,
                                            "fused_ops [" + listed + "] are not supported (BiasAdd[+Relu|Relu6] are)");
  if (fused[0] != "BiasAdd" || fused.size() > 2) return unsupported;
  *has_bias = true;
  if (fused.size() == 1) return Activation::kNone;
  if (const auto activation = activation_of_op(fused[1])) return *activation;
  return unsupported;
}

struct ConvWeights {
  at::Tensor weight;  // OIHW, channels_last memory (what oneDNN and cuDNN read NHWC activations with)
  at::Tensor bias;    // undefined without BiasAdd
};

core::Result<ConvWeights> conv_weights(std::span<const NodeInput> inputs, bool depthwise, bool has_bias) {
  const size_t expected_inputs = has_bias ? 3 : 2;
  if (inputs.size() != expected_inputs) {
    return node_error("expects " + std::to_string(expected_inputs) + " inputs, has " + std::to_string(inputs.size()));
  }
  if (inputs[1].constant == nullptr) {
    return core::make_error(core::ErrorCode::kUnsupported, "the filter must be a constant");
  }
  const at::Tensor& filter = *inputs[1].constant;  // TF: [kh, kw, in, out] or depthwise [kh, kw, in, multiplier]
  if (filter.dim() != 4) return node_error("the filter must have rank 4");
  ConvWeights weights;
  if (depthwise) {
    // Output channel c * multiplier + m of TF's depthwise conv is LibTorch's grouped conv with groups = in.
    const auto sizes = filter.sizes();
    weights.weight = filter.reshape({sizes[0], sizes[1], sizes[2] * sizes[3], 1}).permute({2, 3, 0, 1});
  } else {
    weights.weight = filter.permute({3, 2, 0, 1});
  }
  weights.weight = weights.weight.contiguous(at::MemoryFormat::ChannelsLast);
  if (has_bias) {
    if (inputs[2].constant == nullptr)
      return core::make_error(core::ErrorCode::kUnsupported, "the bias must be a constant");
    weights.bias = inputs[2].constant->reshape({-1}).contiguous();
    if (weights.bias.size(0) != weights.weight.size(0)) return node_error("bias size does not match the filter");
  }
  return weights;
}

// LibTorch 1.13 sends small batch-1 convolutions to its reference kernel, which copies channels_last input to
// NCHW and back; oneDNN handles them directly in NHWC, so CPU float convolutions go there when it is built in.
at::Tensor run_conv2d(const at::Tensor& x, const ConvWeights& w, at::IntArrayRef stride, at::IntArrayRef padding,
                      at::IntArrayRef dilation, int64_t groups) {
  if (x.is_cpu() && x.scalar_type() == at::kFloat && at::hasMKLDNN()) {
    return at::mkldnn_convolution(x, w.weight, w.bias, padding, stride, dilation, groups);
  }
  return at::conv2d(x, w.weight, w.bias, stride, padding, dilation, groups);
}

// A pointwise (1x1, stride 1, unpadded) convolution of an NHWC tensor is one matrix product, [N*H*W, in] x
// [in, out]. On the CPU a single BLAS call beats oneDNN's per-call set-up (~20 us) up to about 16x16 pixels, which
// covers the late stages of every pose backbone; larger images stay with oneDNN, whose kernels are faster there.
constexpr int64_t kMaxGemmPixels = 256;

bool is_pointwise(const WindowParams& p, const ConvWeights& w, bool depthwise) {
  const bool unpadded = p.pre_pads == Pads{} && (p.mode != PaddingMode::kExplicit || p.explicit_pads == Pads{});
  return !depthwise && unpadded && w.weight.size(2) == 1 && w.weight.size(3) == 1 &&
         p.stride == std::array<int64_t, 2>{1, 1};
}

at::Tensor pointwise_as_gemm(const at::Tensor& x_nhwc, const ConvWeights& w) {
  const int64_t out_channels = w.weight.size(0);
  // The channels_last OIHW filter of a 1x1 convolution is a contiguous [out, in] matrix; its transpose is a view.
  const at::Tensor matrix = w.weight.view({out_channels, -1}).t();
  const at::Tensor rows = x_nhwc.reshape({-1, x_nhwc.size(3)});
  const at::Tensor y = w.bias.defined() ? at::addmm(w.bias, rows, matrix) : at::mm(rows, matrix);
  return y.view({x_nhwc.size(0), x_nhwc.size(1), x_nhwc.size(2), out_channels});
}

core::Result<Kernel> build_convolution(const NodeDef& node, std::span<const NodeInput> inputs, bool depthwise) {
  auto params = parse_window(node);
  if (!params) return params.error();
  bool has_bias = false;
  auto activation = parse_fused_ops(node, &has_bias);
  if (!activation) return activation.error();
  auto weights = conv_weights(inputs, depthwise, has_bias);
  if (!weights) return weights.error();
  const bool pointwise = is_pointwise(*params, *weights, depthwise);

  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fresh_output = true;
  kernel.fn = [w = std::move(*weights), p = *params, act = *activation, depthwise, pointwise](
                  std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x_nhwc = in[0];
    if (pointwise && x_nhwc.is_cpu() && x_nhwc.size(1) * x_nhwc.size(2) <= kMaxGemmPixels &&
        x_nhwc.size(3) == w.weight.size(1)) {
      at::Tensor y = pointwise_as_gemm(x_nhwc, w);
      apply_activation_(y, act);
      out[0] = std::move(y);
      return;
    }
    const at::Tensor x = nhwc_to_nchw(x_nhwc);
    const int64_t in_per_group = depthwise ? 1 : w.weight.size(1);
    TORCH_CHECK(x.size(1) % in_per_group == 0, "input has ", x.size(1), " channels, the filter expects ", in_per_group,
                " per group");
    const int64_t groups = x.size(1) / in_per_group;
    TORCH_CHECK(w.weight.size(0) % groups == 0, "filter outputs do not divide into ", groups, " groups");
    const Pads pads = window_pads(p, x.size(2), x.size(3), w.weight.size(2), w.weight.size(3));
    const auto padded = pad_for_window(x, pads, 0.0, {kUnbounded, kUnbounded});
    at::Tensor y = run_conv2d(padded.tensor, w, p.stride, padded.symmetric, p.dilation, groups);
    apply_activation_(y, act);
    out[0] = nchw_to_nhwc(y);
  };
  return kernel;
}

}  // namespace

core::Result<Kernel> build_conv2d(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  return build_convolution(node, inputs, /*depthwise=*/false);
}

core::Result<Kernel> build_depthwise_conv2d(const NodeDef& node, std::span<const NodeInput> inputs,
                                            const KernelContext&) {
  return build_convolution(node, inputs, /*depthwise=*/true);
}

core::Result<Kernel> build_max_pool(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  auto params = parse_window(node);
  if (!params) return params.error();
  auto window = spatial_pair(node, "ksize");
  if (!window) return window.error();
  if (inputs.size() != 1) return node_error("expects 1 input");

  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fresh_output = true;
  kernel.fn = [p = *params, k = *window](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor x = nhwc_to_nchw(in[0]);
    const Pads pads = window_pads(p, x.size(2), x.size(3), k[0], k[1]);
    // TF's SAME pooling ignores the padded cells; -inf padding does the same for a max.
    const auto padded = pad_for_window(x, pads, kNegativeInfinity, {k[0] / 2, k[1] / 2});
    out[0] = nchw_to_nhwc(at::max_pool2d(padded.tensor, k, p.stride, padded.symmetric, p.dilation, false));
  };
  return kernel;
}

core::Result<Kernel> build_resize_bilinear(const NodeDef& node, std::span<const NodeInput> inputs,
                                           const KernelContext& context) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (images, size)");
  const bool align_corners = node.bool_attr("align_corners").value_or(false);
  const bool half_pixel = node.bool_attr("half_pixel_centers").value_or(false);
  // LibTorch's align_corners=false is TF's half_pixel_centers (source index clamped at 0 the same way);
  // align_corners=true maps corners in both. TF's legacy mode (neither) has no LibTorch equivalent.
  if (align_corners == half_pixel) {
    return core::make_error(core::ErrorCode::kUnsupported,
                            "ResizeBilinear needs exactly one of align_corners and half_pixel_centers");
  }
  const at::ScalarType float_type = compute_type(at::kFloat, context);
  Kernel kernel;
  kernel.fresh_output = true;
  const auto constant_size = constant_ints(inputs[1]);
  if (constant_size && constant_size->size() != 2) return node_error("size must hold 2 values");
  kernel.runtime_inputs = constant_size ? std::vector<size_t>{0} : std::vector<size_t>{0, 1};
  kernel.fn = [constant_size, align_corners, float_type](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const std::vector<int64_t> size = constant_size ? *constant_size : tensor_to_ints(in[1]);
    TORCH_CHECK(size.size() == 2, "size must hold 2 values");
    at::Tensor x = nhwc_to_nchw(in[0]);
    if (!at::isFloatingType(x.scalar_type())) x = x.to(float_type);  // TF resizes integers into floats
    out[0] = nchw_to_nhwc(at::upsample_bilinear2d(x, size, align_corners, c10::nullopt, c10::nullopt));
  };
  return kernel;
}

core::Result<Kernel> build_pad(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, paddings)");
  const auto paddings = constant_ints(inputs[1]);
  if (!paddings || paddings->size() % 2 != 0) {
    return core::make_error(core::ErrorCode::kUnsupported, "paddings must be a constant [rank, 2] tensor");
  }
  // constant_pad_nd lists (before, after) pairs from the last dimension backwards.
  std::vector<int64_t> torch_pads;
  for (size_t dim = paddings->size() / 2; dim-- > 0;) {
    torch_pads.push_back((*paddings)[2 * dim]);
    torch_pads.push_back((*paddings)[2 * dim + 1]);
  }
  const auto rank = static_cast<int64_t>(paddings->size() / 2);
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [torch_pads, rank](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    TORCH_CHECK(in[0].dim() == rank, "paddings are for rank ", rank, ", the input has rank ", in[0].dim());
    out[0] = at::constant_pad_nd(in[0], torch_pads, 0);
  };
  return kernel;
}

core::Result<Kernel> build_depth_to_space(const NodeDef& node, std::span<const NodeInput> inputs,
                                          const KernelContext&) {
  if (auto status = check_nhwc(node); !status) return status.error();
  const auto block = node.int_attr("block_size");
  if (!block || *block < 1) return node_error("needs a positive block_size");
  if (inputs.size() != 1) return node_error("expects 1 input");
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [b = *block](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    TORCH_CHECK(x.dim() == 4 && x.size(3) % (b * b) == 0, "DepthToSpace needs NHWC input with C divisible by ", b * b);
    const int64_t n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3) / (b * b);
    // TF (DCR order): out[n, h*b + i, w*b + j, k] = in[n, h, w, (i*b + j)*c + k].
    out[0] = x.reshape({n, h, w, b, b, c}).permute({0, 1, 3, 2, 4, 5}).reshape({n, h * b, w * b, c});
  };
  return kernel;
}

}  // namespace pose::graph
