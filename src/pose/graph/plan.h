#pragma once
// The planner and executor: turns the reachable part of a GraphDef into a flat list of kernel steps over numbered
// value slots, and runs it. Private to pose::graph.
//
// At build time the planner
//   * keeps only the nodes the requested outputs depend on, in dependency order;
//   * makes Const nodes constants (on the device, floats in the compute dtype) and runs every node whose inputs
//     are all constant once, keeping its outputs as constants (constant folding);
//   * turns Identity into an alias;
//   * folds a spatial-only Pad into the convolutions that read it, and a Relu/Relu6 into the op that produces its
//     only input (applied in place), dropping the steps that become dead;
//   * frees each value after its last reader, and drops constants only load-time work needed (raw TF filters).
//
// Thread-safety: a built Plan is immutable; execute() keeps its state on the stack and may run concurrently.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "pose/graph/graph.h"
#include "pose/graph/kernels.h"
#include "pose/graph/model_json.h"
#include "pose/graph/weights.h"

namespace pose::graph {

struct PlanRequest {
  std::vector<std::string> inputs;   // Placeholder node names, in the order execute() receives them
  std::vector<std::string> outputs;  // node outputs ("node" or "node:k"), in the order execute() returns them
  at::TensorOptions float_options;   // device and compute dtype
};

struct PlanStats {
  size_t nodes = 0;              // reachable from the outputs
  size_t folded = 0;             // nodes computed at load
  size_t fused_pads = 0;         // Pad ops folded into convolutions
  size_t fused_activations = 0;  // Relu/Relu6 ops applied in place by their producer
  size_t steps = 0;              // kernels run per execute()
};

class Plan {
 public:
  // `weights` is consumed: the tensors move onto the device and are converted once.
  static core::Result<Plan> build(const ModelDef& model, WeightMap weights, const PlanRequest& request);

  // `inputs` must already have the placeholders' dtypes (floats in the compute dtype) and be on the device.
  // With `profile`, each step is timed (after a device synchronisation) and added to its op's entry.
  core::Result<std::vector<at::Tensor>> execute(std::vector<at::Tensor> inputs, OpProfile* profile = nullptr) const;

  const PlanStats& stats() const { return stats_; }

 private:
  struct Step {
    std::string node;  // for error messages
    std::string op;
    KernelFn fn;
    bool fresh_output = false;
    std::vector<int32_t> inputs;   // slots
    std::vector<int32_t> outputs;  // slots
    std::vector<int32_t> release;  // slots whose last reader is this step, freed right after it
  };
  friend class PlanBuilder;

  std::string model_name_;
  std::vector<at::Tensor> initial_slots_;  // constants that steps read; undefined elsewhere
  std::vector<int32_t> input_slots_;
  std::vector<int32_t> output_slots_;
  std::vector<bool> output_is_constant_;  // returned as copies, so callers cannot modify the plan's constants
  std::vector<Step> steps_;
  size_t max_step_inputs_ = 0;
  size_t max_step_outputs_ = 0;
  PlanStats stats_;
};

}  // namespace pose::graph
