#pragma once
// Reads a graph model's weight shards and decodes each manifest entry into a CPU tensor: float16 and
// uint8/uint16-quantised floats are dequantised to float32 once here; int32 and bool stay as they are.
// Private to pose::graph.
//
// Thread-safety: load_weights() reads files only; safe from any thread.

#include <ATen/core/Tensor.h>

#include <string>
#include <unordered_map>

#include "core/result.h"
#include "pose/graph/model_json.h"

namespace pose::graph {

using WeightMap = std::unordered_map<std::string, at::Tensor>;

// Shards are looked up next to model.path. The byte count of every group is checked against its manifest before
// anything is decoded, so a truncated or swapped shard is reported by name instead of producing wrong weights.
core::Result<WeightMap> load_weights(const ModelDef& model);

}  // namespace pose::graph
