// pose_batch_bench: the estimator as the stream scheduler drives it — batches whose size changes from call to call
// (as many frames as streams delivered) — optionally while N video decoders run flat out on other threads, as in a
// multi-stream pipeline. Reports per-call latency percentiles and every call over --slow-ms with its batch size, so
// a cost paid per new batch shape, or a stall caused by decoding load, shows up. JSON on stdout.
//
//   pose_batch_bench --source clip.mp4 [--device cuda] [--precision fp16] [--model NAME] [--calls N]
//                    [--max-batch B] [--decoders N] [--decoder ffmpeg] [--slow-ms 50]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "core/libtorch/libtorch.h"
#include "pose/engine/engine.h"
#include "pose/video/video.h"

namespace {

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(q * static_cast<double>(values.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string source, device = "cpu", precision = "fp32", model = "movenet-lightning", decoder = "auto";
  int calls = 300, max_batch = 16, decoders = 0;
  double slow_ms = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--source")
      source = value;
    else if (flag == "--device")
      device = value;
    else if (flag == "--precision")
      precision = value;
    else if (flag == "--model")
      model = value;
    else if (flag == "--decoder")
      decoder = value;
    else if (flag == "--calls")
      calls = std::stoi(value);
    else if (flag == "--max-batch")
      max_batch = std::stoi(value);
    else if (flag == "--decoders")
      decoders = std::stoi(value);
    else if (flag == "--slow-ms")
      slow_ms = std::stod(value);
    else {
      std::cerr << "pose_batch_bench: unknown flag " << flag << "\n";
      return 2;
    }
  }
  // Frames to infer on: the clip's first 64, decoded once.
  pose::video::SourceOptions options{.uri = source, .max_side_px = 640, .decoder = decoder};
  auto clip = pose::video::Source::open(options);
  if (!clip) {
    std::cerr << "pose_batch_bench: " << clip.error().message << "\n";
    return 2;
  }
  std::vector<pose::video::Frame> frames;
  while (frames.size() < 64) {
    auto frame = (*clip)->next();
    if (!frame || !*frame) break;
    frames.push_back(std::move(**frame));
  }
  core::libtorch::set_threads(0);
  core::libtorch::keep_freed_memory();
  pose::engine::EstimatorOptions estimator_options;
  estimator_options.model = model;
  estimator_options.device = device == "cuda" ? pose::engine::Device::kCuda : pose::engine::Device::kCpu;
  estimator_options.precision =
      precision == "fp16" ? pose::engine::Precision::kFloat16 : pose::engine::Precision::kFloat32;
  estimator_options.track = false;
  auto estimator = pose::engine::Estimator::create(estimator_options);
  if (!estimator) {
    std::cerr << "pose_batch_bench: " << estimator.error().message << "\n";
    return 2;
  }
  const auto warm_start = std::chrono::steady_clock::now();
  if (auto warmed = (*estimator)->warm_up(max_batch); !warmed) {
    std::cerr << "pose_batch_bench: " << warmed.error().message << "\n";
    return 2;
  }
  const double warm_up_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - warm_start).count();

  // Background load: decoders reading the clip in a loop as fast as they can.
  std::atomic<bool> done{false};
  std::atomic<int64_t> decoded{0};
  std::vector<std::thread> load;
  load.reserve(static_cast<size_t>(std::max(decoders, 0)));
  for (int d = 0; d < decoders; ++d) {
    load.emplace_back([&] {
      pose::video::SourceOptions looping = options;
      looping.loops = 0;
      auto background = pose::video::Source::open(looping);
      while (background && !done) {
        auto frame = (*background)->next();
        if (!frame || !*frame) break;
        ++decoded;
      }
    });
  }
  std::mt19937 random(1);
  std::uniform_int_distribution<int> size(1, std::max(1, std::min<int>(max_batch, static_cast<int>(frames.size()))));
  std::vector<double> times_ms;
  nlohmann::json slow = nlohmann::json::array();
  const auto start = std::chrono::steady_clock::now();
  for (int call = 0; call < calls; ++call) {
    const int batch = size(random);
    std::vector<pose::engine::Image> images;
    for (int i = 0; i < batch; ++i) {
      const auto& frame = frames[static_cast<size_t>(i) % frames.size()];
      images.push_back({frame.bgr.data(), frame.width, frame.height, frame.width * 3, pose::engine::PixelFormat::kBgr});
    }
    const auto call_start = std::chrono::steady_clock::now();
    auto people = (*estimator)->estimate_batch(images);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - call_start).count();
    if (!people) {
      std::cerr << "pose_batch_bench: " << people.error().message << "\n";
      return 1;
    }
    times_ms.push_back(ms);
    if (ms > slow_ms) {
      slow.push_back({{"call", call},
                      {"t_s", std::chrono::duration<double>(call_start - start).count()},
                      {"batch", batch},
                      {"ms", ms}});
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  done = true;
  for (auto& thread : load) thread.join();
  std::cout << nlohmann::json{{"bench", "pose_batch"},
                              {"model", model},
                              {"device", device},
                              {"precision", precision},
                              {"max_batch", max_batch},
                              {"decoders", decoders},
                              {"warm_up_ms", warm_up_ms},
                              {"calls", calls},
                              {"ms_per_call",
                               {{"p50", percentile(times_ms, 0.5)},
                                {"p99", percentile(times_ms, 0.99)},
                                {"max", percentile(times_ms, 1.0)}}},
                              {"background_decoded_fps", static_cast<double>(decoded) / seconds},
                              {"slow_calls", slow}}
                   .dump(2)
            << "\n";
  return 0;
}
