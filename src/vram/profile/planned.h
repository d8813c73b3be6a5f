#pragma once
// A plan applied to a model made of stages: forward runs the stages in order, each checkpoint segment as one
// checkpoint (its input kept on the device or offloaded to host memory), and with weight streaming each
// segment's frozen weights arrive from host memory one segment ahead, in forward and in the recomputation.
// Gradients equal the unplanned forward's.
//
// This is the library call for a user's own LibTorch model: make it a list of stages (stages_of() wraps the
// modules of a torch::nn::Sequential), create a PlannedStages with a plan, and call forward() where the model's
// forward was; loss.backward() and the optimizer stay the user's. The zoo's models run through the same class.
//
//   auto stages = vram::profile::stages_of(net);               // net: torch::nn::Sequential
//   vram::zoo::Plan plan = ...;                                  // e.g. vram::plan::choose(...).plan
//   auto planned = vram::profile::PlannedStages::create(pointers(stages), plan, device).value();
//   at::Tensor loss = criterion(planned->forward(x), y);
//   loss.backward();
//
// Thread-safety: one forward at a time, and its backward before the next forward (as any module).

#include <ATen/ATen.h>
#include <torch/nn/modules/container/sequential.h>

#include <memory>
#include <vector>

#include "core/result.h"
#include "vram/profile/host_stash.h"
#include "vram/profile/weight_stream.h"
#include "vram/zoo/spec.h"
#include "vram/zoo/zoo.h"

namespace vram::profile {

class StepObserver;  // runner.h

class PlannedStages {
 public:
  // `stages` outlive this object. The plan has one policy per stage (or none: keep everything); its loss chunk
  // and micro-batches are the caller's business (the runner's). With stream_weights, the frozen weights of every
  // segment move to host memory now. Fails for a plan of the wrong length, streaming without segments, or a
  // segment with no frozen weight to stream.
  static core::Result<std::unique_ptr<PlannedStages>> create(std::vector<zoo::Stage*> stages, const zoo::Plan& plan,
                                                             const at::Device& device);
  ~PlannedStages();
  PlannedStages(const PlannedStages&) = delete;
  PlannedStages& operator=(const PlannedStages&) = delete;

  // Every stage on `input`; observer callbacks as the runner documents them, stage indices from 0.
  at::Tensor forward(const at::Tensor& input, StepObserver* observer = nullptr);

  size_t stage_count() const;
  // Host memory the plan uses: offloaded inputs and streamed weights.
  int64_t host_bytes() const;
  const WeightStream* weights() const;  // null without streaming

 private:
  struct Impl;
  explicit PlannedStages(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Each module of `sequential` as a stage (its forward must take and return one tensor). The stages share the
// modules: parameters stay where they were registered.
std::vector<std::unique_ptr<zoo::Stage>> stages_of(const torch::nn::Sequential& sequential);
std::vector<zoo::Stage*> pointers(const std::vector<std::unique_ptr<zoo::Stage>>& stages);

}  // namespace vram::profile
