#pragma once
// A quick measurement of how fast this machine runs a MoveNet-Lightning-sized network, for the machine profile.
// Until the inference engine (pose::engine) can run the real graphs, this times a stand-in with the same shape of
// work: a MobileNetV2 backbone (inverted residuals, depthwise 3x3) on a 192x192 RGB frame, random weights.
//
// Thread-safety: call from one thread; it uses LibTorch's intra-op pool as configured by the caller.

#include "core/result.h"

namespace pose::probe {

struct ProbeOptions {
  bool cuda = false;  // run on the first CUDA device (fp16) instead of the CPU (fp32)
  int warmup_runs = 3;
  int timed_runs = 15;
};

struct ProbeResult {
  double median_ms = 0.0;  // per frame at batch 1
  double gflop_per_frame = 0.0;
};

core::Result<ProbeResult> measure_proxy_latency(const ProbeOptions& options);

}  // namespace pose::probe
