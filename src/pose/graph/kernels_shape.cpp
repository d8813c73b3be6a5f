// Shape and indexing kernels. They work on TF's logical shapes, so NHWC axes mean what the graph says.

#include <ATen/ATen.h>

#include <algorithm>
#include <utility>

#include "pose/graph/kernels.h"

namespace pose::graph {
namespace {

at::TensorList as_list(std::span<const at::Tensor> tensors) { return {tensors.data(), tensors.size()}; }

std::vector<size_t> all_inputs(size_t count) {
  std::vector<size_t> indices(count);
  for (size_t i = 0; i < count; ++i) indices[i] = i;
  return indices;
}

// A shape-like argument (target shape, multiples, dims) that is usually constant but may be computed in the
// graph (MoveNet-MultiPose derives several from Shape). Constant ones are read once at load.
class IntArgument {
 public:
  IntArgument(const NodeInput& input, size_t runtime_index)
      : constant_(constant_ints(input)), runtime_index_(runtime_index) {}
  bool is_constant() const { return constant_.has_value(); }
  std::vector<int64_t> get(std::span<const at::Tensor> in) const {
    return constant_ ? *constant_ : tensor_to_ints(in[runtime_index_]);
  }

 private:
  std::optional<std::vector<int64_t>> constant_;
  size_t runtime_index_;  // position in the kernel's runtime inputs when not constant
};

// A kernel of the form out = f(x, int argument), with the argument read at load when it is constant.
template <class F>
Kernel with_int_argument(std::span<const NodeInput> inputs, F f) {
  const IntArgument argument(inputs[1], 1);
  Kernel kernel;
  kernel.runtime_inputs = argument.is_constant() ? std::vector<size_t>{0} : std::vector<size_t>{0, 1};
  kernel.fn = [argument, f](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = f(in[0], argument.get(in));
  };
  return kernel;
}

// ---- StridedSlice, following TF's strided_slice_op.cc (sparse spec -> dense spec -> slice) ----

struct SliceSpec {
  std::vector<int64_t> begin, end, strides;
  int64_t begin_mask = 0, end_mask = 0, ellipsis_mask = 0, new_axis_mask = 0, shrink_axis_mask = 0;
};

constexpr int64_t kNewAxis = -1;
constexpr int64_t kShrinkAxis = -2;

bool bit(int64_t mask, size_t index) { return ((mask >> index) & 1) != 0; }

struct DenseDim {
  int64_t begin = 0, end = 0, stride = 1;
  bool begin_masked = false, end_masked = false, shrink = false;
};

struct DenseSpec {
  std::vector<DenseDim> dims;
  std::vector<int64_t> final_dims;  // dense index, kNewAxis or kShrinkAxis per output dimension, in order
};

// Expands the ellipsis (an implicit one trails when none is given) and places new axes, giving one entry per
// input dimension.
DenseSpec dense_spec(const SliceSpec& s, int64_t rank) {
  SliceSpec sparse = s;
  size_t sparse_dims = sparse.begin.size();
  if (sparse.ellipsis_mask == 0) {
    sparse.ellipsis_mask = int64_t{1} << sparse_dims;
    ++sparse_dims;
  }
  int64_t new_axes_after_ellipsis = 0;
  bool seen_ellipsis = false;
  for (size_t i = 0; i < sparse.begin.size(); ++i) {
    if (bit(sparse.ellipsis_mask, i)) {
      seen_ellipsis = true;
    } else if (seen_ellipsis && bit(sparse.new_axis_mask, i)) {
      ++new_axes_after_ellipsis;
    }
  }
  DenseSpec dense;
  dense.dims.resize(static_cast<size_t>(rank));
  int64_t full = 0;
  for (size_t i = 0; i < sparse_dims; ++i) {
    if (bit(sparse.ellipsis_mask, i)) {
      const int64_t next = std::min(rank - static_cast<int64_t>(sparse_dims - i) + 1 + new_axes_after_ellipsis, rank);
      for (; full < next; ++full) {
        dense.dims[static_cast<size_t>(full)] = DenseDim{0, 0, 1, true, true, false};
        dense.final_dims.push_back(full);
      }
    } else if (bit(sparse.new_axis_mask, i)) {
      dense.final_dims.push_back(kNewAxis);
    } else {
      TORCH_CHECK(full < rank, "StridedSlice index ", i, " is out of range for rank ", rank);
      auto& dim = dense.dims[static_cast<size_t>(full)];
      dim = DenseDim{sparse.begin[i],           sparse.end[i],           sparse.strides[i],
                     bit(sparse.begin_mask, i), bit(sparse.end_mask, i), bit(sparse.shrink_axis_mask, i)};
      dense.final_dims.push_back(dim.shrink ? kShrinkAxis : full);
      ++full;
    }
  }
  return dense;
}

// TF's canonicalisation of one bound: masked bounds take the extreme for the stride's direction, negative
// indices count from the end, everything is clamped into the valid range.
int64_t canonical_bound(int64_t value, bool masked, bool is_end, int64_t stride, int64_t size) {
  const int64_t lower = stride > 0 ? 0 : -1;
  const int64_t upper = stride > 0 ? size : size - 1;
  if (masked) return (stride > 0) == is_end ? upper : lower;
  const int64_t forward = value < 0 ? size + value : value;
  return std::clamp(forward, lower, upper);
}

at::Tensor slice_dim(const at::Tensor& x, int64_t d, const DenseDim& dim) {
  const int64_t size = x.size(d);
  TORCH_CHECK(dim.stride != 0, "StridedSlice stride must be non-zero");
  if (dim.shrink) {
    const int64_t index = dim.begin < 0 ? size + dim.begin : dim.begin;
    TORCH_CHECK(index >= 0 && index < size, "StridedSlice index ", dim.begin, " is out of range for size ", size);
    return x.narrow(d, index, 1);
  }
  const int64_t begin = canonical_bound(dim.begin, dim.begin_masked, false, dim.stride, size);
  const int64_t end = canonical_bound(dim.end, dim.end_masked, true, dim.stride, size);
  if (dim.stride > 0) return x.slice(d, begin, std::max(begin, end), dim.stride);
  // LibTorch slices only forwards; a reversed slice gathers its indices instead.
  const at::Tensor indices = at::arange(begin, end, dim.stride, x.options().dtype(at::kLong));
  return x.index_select(d, indices);
}

at::Tensor strided_slice(const at::Tensor& x, const SliceSpec& spec) {
  const DenseSpec dense = dense_spec(spec, x.dim());
  at::Tensor result = x;
  for (size_t d = 0; d < dense.dims.size(); ++d) result = slice_dim(result, static_cast<int64_t>(d), dense.dims[d]);
  std::vector<int64_t> shape;
  for (const int64_t index : dense.final_dims) {
    if (index == kNewAxis) {
      shape.push_back(1);
    } else if (index != kShrinkAxis) {
      shape.push_back(result.size(index));
    }
  }
  return result.reshape(shape);
}

}  // namespace

core::Result<Kernel> build_reshape(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, shape)");
  return with_int_argument(inputs,
                           [](const at::Tensor& x, const std::vector<int64_t>& shape) { return x.reshape(shape); });
}

core::Result<Kernel> build_squeeze(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 1) return node_error("expects 1 input");
  const auto dims = node.ints_attr("squeeze_dims").value_or(node.ints_attr("axis").value_or(std::vector<int64_t>{}));
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [dims](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& x = in[0];
    std::vector<bool> drop(static_cast<size_t>(x.dim()), false);
    for (int64_t d = 0; d < x.dim(); ++d) drop[static_cast<size_t>(d)] = dims.empty() && x.size(d) == 1;
    for (const int64_t axis : dims) {
      const int64_t d = normalize_axis(axis, x.dim());
      TORCH_CHECK(x.size(d) == 1, "cannot squeeze dimension ", axis, " of size ", x.size(d));
      drop[static_cast<size_t>(d)] = true;
    }
    std::vector<int64_t> shape;
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (!drop[static_cast<size_t>(d)]) shape.push_back(x.size(d));
    }
    out[0] = x.reshape(shape);
  };
  return kernel;
}

core::Result<Kernel> build_expand_dims(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, axis)");
  return with_int_argument(inputs, [](const at::Tensor& x, const std::vector<int64_t>& axis) {
    TORCH_CHECK(axis.size() == 1, "ExpandDims needs one axis");
    return x.unsqueeze(normalize_axis(axis[0], x.dim() + 1));
  });
}

core::Result<Kernel> build_strided_slice(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 4) return node_error("expects 4 inputs (tensor, begin, end, strides)");
  SliceSpec spec;
  spec.begin_mask = node.int_attr("begin_mask").value_or(0);
  spec.end_mask = node.int_attr("end_mask").value_or(0);
  spec.ellipsis_mask = node.int_attr("ellipsis_mask").value_or(0);
  spec.new_axis_mask = node.int_attr("new_axis_mask").value_or(0);
  spec.shrink_axis_mask = node.int_attr("shrink_axis_mask").value_or(0);
  if ((spec.ellipsis_mask & (spec.ellipsis_mask - 1)) != 0) return node_error("more than one ellipsis");
  const IntArgument begin(inputs[1], 1), end(inputs[2], 2), strides(inputs[3], 3);
  Kernel kernel;
  if (begin.is_constant() && end.is_constant() && strides.is_constant()) {
    kernel.runtime_inputs = {0};
  } else {
    kernel.runtime_inputs = {0, 1, 2, 3};
  }
  kernel.fn = [spec, begin, end, strides](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    SliceSpec full = spec;
    full.begin = begin.get(in);
    full.end = end.get(in);
    full.strides = strides.get(in);
    TORCH_CHECK(full.begin.size() == full.end.size() && full.begin.size() == full.strides.size(),
                "begin, end and strides must have the same length");
    out[0] = strided_slice(in[0], full);
  };
  return kernel;
}

core::Result<Kernel> build_pack(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.empty()) return node_error("expects at least 1 input");
  const int64_t axis = node.int_attr("axis").value_or(0);
  Kernel kernel;
  kernel.runtime_inputs = all_inputs(inputs.size());
  kernel.fresh_output = true;
  kernel.fn = [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = at::stack(as_list(in), normalize_axis(axis, in[0].dim() + 1));
  };
  return kernel;
}

core::Result<Kernel> build_unpack(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 1) return node_error("expects 1 input");
  const auto num = node.int_attr("num");
  if (!num || *num < 1) return node_error("needs a positive 'num' attribute");
  const int64_t axis = node.int_attr("axis").value_or(0);
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.num_outputs = static_cast<size_t>(*num);
  kernel.fn = [axis](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const int64_t dim = normalize_axis(axis, in[0].dim());
    TORCH_CHECK(in[0].size(dim) == static_cast<int64_t>(out.size()), "Unpack of ", out.size(), " along a dimension of ",
                in[0].size(dim));
    for (size_t i = 0; i < out.size(); ++i) out[i] = in[0].select(dim, static_cast<int64_t>(i));
  };
  return kernel;
}

core::Result<Kernel> build_concat(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() < 2) return node_error("expects tensors and an axis");
  const auto axis = constant_ints(inputs.back());
  if (!axis || axis->size() != 1) {
    return core::make_error(core::ErrorCode::kUnsupported, "the axis must be a constant scalar");
  }
  Kernel kernel;
  kernel.runtime_inputs = all_inputs(inputs.size() - 1);
  kernel.fresh_output = true;
  kernel.fn = [a = (*axis)[0]](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = at::cat(as_list(in), normalize_axis(a, in[0].dim()));
  };
  return kernel;
}

core::Result<Kernel> build_split(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (axis, tensor)");
  const auto axis = constant_ints(inputs[0]);
  if (!axis || axis->size() != 1) {
    return core::make_error(core::ErrorCode::kUnsupported, "the split axis must be a constant scalar");
  }
  const auto num = node.int_attr("num_split");
  if (!num || *num < 1) return node_error("needs a positive 'num_split' attribute");
  Kernel kernel;
  kernel.runtime_inputs = {1};
  kernel.num_outputs = static_cast<size_t>(*num);
  kernel.fn = [a = (*axis)[0], n = *num](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const int64_t dim = normalize_axis(a, in[0].dim());
    TORCH_CHECK(in[0].size(dim) % n == 0, "cannot split size ", in[0].size(dim), " into ", n, " equal parts");
    const auto parts = in[0].split(in[0].size(dim) / n, dim);
    for (size_t i = 0; i < out.size(); ++i) out[i] = parts[i];
  };
  return kernel;
}

core::Result<Kernel> build_tile(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (tensor, multiples)");
  return with_int_argument(inputs, [](const at::Tensor& x, const std::vector<int64_t>& multiples) {
    TORCH_CHECK(static_cast<int64_t>(multiples.size()) == x.dim(), "Tile needs one multiple per dimension");
    return x.repeat(multiples);
  });
}

core::Result<Kernel> build_gather_nd(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (params, indices)");
  Kernel kernel;
  kernel.runtime_inputs = {0, 1};
  kernel.fresh_output = true;
  // out[i...] = params[indices[i..., 0], ..., indices[i..., k-1], ...]: one linear index into the first k
  // dimensions of params, then a row gather.
  kernel.fn = [](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& params = in[0];
    const at::Tensor indices = in[1].to(at::kLong);
    TORCH_CHECK(indices.dim() >= 1, "GatherNd indices need rank >= 1");
    const int64_t k = indices.size(-1);
    TORCH_CHECK(k >= 1 && k <= params.dim(), "GatherNd index depth ", k, " does not fit params of rank ", params.dim());
    std::vector<int64_t> strides(static_cast<size_t>(k));
    int64_t rows = 1;
    for (int64_t d = k - 1; d >= 0; --d) {
      strides[static_cast<size_t>(d)] = rows;
      rows *= params.size(d);
    }
    const at::Tensor linear = (indices * at::tensor(strides, indices.options())).sum(-1).reshape({-1});
    std::vector<int64_t> row_shape{rows};
    std::vector<int64_t> out_shape(indices.sizes().begin(), indices.sizes().end() - 1);
    for (int64_t d = k; d < params.dim(); ++d) {
      row_shape.push_back(params.size(d));
      out_shape.push_back(params.size(d));
    }
    out[0] = params.reshape(row_shape).index_select(0, linear).reshape(out_shape);
  };
  return kernel;
}

core::Result<Kernel> build_shape_of(const NodeDef& node, std::span<const NodeInput> inputs,
                                    const KernelContext& context) {
  if (inputs.size() != 1) return node_error("expects 1 input");
  const auto options = context.float_options.dtype(node.type_attr("out_type").value_or(at::kInt));
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [options](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = at::tensor(in[0].sizes(), at::TensorOptions().dtype(at::kLong)).to(options);
  };
  return kernel;
}

core::Result<Kernel> build_size_of(const NodeDef& node, std::span<const NodeInput> inputs,
                                   const KernelContext& context) {
  if (inputs.size() != 1) return node_error("expects 1 input");
  const auto options = context.float_options.dtype(node.type_attr("out_type").value_or(at::kInt));
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [options](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = at::scalar_tensor(in[0].numel(), options);
  };
  return kernel;
}

core::Result<Kernel> build_fill(const NodeDef&, std::span<const NodeInput> inputs, const KernelContext&) {
  if (inputs.size() != 2) return node_error("expects 2 inputs (dims, value)");
  const IntArgument dims(inputs[0], 0);
  Kernel kernel;
  kernel.runtime_inputs = dims.is_constant() ? std::vector<size_t>{1} : std::vector<size_t>{0, 1};
  kernel.fresh_output = true;
  kernel.fn = [dims](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    const at::Tensor& value = in.back();
    TORCH_CHECK(value.numel() == 1, "Fill needs a scalar value");
    out[0] = value.reshape({}).expand(dims.get(in)).contiguous();
  };
  return kernel;
}

core::Result<Kernel> build_range(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext& context) {
  if (inputs.size() != 3) return node_error("expects 3 inputs (start, limit, delta)");
  const auto options = context.float_options.dtype(compute_type(node.type_attr("Tidx").value_or(at::kInt), context));
  Kernel kernel;
  kernel.runtime_inputs = {0, 1, 2};
  kernel.fresh_output = true;
  kernel.fn = [options](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    if (at::isFloatingType(c10::typeMetaToScalarType(options.dtype()))) {
      out[0] = at::arange(in[0].item<double>(), in[1].item<double>(), in[2].item<double>(), options);
    } else {
      out[0] = at::arange(in[0].item<int64_t>(), in[1].item<int64_t>(), in[2].item<int64_t>(), options);
    }
  };
  return kernel;
}

core::Result<Kernel> build_cast(const NodeDef& node, std::span<const NodeInput> inputs, const KernelContext& context) {
  if (inputs.size() != 1) return node_error("expects 1 input");
  const auto destination = node.type_attr("DstT");
  if (!destination || *destination == at::ScalarType::Undefined) {
    return core::make_error(core::ErrorCode::kUnsupported, "Cast to an unsupported or missing DstT");
  }
  Kernel kernel;
  kernel.runtime_inputs = {0};
  kernel.fn = [type = compute_type(*destination, context)](std::span<const at::Tensor> in, std::span<at::Tensor> out) {
    out[0] = in[0].to(type);
  };
  return kernel;
}

}  // namespace pose::graph
