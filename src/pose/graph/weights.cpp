#include "pose/graph/weights.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace pose::graph {
namespace {

// How the bytes of one manifest entry are stored in the shard.
enum class Storage { kFloat32, kInt32, kBool, kFloat16, kUint8, kUint16, kUnknown };

Storage storage_of(const WeightSpec& spec) {
  const std::string& dtype = spec.quantization ? spec.quantization->dtype : spec.dtype;
  if (dtype == "float32") return Storage::kFloat32;
  if (dtype == "int32") return Storage::kInt32;
  if (dtype == "bool") return Storage::kBool;
  if (dtype == "float16") return Storage::kFloat16;
  if (dtype == "uint8") return Storage::kUint8;
  if (dtype == "uint16") return Storage::kUint16;
  return Storage::kUnknown;
}

size_t bytes_per_element(Storage storage) {
  switch (storage) {
    case Storage::kFloat32:
    case Storage::kInt32: return 4;
    case Storage::kFloat16:
    case Storage::kUint16: return 2;
    case Storage::kBool:
    case Storage::kUint8: return 1;
    case Storage::kUnknown: break;
  }
  return 0;
}

int64_t element_count(const WeightSpec& spec) {
  int64_t count = 1;
  for (const int64_t dim : spec.shape) count *= dim;
  return count;
}

std::string weight_error_prefix(const ModelDef& model, const WeightSpec& spec) {
  return model.path.string() + ": weight '" + spec.name + "'";
}

core::Result<std::vector<uint8_t>> read_group(const ModelDef& model, const WeightGroup& group) {
  std::vector<uint8_t> bytes;
  for (const auto& relative : group.paths) {
    const auto path = model.path.parent_path() / relative;
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      return core::make_error(core::ErrorCode::kNotFound, model.path.string() + ": weight shard " + path.string() +
                                                              " is missing (re-install the model with scripts/setup)");
    }
    bytes.insert(bytes.end(), std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  return bytes;
}

// A tensor of `type` filled with the raw bytes; copied rather than wrapped so every tensor owns aligned memory.
at::Tensor tensor_from_bytes(const uint8_t* data, int64_t count, at::ScalarType type) {
  at::Tensor tensor = at::empty({count}, at::TensorOptions().dtype(type));
  std::memcpy(tensor.data_ptr(), data, static_cast<size_t>(count * static_cast<int64_t>(tensor.element_size())));
  return tensor;
}

// uint8/uint16 affine quantisation, as TFJS decodes it: q * scale + min in double, rounded once to the target.
template <class Quantized>
at::Tensor dequantize_affine(const uint8_t* data, int64_t count, const Quantization& q, at::ScalarType target) {
  std::vector<Quantized> quantized(static_cast<size_t>(count));
  std::memcpy(quantized.data(), data, quantized.size() * sizeof(Quantized));
  at::Tensor tensor = at::empty({count}, at::TensorOptions().dtype(target));
  for (size_t i = 0; i < quantized.size(); ++i) {
    const double value = static_cast<double>(quantized[i]) * q.scale + q.min;
    if (target == at::kInt) {
      tensor.data_ptr<int32_t>()[i] = static_cast<int32_t>(std::lround(value));
    } else {
      tensor.data_ptr<float>()[i] = static_cast<float>(value);
    }
  }
  return tensor;
}

core::Result<at::Tensor> decode_weight(const ModelDef& model, const WeightSpec& spec, const uint8_t* data) {
  const int64_t count = element_count(spec);
  const at::ScalarType target = scalar_type_from_tfjs(spec.dtype);
  const Storage storage = storage_of(spec);
  const bool float_target = target == at::kFloat;
  at::Tensor flat;
  switch (storage) {
    case Storage::kFloat32:
    case Storage::kInt32:
    case Storage::kBool:
      if (spec.quantization || target == at::ScalarType::Undefined) break;
      flat = tensor_from_bytes(data, count, target);
      break;
    case Storage::kFloat16:
      if (!float_target) break;
      flat = tensor_from_bytes(data, count, at::kHalf).to(at::kFloat);
      break;
    case Storage::kUint8:
      if (!float_target && target != at::kInt) break;
      flat = dequantize_affine<uint8_t>(data, count, *spec.quantization, target);
      break;
    case Storage::kUint16:
      if (!float_target && target != at::kInt) break;
      flat = dequantize_affine<uint16_t>(data, count, *spec.quantization, target);
      break;
    case Storage::kUnknown: break;
  }
  if (!flat.defined()) {
    return core::make_error(core::ErrorCode::kUnsupported,
                            weight_error_prefix(model, spec) + " has dtype '" + spec.dtype + "'" +
                                (spec.quantization ? " stored as '" + spec.quantization->dtype + "'" : "") +
                                ", which the loader cannot decode");
  }
  return flat.reshape(spec.shape);
}

core::Status check_specs(const ModelDef& model, const WeightGroup& group, size_t* expected_bytes) {
  *expected_bytes = 0;
  for (const auto& spec : group.weights) {
    const size_t width = bytes_per_element(storage_of(spec));
    if (width == 0) {
      return core::make_error(core::ErrorCode::kUnsupported,
                              weight_error_prefix(model, spec) + " has an unsupported storage dtype");
    }
    for (const int64_t dim : spec.shape) {
      if (dim < 0) {
        return core::make_error(core::ErrorCode::kInvalidArgument,
                                weight_error_prefix(model, spec) + " has a negative dimension in the manifest");
      }
    }
    *expected_bytes += static_cast<size_t>(element_count(spec)) * width;
  }
  return {};
}

std::string join_paths(const WeightGroup& group) {
  std::string joined;
  for (const auto& path : group.paths) joined += (joined.empty() ? "" : ", ") + path;
  return joined;
}

}  // namespace

core::Result<WeightMap> load_weights(const ModelDef& model) {
  WeightMap weights;
  try {
    for (const auto& group : model.weight_groups) {
      size_t expected = 0;
      if (auto status = check_specs(model, group, &expected); !status) return status.error();
      auto bytes = read_group(model, group);
      if (!bytes) return bytes.error();
      if (bytes->size() != expected) {
        return core::make_error(core::ErrorCode::kCorrupt,
                                model.path.string() + ": weight shard(s) " + join_paths(group) + " hold " +
                                    std::to_string(bytes->size()) + " bytes but the manifest expects " +
                                    std::to_string(expected) +
                                    " (truncated or mismatched file; re-install the model with scripts/setup)");
      }
      size_t offset = 0;
      for (const auto& spec : group.weights) {
        auto tensor = decode_weight(model, spec, bytes->data() + offset);
        if (!tensor) return tensor.error();
        weights.insert_or_assign(spec.name, std::move(*tensor));
        offset += static_cast<size_t>(element_count(spec)) * bytes_per_element(storage_of(spec));
      }
    }
  } catch (const c10::Error& error) {
    return core::make_error(core::ErrorCode::kInternal,
                            model.path.string() + ": decoding weights failed: " + error.what_without_backtrace());
  }
  return weights;
}

}  // namespace pose::graph
