#pragma once
// One real step of a workload on a device: inference (a forward pass without autograd), or forward, loss,
// backward and an optimizer step. The model is driven stage by stage so observers (the profiler) see each stage
// begin and end, in forward and in backward. The profiler, the batch-size finder and the planner run steps
// through this one class.
//
// Private to the vram modules (LibTorch types). Thread-safety: one thread at a time; observer callbacks for
// backward run on autograd's threads while step() blocks.

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "vram/profile/planned.h"
#include "vram/zoo/spec.h"
#include "vram/zoo/zoo.h"

namespace vram::profile {

// Callbacks around the parts of a step. Stage indices follow zoo::Model's stages.
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  virtual void on_step_begin() {}
  virtual void on_forward_begin(size_t /*stage*/) {}
  virtual void on_forward_end(size_t /*stage*/) {}  // after the caller dropped its reference to the stage input
  virtual void on_loss_end() {}
  // Backward reached the output of `stage`: the stages after it are done, this one starts. Stages whose output
  // needs no gradient (a frozen embedding) are never reached.
  virtual void on_backward_reached(size_t /*stage*/) {}
  virtual void on_backward_end() {}
  virtual void on_optimizer_end() {}
};

struct RunnerOptions {
  zoo::Workload workload;  // model, mode, dtype, optimizer, LoRA, plan; batch and seq are per step()
  std::string device = "cpu";
  uint64_t seed = 0;
  double learning_rate = 1e-4;
};

class Runner {
 public:
  // Builds the model on the device and its optimizer. Errors as zoo::Model::create.
  static core::Result<std::unique_ptr<Runner>> create(const RunnerOptions& options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // One step at this batch and sequence length. Out of memory gives kOutOfMemory and leaves the runner usable:
  // every tensor of the failed step is released (gradients included) before it returns.
  core::Status step(int64_t batch, int64_t seq, StepObserver* observer = nullptr);

  zoo::Model& model();
  const RunnerOptions& options() const;
  const PlannedStages& planned() const;  // the stages as the plan runs them (all but a chunked loss's head)
  // Bytes of optimizer state now (AdamW: two moments per trainable parameter, created by the first step).
  int64_t optimizer_state_bytes() const;
  // Waits for the device to finish queued work (CUDA); nothing on the CPU.
  void synchronize() const;

 private:
  struct Impl;
  explicit Runner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vram::profile
