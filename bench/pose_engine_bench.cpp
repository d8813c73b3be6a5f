// pose_engine_bench: frames in, people out — the whole estimator (frame upload, crop and resample, network,
// decoding) per model, at batch 1, 4 and 16, on the CPU (1 thread and all cores) and on CUDA (fp32 and fp16) when
// there is a GPU (also 64 and 256 there, to fill it). Prints JSON: median milliseconds per batch and frames per
// second. Every batch, batch 1 included, is independent frames (Estimator::estimate_batch): BlazePose runs its
// detector and its landmark model on every frame, once per batch each; on video it tracks and the detector runs
// only when the person is lost.
//
//   pose_engine_bench [--image photo.jpg | --rgb frame.rgb --size WxH] [--runs N] [--models a,b] [--devices cpu,cuda]
//
// The peer (tfjs-wasm on the same CPU) is measured in the same run by scripts/bench, which prints the ratios.
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "core/libtorch/libtorch.h"
#include "pose/engine/engine.h"

#ifdef WB_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#endif

namespace {

struct Frame {
  std::vector<uint8_t> pixels;  // BGR
  int width = 0, height = 0;
};

bool load_frame(const std::string& image, const std::string& rgb, const std::string& size, Frame* frame) {
  if (!rgb.empty()) {
    const auto x = size.find('x');
    if (x == std::string::npos) return false;
    frame->width = std::stoi(size.substr(0, x));
    frame->height = std::stoi(size.substr(x + 1));
    frame->pixels.resize(static_cast<size_t>(frame->width) * static_cast<size_t>(frame->height) * 3);
    std::ifstream in(rgb, std::ios::binary);
    in.read(reinterpret_cast<char*>(frame->pixels.data()),
            static_cast<std::streamsize>(frame->pixels.size()));  // NOLINT
    for (size_t i = 0; i + 2 < frame->pixels.size(); i += 3) std::swap(frame->pixels[i], frame->pixels[i + 2]);
    return static_cast<bool>(in);
  }
#ifdef WB_HAVE_OPENCV
  const cv::Mat bgr = cv::imread(image, cv::IMREAD_COLOR);
  if (bgr.empty()) return false;
  frame->width = bgr.cols;
  frame->height = bgr.rows;
  frame->pixels.assign(bgr.data, bgr.data + bgr.total() * 3);
  return true;
#else
  (void)image;
  return false;
#endif
}

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string image = std::string(WB_SHARED_DIR) + "/testdata/coco/images/000000067180.jpg";
  std::string rgb, size;
  int runs = 30;
  std::vector<std::string> models = pose::engine::estimator_models();
  std::vector<std::string> devices = {"cpu"};
  if (torch::cuda::is_available()) devices.emplace_back("cuda");
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--image")
      image = value;
    else if (flag == "--rgb")
      rgb = value;
    else if (flag == "--size")
      size = value;
    else if (flag == "--runs")
      runs = std::max(3, std::stoi(value));
    else if (flag == "--models")
      models = bench::split_list(value);
    else if (flag == "--devices")
      devices = bench::split_list(value);
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  Frame frame;
  if (!load_frame(image, rgb, size, &frame)) {
    std::cerr << "pose_engine_bench: cannot load the frame (" << (rgb.empty() ? image : rgb) << ")\n";
    return 2;
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  struct Setting {
    std::string device;
    pose::engine::Precision precision;
    int threads;
  };
  std::vector<Setting> settings;
  for (const auto& device : devices) {
    if (device == "cpu") {
      settings.push_back({"cpu", pose::engine::Precision::kFloat32, 1});
      if (cores > 1) settings.push_back({"cpu", pose::engine::Precision::kFloat32, cores});
    } else {
      settings.push_back({"cuda", pose::engine::Precision::kFloat32, cores});
      settings.push_back({"cuda", pose::engine::Precision::kFloat16, cores});
    }
  }
  core::libtorch::keep_freed_memory();
  nlohmann::json results = nlohmann::json::array();
  const pose::engine::Image view{frame.pixels.data(), frame.width, frame.height, 0, pose::engine::PixelFormat::kBgr};
  for (const auto& setting : settings) {
    at::set_num_threads(setting.threads);
    // fp32 means fp32: TF32 would trade the reference's accuracy for speed that fp16 offers honestly.
    if (setting.device == "cuda") core::libtorch::allow_tf32(false);
    for (const auto& model : models) {
      pose::engine::EstimatorOptions options;
      options.model = model;
      options.device = setting.device == "cuda" ? pose::engine::Device::kCuda : pose::engine::Device::kCpu;
      options.precision = setting.precision;
      options.max_people = 1;  // one person per frame, as single-pose MoveNet
      auto estimator = pose::engine::Estimator::create(options);
      if (!estimator) {
        std::cerr << model << ": " << estimator.error().message << "\n";
        return 1;
      }
      const std::vector<int> batches =
          setting.device == "cuda" ? std::vector<int>{1, 4, 16, 64, 256} : std::vector<int>{1, 4, 16};
      for (int batch : batches) {
        const std::vector<pose::engine::Image> frames(static_cast<size_t>(batch), view);
        nlohmann::json keypoints;  // of the first frame's first person, to compare precisions and devices
        const auto once = [&] {
          auto people = (*estimator)->estimate_batch(frames);
          if (setting.device == "cuda") torch::cuda::synchronize();
          if (!people.ok() || people->front().empty()) return false;
          keypoints = nlohmann::json::array();
          for (const auto& k : people->front().front().keypoints) keypoints.push_back({k.x, k.y, k.score});
          return true;
        };
        bool found = true;
        for (int i = 0; i < 3; ++i) found = once() && found;
        std::vector<double> times_ms;
        for (int i = 0; i < runs; ++i) {
          const auto start = std::chrono::steady_clock::now();
          found = once() && found;
          times_ms.push_back(
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        }
        const double ms = median(times_ms);
        results.push_back({{"model", model},
                           {"device", setting.device},
                           {"precision", setting.precision == pose::engine::Precision::kFloat16 ? "fp16" : "fp32"},
                           {"threads", setting.threads},
                           {"batch", batch},
                           {"median_ms_per_batch", ms},
                           {"median_ms_per_frame", ms / batch},
                           {"frames_per_s", 1000.0 * batch / ms},
                           {"person_found", found},
                           {"keypoints", keypoints}});
        std::cerr << model << " " << setting.device << " " << results.back()["precision"].get<std::string>() << " t"
                  << setting.threads << " b" << batch << ": " << ms / batch << " ms/frame\n";
      }
    }
  }
  std::cout << nlohmann::json{{"bench", "pose_engine"},
                              {"frame", {{"width", frame.width}, {"height", frame.height}}},
                              {"runs", runs},
                              {"results", results}}
                   .dump(2)
            << "\n";
  return 0;
}
