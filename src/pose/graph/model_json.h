#pragma once
// The parts of a TFJS graph model's model.json that the loader needs: the GraphDef nodes with typed attributes,
// the signature and the weights manifest. Private to pose::graph.
//
// Thread-safety: plain values; parse_model_json() is safe from any thread.

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.h"

namespace pose::graph {

struct TensorShape {
  std::vector<int64_t> dims;  // -1 for an unknown dimension
  bool unknown_rank = false;
};

// One GraphDef attribute. TF's JSON encodes strings in base64; they are decoded here. An empty list is stored as
// an empty integer list and reads as an empty list of any element type.
using AttrValue = std::variant<int64_t, double, bool, std::string, c10::ScalarType, TensorShape, std::vector<int64_t>,
                               std::vector<double>, std::vector<std::string>>;

struct NodeDef {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;  // "node" or "node:k"; control inputs ("^node") are dropped at parse time
  std::map<std::string, AttrValue, std::less<>> attrs;

  // Each accessor returns nullopt when the attribute is absent or has another type.
  std::optional<int64_t> int_attr(std::string_view key) const;
  std::optional<double> float_attr(std::string_view key) const;
  std::optional<bool> bool_attr(std::string_view key) const;
  std::optional<std::string> string_attr(std::string_view key) const;
  std::optional<c10::ScalarType> type_attr(std::string_view key) const;
  std::optional<TensorShape> shape_attr(std::string_view key) const;
  std::optional<std::vector<int64_t>> ints_attr(std::string_view key) const;
  std::optional<std::vector<std::string>> strings_attr(std::string_view key) const;
};

struct SignatureEntry {
  std::string key;     // friendly name: "input", "ld_3d"
  std::string tensor;  // node output: "input:0", "Identity_2:0"
  c10::ScalarType dtype = c10::ScalarType::Undefined;
  TensorShape shape;
};

struct Quantization {
  std::string dtype;  // storage: "float16", "uint8", "uint16"
  double min = 0.0;   // affine dequantisation for uint8/uint16: value = q * scale + min
  double scale = 1.0;
};

struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;  // "float32", "int32", "bool"
  std::optional<Quantization> quantization;
};

// Shards of one group are concatenated in order and hold the group's weights back to back.
struct WeightGroup {
  std::vector<std::string> paths;  // relative to model.json's folder
  std::vector<WeightSpec> weights;
};

struct ModelDef {
  std::filesystem::path path;  // model.json, for messages
  std::vector<NodeDef> nodes;
  std::vector<SignatureEntry> inputs;   // empty when the model has no signature
  std::vector<SignatureEntry> outputs;  // empty when the model has no signature
  std::vector<WeightGroup> weight_groups;
  std::vector<std::string> fed_nodes;  // inner nodes turned into inputs (GraphOptions::inputs), in that order
};

// TF's dtype enum names ("DT_FLOAT") as LibTorch types; Undefined for the ones the executor has no use for.
c10::ScalarType scalar_type_from_tf(std::string_view tf_dtype);
// TFJS manifest dtype names ("float32") as LibTorch types; Undefined when unknown.
c10::ScalarType scalar_type_from_tfjs(std::string_view tfjs_dtype);

// Reads and validates model.json. Errors name the file and, where there is one, the node.
core::Result<ModelDef> parse_model_json(const std::filesystem::path& path);

}  // namespace pose::graph
