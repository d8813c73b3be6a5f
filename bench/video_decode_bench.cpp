// video_decode_bench: decoding a clip through each pose::video back-end (OpenCV, FFmpeg in software, NVDEC where a
// GPU is), downscaled to the pipeline's size, one source at a time on the caller's thread. Prints JSON: per
// back-end the median over runs of milliseconds per frame (decode, convert, downscale), and the ratio of each
// against OpenCV measured in the same run.
//
//   video_decode_bench [--clip push-up_26.mp4] [--max-side 640] [--runs 5] [--decoders opencv,ffmpeg,nvdec]
//                      [--threads N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_args.h"
#include "pose/video/video.h"

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// Milliseconds per frame for one pass over the clip; an error message instead when the back-end does not open.
struct Pass {
  double ms_per_frame = 0;
  int64_t frames = 0;
  std::string error;
};

Pass decode_once(const pose::video::SourceOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto source = pose::video::Source::open(options);
  if (!source) return {0, 0, source.error().message};
  Pass pass;
  for (;;) {
    auto frame = (*source)->next();
    if (!frame) return {0, pass.frames, frame.error().message};
    if (!*frame) break;
    ++pass.frames;
  }
  const double elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  pass.ms_per_frame = pass.frames > 0 ? elapsed_ms / static_cast<double>(pass.frames) : 0;
  return pass;
}

}  // namespace

int main(int argc, char** argv) {
  std::string clip = WB_SHARED_DIR "/testdata/videos/push-up_26.mp4";
  std::string decoders = "opencv,ffmpeg,nvdec";
  int max_side_px = 640, runs = 5, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--clip")
      clip = value;
    else if (flag == "--max-side")
      max_side_px = std::stoi(value);
    else if (flag == "--runs")
      runs = std::max(1, std::stoi(value));
    else if (flag == "--decoders")
      decoders = value;
    else if (flag == "--threads")
      threads = std::stoi(value);
    else {
      std::cerr << "video_decode_bench: unknown flag " << flag << "\n";
      return 2;
    }
  }
  nlohmann::json results = nlohmann::json::object();
  std::map<std::string, double> medians;
  for (const std::string& decoder : bench::split_list(decoders)) {
    const pose::video::SourceOptions options{
        .uri = clip, .max_side_px = max_side_px, .decoder = decoder, .decode_threads = threads};
    std::vector<double> ms;
    Pass pass;
    for (int run = 0; run <= runs && pass.error.empty(); ++run) {
      pass = decode_once(options);
      if (run > 0 && pass.error.empty()) ms.push_back(pass.ms_per_frame);  // the first pass warms caches
    }
    if (!pass.error.empty()) {
      results[decoder] = {{"error", pass.error}};
      continue;
    }
    medians[decoder] = median(ms);
    results[decoder] = {{"median_ms_per_frame", medians[decoder]}, {"frames", pass.frames}, {"runs", runs}};
  }
  if (medians.count("opencv") != 0) {
    for (const auto& [decoder, ms] : medians) {
      if (decoder != "opencv") results[decoder]["speedup_vs_opencv"] = medians["opencv"] / ms;
    }
  }
  const nlohmann::json report = {{"benchmark", "video_decode"},
                                 {"clip", clip},
                                 {"max_side_px", max_side_px},
                                 {"decode_threads", threads},
                                 {"results", results}};
  std::cout << report.dump(2) << "\n";
  return 0;
}
