#include "pose/graph/model_json.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pose::graph {
namespace {

using nlohmann::json;

// Thrown while walking the JSON and turned into one core::Error at the top, so each helper can stay a plain
// function instead of threading a Result through every field.
struct MalformedModel : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string base64_decode(std::string_view text) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    if (c == '=') break;
    const size_t value = kAlphabet.find(c);
    if (value == std::string_view::npos) throw MalformedModel("invalid base64 in a string attribute");
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFFu));
    }
  }
  return out;
}

// GraphDef JSON writes int64 values as strings ("2") to keep their precision; some writers use numbers.
int64_t parse_int(const json& value) {
  if (value.is_string()) return std::stoll(value.get<std::string>());
  if (value.is_number_integer()) return value.get<int64_t>();
  throw MalformedModel("expected an integer, got " + value.dump());
}

double parse_float(const json& value) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) return std::stod(value.get<std::string>());
  throw MalformedModel("expected a number, got " + value.dump());
}

TensorShape parse_shape(const json& shape) {
  TensorShape result;
  result.unknown_rank = shape.value("unknownRank", false);
  if (const auto dims = shape.find("dim"); dims != shape.end()) {
    for (const auto& dim : *dims) result.dims.push_back(dim.contains("size") ? parse_int(dim.at("size")) : 0);
  }
  return result;
}

std::optional<AttrValue> parse_list(const json& list) {
  if (const auto s = list.find("s"); s != list.end()) {
    std::vector<std::string> values;
    for (const auto& item : *s) values.push_back(base64_decode(item.get<std::string>()));
    return values;
  }
  if (const auto i = list.find("i"); i != list.end()) {
    std::vector<int64_t> values;
    for (const auto& item : *i) values.push_back(parse_int(item));
    return values;
  }
  if (const auto f = list.find("f"); f != list.end()) {
    std::vector<double> values;
    for (const auto& item : *f) values.push_back(parse_float(item));
    return values;
  }
  if (list.empty()) return std::vector<int64_t>{};
  return std::nullopt;  // lists of types, shapes or tensors: no supported op reads them
}

// Attribute kinds no supported op reads (tensor, func) are skipped rather than rejected: an op that needs one
// reports the missing attribute by name when its kernel is built.
std::optional<AttrValue> parse_attr(const json& attr) {
  if (const auto s = attr.find("s"); s != attr.end()) return base64_decode(s->get<std::string>());
  if (const auto i = attr.find("i"); i != attr.end()) return parse_int(*i);
  if (const auto f = attr.find("f"); f != attr.end()) return parse_float(*f);
  if (const auto b = attr.find("b"); b != attr.end()) return b->get<bool>();
  if (const auto type = attr.find("type"); type != attr.end()) return scalar_type_from_tf(type->get<std::string>());
  if (const auto shape = attr.find("shape"); shape != attr.end()) return parse_shape(*shape);
  if (const auto list = attr.find("list"); list != attr.end()) return parse_list(*list);
  return std::nullopt;
}

NodeDef parse_node(const json& node) {
  NodeDef result;
  result.name = node.at("name").get<std::string>();
  result.op = node.at("op").get<std::string>();
  if (const auto inputs = node.find("input"); inputs != node.end()) {
    for (const auto& input : *inputs) {
      auto name = input.get<std::string>();
      if (!name.starts_with('^')) result.inputs.push_back(std::move(name));  // control edges order nothing here
    }
  }
  if (const auto attrs = node.find("attr"); attrs != node.end()) {
    for (const auto& [key, value] : attrs->items()) {
      if (auto parsed = parse_attr(value)) result.attrs.emplace(key, std::move(*parsed));
    }
  }
  return result;
}

std::vector<SignatureEntry> parse_signature_side(const json& side) {
  std::vector<SignatureEntry> entries;
  // nlohmann's object keeps keys sorted, so entries come out sorted by key, as the reference runner lists them.
  for (const auto& [key, value] : side.items()) {
    SignatureEntry entry;
    entry.key = key;
    entry.tensor = value.at("name").get<std::string>();
    entry.dtype = scalar_type_from_tf(value.value("dtype", ""));
    if (const auto shape = value.find("tensorShape"); shape != value.end()) entry.shape = parse_shape(*shape);
    entries.push_back(std::move(entry));
  }
  return entries;
}

WeightSpec parse_weight(const json& weight) {
  WeightSpec spec;
  spec.name = weight.at("name").get<std::string>();
  for (const auto& dim : weight.at("shape")) spec.shape.push_back(parse_int(dim));
  spec.dtype = weight.at("dtype").get<std::string>();
  if (const auto q = weight.find("quantization"); q != weight.end()) {
    Quantization quantization;
    quantization.dtype = q->at("dtype").get<std::string>();
    if (q->contains("min")) quantization.min = parse_float(q->at("min"));
    if (q->contains("scale")) quantization.scale = parse_float(q->at("scale"));
    spec.quantization = quantization;
  }
  return spec;
}

std::vector<WeightGroup> parse_manifest(const json& manifest) {
  std::vector<WeightGroup> groups;
  for (const auto& group : manifest) {
    WeightGroup result;
    for (const auto& path : group.at("paths")) result.paths.push_back(path.get<std::string>());
    for (const auto& weight : group.at("weights")) result.weights.push_back(parse_weight(weight));
    groups.push_back(std::move(result));
  }
  return groups;
}

core::Error malformed(const std::filesystem::path& path, const std::string& where, const std::string& what) {
  return core::make_error(core::ErrorCode::kInvalidArgument, path.string() + ": malformed model.json" +
                                                                 (where.empty() ? "" : " at " + where) + ": " + what +
                                                                 " (re-install the model with scripts/setup)");
}

}  // namespace

std::optional<int64_t> NodeDef::int_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<int64_t>(it->second)) return std::nullopt;
  return std::get<int64_t>(it->second);
}

std::optional<double> NodeDef::float_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<double>(it->second)) return std::nullopt;
  return std::get<double>(it->second);
}

std::optional<bool> NodeDef::bool_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<bool>(it->second)) return std::nullopt;
  return std::get<bool>(it->second);
}

std::optional<std::string> NodeDef::string_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<std::string>(it->second)) return std::nullopt;
  return std::get<std::string>(it->second);
}

std::optional<c10::ScalarType> NodeDef::type_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<c10::ScalarType>(it->second)) return std::nullopt;
  return std::get<c10::ScalarType>(it->second);
}

std::optional<TensorShape> NodeDef::shape_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<TensorShape>(it->second)) return std::nullopt;
  return std::get<TensorShape>(it->second);
}

std::optional<std::vector<int64_t>> NodeDef::ints_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end() || !std::holds_alternative<std::vector<int64_t>>(it->second)) return std::nullopt;
  return std::get<std::vector<int64_t>>(it->second);
}

std::optional<std::vector<std::string>> NodeDef::strings_attr(std::string_view key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end()) return std::nullopt;
  if (const auto* empty = std::get_if<std::vector<int64_t>>(&it->second); empty && empty->empty()) {
    return std::vector<std::string>{};
  }
  if (!std::holds_alternative<std::vector<std::string>>(it->second)) return std::nullopt;
  return std::get<std::vector<std::string>>(it->second);
}

c10::ScalarType scalar_type_from_tf(std::string_view tf_dtype) {
  if (tf_dtype == "DT_FLOAT") return c10::ScalarType::Float;
  if (tf_dtype == "DT_INT32") return c10::ScalarType::Int;
  if (tf_dtype == "DT_BOOL") return c10::ScalarType::Bool;
  if (tf_dtype == "DT_INT64") return c10::ScalarType::Long;
  if (tf_dtype == "DT_HALF") return c10::ScalarType::Half;
  if (tf_dtype == "DT_UINT8") return c10::ScalarType::Byte;
  return c10::ScalarType::Undefined;
}

c10::ScalarType scalar_type_from_tfjs(std::string_view tfjs_dtype) {
  if (tfjs_dtype == "float32") return c10::ScalarType::Float;
  if (tfjs_dtype == "int32") return c10::ScalarType::Int;
  if (tfjs_dtype == "bool") return c10::ScalarType::Bool;
  return c10::ScalarType::Undefined;
}

core::Result<ModelDef> parse_model_json(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return core::make_error(core::ErrorCode::kNotFound,
                            path.string() + ": cannot open the model file (install the models with scripts/setup)");
  }
  std::ostringstream text;
  text << file.rdbuf();

  ModelDef model;
  model.path = path;
  std::string where;  // the part being read, so a failure can point at it
  try {
    const json root = json::parse(text.str());
    if (!root.is_object()) throw MalformedModel("the top level is not a JSON object");
    if (const auto format = root.value("format", "graph-model"); format != "graph-model") {
      return core::make_error(core::ErrorCode::kUnsupported,
                              path.string() + ": format '" + format + "' is not supported; only TFJS graph models are");
    }
    where = "modelTopology";
    for (const auto& node : root.at("modelTopology").at("node")) {
      where = "node " + node.value("name", std::string("#") + std::to_string(model.nodes.size()));
      model.nodes.push_back(parse_node(node));
    }
    where = "signature";
    if (const auto signature = root.find("signature"); signature != root.end()) {
      if (signature->contains("inputs")) model.inputs = parse_signature_side(signature->at("inputs"));
      if (signature->contains("outputs")) model.outputs = parse_signature_side(signature->at("outputs"));
    }
    where = "weightsManifest";
    model.weight_groups = parse_manifest(root.at("weightsManifest"));
  } catch (const json::exception& error) {
    return malformed(path, where, error.what());
  } catch (const std::exception& error) {  // MalformedModel, and std::stoll/stod on a bad number
    return malformed(path, where, error.what());
  }
  return model;
}

}  // namespace pose::graph
