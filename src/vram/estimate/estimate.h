#pragma once
// Peak memory of a step, predicted from shapes alone: no GPU, no LibTorch, microseconds. The step is replayed
// symbolically with the same intervals the profiler measures (each stage's forward, the loss, each stage's
// backward, the optimizer), from what every stage of the zoo keeps for backward and allocates transiently, so a
// prediction can be checked part by part against a profile. A checkpointing or offload plan (part 2) changes
// what a stage keeps; the replay stays the same.
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "vram/zoo/spec.h"

namespace vram::estimate {

// How the step will run: the attention kernel and the runtime's own allocations differ by device and LibTorch.
struct Backend {
  bool cuda = true;
  // Fused scaled-dot-product attention (flash / memory-efficient: keeps the output and a log-sum-exp per row)
  // as LibTorch 2.x runs it on CUDA; false is the math path (keeps the softmax probabilities, T x T per head),
  // which LibTorch 1.13 and the CPU use.
  bool fused_attention = true;
  // LibTorch 1.x's mean over a dimension keeps its input for backward (2.x keeps only the sizes): in RMSNorm
  // that is a float32 copy of the squares.
  bool mean_keeps_input = false;
  // Bytes of the random-number state a checkpoint keeps to replay dropout: the CPU generator's Mersenne Twister
  // state, or CUDA's Philox seed and offset.
  int64_t rng_state_bytes = 16;
  // cuBLAS workspaces the caching allocator hands out: one per thread that runs matrix products (the caller's
  // and autograd's device thread), sized by LibTorch for the architecture (32 MiB on Hopper).
  int64_t blas_workspace_bytes = 32ll << 20;
};

// The backend a step gets from a LibTorch major version on the CPU or on a CUDA GPU of a compute capability:
// fused attention on CUDA and on the CPU from LibTorch 2; math attention on LibTorch 1; cuBLAS workspaces of
// 32 MiB on Hopper (capability 9) and 8 MiB before.
Backend backend_for(bool cuda, int libtorch_major, int cuda_capability_major);

struct StageEstimate {
  std::string name;
  std::string kind;
  int64_t parameter_bytes = 0;
  int64_t trainable_bytes = 0;
  int64_t activation_bytes = 0;          // kept after its forward for backward (as the profiler measures it)
  int64_t forward_transient_bytes = 0;   // above the allocation at its start, during its forward
  int64_t backward_transient_bytes = 0;  // the same during its backward
};

struct Estimate {
  int64_t peak_bytes = 0;
  std::string peak_phase;  // "forward", "loss", "backward", "optimizer"
  std::string peak_stage;
  int64_t parameter_bytes = 0;  // all of them, wherever they live
  int64_t trainable_bytes = 0;
  int64_t streamed_bytes = 0;       // frozen weights in host memory (weight streaming)
  int64_t weight_buffer_bytes = 0;  // the device buffers they stream through
  int64_t gradient_bytes = 0;       // all gradients after backward (training only)
  int64_t optimizer_bytes = 0;      // optimizer state
  int64_t input_bytes = 0;
  int64_t activation_bytes = 0;  // sum over stages, the most that is ever kept at once
  int64_t workspace_bytes = 0;   // runtime allocations (cuBLAS workspaces)
  std::vector<StageEstimate> stages;
};

// Fails with kInvalidArgument for impossible workloads (batch < 0, LoRA on ResNet, ...). Batch 0 is allowed and
// gives what does not grow with the batch (parameters, optimizer state, workspaces).
core::Result<Estimate> estimate(const zoo::Workload& workload, const Backend& backend);

}  // namespace vram::estimate
