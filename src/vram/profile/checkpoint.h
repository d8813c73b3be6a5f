#pragma once
// Activation checkpointing for a run of stages: the forward runs without keeping anything but the input; backward
// runs the forward again with autograd, restoring the random-number state the first forward saw (so dropout draws
// the same mask), and takes gradients through it. Loss and gradients equal the unoptimized step's.
//
// Private to the vram modules. Thread-safety: as the stage itself.

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <vector>

#include "vram/profile/host_stash.h"
#include "vram/profile/weight_stream.h"
#include "vram/zoo/zoo.h"

namespace vram::profile {

// Called around each stage of the first forward (not the recomputation): the stage's index in the segment, and
// true before it, false after it.
using SegmentObserver = std::function<void(size_t stage, bool before)>;

// Where a segment's input waits for backward: in `stash` slot `slot` (host memory), or on the device (no stash).
// Offloaded segments are numbered in forward order; each one's backward prefetches the slot before its own.
struct Offload {
  HostStash* stash = nullptr;
  size_t slot = 0;
};

// Where a segment's frozen weights come from: unit `unit` of `weights` (none: they stay on the device). The
// caller acquires them around the first forward; the segment's backward acquires them for the recomputation,
// prefetches the unit before it (the next backward) and releases them when done.
struct Streamed {
  WeightStream* weights = nullptr;
  size_t unit = 0;
};

// A segment of consecutive stages run as one checkpoint: only `input` is kept. Returns the last stage's output;
// in backward, gradients reach the input (when it needs one) and every trainable parameter of the segment. With
// autograd off it is a plain forward.
at::Tensor checkpointed_forward(const std::vector<zoo::Stage*>& segment, const at::Tensor& input,
                                const SegmentObserver& observer = {}, Offload offload = {}, Streamed streamed = {});
// One stage as its own segment.
at::Tensor checkpointed_forward(zoo::Stage& stage, const at::Tensor& input);

// The model's head and its mean cross-entropy over `tokens_per_chunk` tokens at a time, each piece checkpointed:
// only the hidden states are kept, and in backward each piece's logits are made again. The pieces' stages live in
// `keep_alive` until backward has run. Equal to model.loss(head(hidden), target) up to summation order.
at::Tensor chunked_head_loss(zoo::Model& model, const at::Tensor& hidden, const at::Tensor& target,
                             int64_t tokens_per_chunk, std::vector<std::unique_ptr<zoo::Stage>>& keep_alive);

}  // namespace vram::profile
