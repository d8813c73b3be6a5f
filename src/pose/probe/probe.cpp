#include "pose/probe/probe.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace pose::probe {
namespace {

struct Conv {
  at::Tensor weight;
  int64_t stride;
  int64_t groups;
};

// MobileNetV2's stages (expansion, output channels, repeats, first stride) as MoveNet's backbone uses them.
struct Stage {
  int64_t expansion, channels, repeats, stride;
};
constexpr Stage kStages[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};

class ProxyNetwork {
 public:
  explicit ProxyNetwork(const at::TensorOptions& options) : options_(options) {
    int64_t channels = 32;
    add(3, channels, 3, 2, 1);
    for (const auto& stage : kStages) {
      for (int64_t i = 0; i < stage.repeats; ++i) {
        const int64_t hidden = channels * stage.expansion;
        const int64_t stride = i == 0 ? stage.stride : 1;
        if (stage.expansion != 1) add(channels, hidden, 1, 1, 1);
        add(hidden, hidden, 3, stride, hidden);
        add(hidden, stage.channels, 1, 1, 1);
        channels = stage.channels;
      }
    }
  }

  at::Tensor forward(at::Tensor x) const {
    for (const auto& conv : convs_) {
      const int64_t padding = conv.weight.size(2) / 2;
      x = at::conv2d(x, conv.weight, {}, conv.stride, padding, 1, conv.groups).clamp_(0, 6);
    }
    return x;
  }

  double gflop_per_frame(int64_t size) const {
    double flops = 0;
    int64_t side = size;
    for (const auto& conv : convs_) {
      side = (side + conv.stride - 1) / conv.stride;
      flops += 2.0 * static_cast<double>(conv.weight.numel() * side * side);
    }
    return flops / 1e9;
  }

 private:
  void add(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups) {
    // Scaled like He initialisation so activations stay in range through ReLU6 and timings reflect real data.
    const double scale = std::sqrt(2.0 / static_cast<double>(in / groups * kernel * kernel));
    convs_.push_back({at::randn({out, in / groups, kernel, kernel}, options_) * scale, stride, groups});
  }

  at::TensorOptions options_;
  std::vector<Conv> convs_;
};

}  // namespace

core::Result<ProbeResult> measure_proxy_latency(const ProbeOptions& options) {
  if (options.cuda && !torch::cuda::is_available()) {
    return core::make_error(core::ErrorCode::kUnavailable, "no CUDA device visible to LibTorch");
  }
  try {
    const c10::InferenceMode inference;
    at::manual_seed(0);
    const auto tensor_options =
        at::TensorOptions().device(options.cuda ? at::kCUDA : at::kCPU).dtype(options.cuda ? at::kHalf : at::kFloat);
    const ProxyNetwork network(tensor_options);
    const at::Tensor frame = at::rand({1, 3, 192, 192}, tensor_options);
    const auto sync = [&] {
      if (options.cuda) torch::cuda::synchronize();
    };
    for (int i = 0; i < options.warmup_runs; ++i) network.forward(frame);
    sync();
    std::vector<double> times_ms;
    for (int i = 0; i < options.timed_runs; ++i) {
      const auto start = std::chrono::steady_clock::now();
      network.forward(frame);
      sync();
      times_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(times_ms.begin(), times_ms.begin() + static_cast<std::ptrdiff_t>(times_ms.size() / 2),
                     times_ms.end());
    return ProbeResult{times_ms[times_ms.size() / 2], network.gflop_per_frame(192)};
  } catch (const c10::Error& error) {
    return core::make_error(core::ErrorCode::kInternal,
                            std::string("LibTorch failed in the pose probe: ") + error.what_without_backtrace());
  }
}

}  // namespace pose::probe
