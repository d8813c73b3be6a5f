#pragma once
// pose::graph runs TensorFlow.js graph models (model.json plus weight shards, as converted by tfjs-converter) on
// LibTorch tensors, with the results of the TFJS runtime (checked by graph_conformance_test against tfjs-wasm).
//
// It implements the ops the pose models use (MoveNet, BlazePose; see kernels.cpp for the list), dequantises
// float16/uint8/uint16 weights at load, folds constant subgraphs, converts filters to LibTorch's layout once, and
// runs the remaining nodes as a flat list of LibTorch calls. Values keep TF's NHWC meaning throughout.
//
//   auto graph = pose::graph::Graph::load(models / "movenet-lightning.json", {});
//   const at::Tensor pixels = ...;                 // int32 [1,192,192,3], NHWC
//   auto outputs = (*graph)->run({&pixels, 1});  // float32 [1,1,17,3]
//
// Thread-safety: a loaded Graph is immutable. run() may be called from several threads at once (each call keeps
// its own state; LibTorch's intra-op pool is shared). Graphs on a CUDA device compute on the current stream.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"

namespace pose::graph {

enum class ComputeType {
  kFloat32,
  kFloat16,  // CUDA only; halves weight memory and uses tensor cores
};

struct GraphOptions {
  // Where weights live and run() computes; inputs on another device are copied there, outputs stay there.
  c10::Device device = c10::Device(c10::kCPU);
  // Float weights and activations use this type; graph inputs and outputs keep their TF dtypes either way.
  // On CUDA, kFloat32 convolutions follow LibTorch's process-wide TF32 switch, which cuDNN turns on by default:
  // for float32 results (and conformance with TFJS) the application calls
  // at::globalContext().setAllowTF32CuDNN(false) at start-up; load() logs a warning while it is on.
  ComputeType compute = ComputeType::kFloat32;
  // Node outputs ("node" or "node:k") to return instead of the signature's outputs. Nodes only the signature
  // outputs need are not run, so this cuts a graph, e.g. before single-pose MoveNet's batch-1 decoding.
  std::vector<std::string> outputs;
  // Inner nodes to feed instead of the signature's inputs: each becomes a float32 input of any shape, and what
  // produced it is not run. With `outputs`, this cuts a graph at both ends, e.g. around single-pose MoveNet's
  // batch-1 pre- and post-processing, leaving a network that takes any batch.
  std::vector<std::string> inputs;
  // Accept any batch size where an input declares 1. Only for graphs, or cuts of them, whose ops treat batch
  // elements independently.
  bool any_batch = false;
  core::Logger logger;  // one info line per load; nothing per run
};

struct TensorInfo {
  std::string name;  // signature key ("input", "ld_3d"); the node output itself for GraphOptions::outputs
  std::string node;  // node output ("input:0", "Identity_2:0")
  at::ScalarType dtype = at::ScalarType::Undefined;  // Undefined when the model does not declare it
  std::vector<int64_t> shape;                        // -1 for a dimension of any size; empty when undeclared
};

// Where a run's time goes, per op type. Profiling synchronises the device after every step, so a profiled run is
// slower than a normal one: the shares matter, not the total.
struct OpTiming {
  int64_t calls = 0;
  double total_ms = 0.0;
};
using OpProfile = std::map<std::string, OpTiming>;

class Graph {
 public:
  // Errors name the file and, where there is one, the node: a missing or malformed model.json, missing or
  // truncated shards, an op this module does not implement, a CUDA device that is not there.
  static core::Result<std::unique_ptr<Graph>> load(const std::filesystem::path& model_json,
                                                   const GraphOptions& options);

  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;

  // One tensor per inputs() entry, in that order, NHWC as TF expects, with exactly the declared dtype and shape
  // (any size where the shape says -1). Returns one tensor per outputs() entry.
  // With `profile`, adds each step's time to its op's entry.
  core::Result<std::vector<at::Tensor>> run(std::span<const at::Tensor> inputs, OpProfile* profile = nullptr) const;

 private:
  struct Impl;
  explicit Graph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pose::graph
