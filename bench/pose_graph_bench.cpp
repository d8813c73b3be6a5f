// pose_graph_bench: median latency of the seven pose graphs run by pose::graph on this machine, on the reference
// runner's synthetic input, printed as JSON. The peer is tfjs-wasm (SIMD, 1 thread) as measured on the same machine
// by `node tools/tfjs-reference/reference.mjs --bench` (its bench__synthetic.json); the ratio is peer / ours.
//
//   pose_graph_bench [--threads 2] [--runs 30] [--warmup 5] [--models a,b] [--peer FILE] [--model-dir DIR]
//                    [--keep-heap 1]
//
// --keep-heap 1 (the default) stops glibc from returning freed memory to the kernel between runs, as an
// application serving frames should: LibTorch allocates every activation with malloc, and the megabyte-sized
// ones are otherwise unmapped when freed and page-faulted back in, zero-filled, on the next frame (about a third
// of BlazePose-Lite's run time on this machine). It is a process-wide setting, so it belongs in an application's
// start-up, not in pose::graph.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <malloc.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "bench_args.h"
#include "core/libtorch/libtorch.h"
#include "pose/graph/graph.h"
#include "pose/graph/test_support/synthetic_input.h"
#include "pose/models/models.h"

namespace {

using pose::graph::test_support::ReferenceModel;

struct Options {
  int threads = 2;
  int runs = 30;
  int warmup = 5;
  std::vector<std::string> models;  // empty: all seven
  std::filesystem::path peer = std::filesystem::path(WB_SOURCE_DIR) / "tools/tfjs-reference/out/bench__synthetic.json";
  std::filesystem::path model_dir = pose::models::default_model_dir();
  bool keep_heap = true;
  bool cuda = false;
  bool fp16 = false;
  int batch = 1;
  bool profile = false;  // add a per-op-type time breakdown from one extra, synchronised run
};

constexpr const char* kUsage =
    "usage: pose_graph_bench [--threads N=2] [--runs N=30] [--warmup N=5] [--models a,b,...]\n"
    "                        [--peer bench__synthetic.json] [--model-dir DIR] [--keep-heap 0|1]\n"
    "                        [--device cpu|cuda] [--fp16 0|1] [--batch N=1] [--profile 0|1]\n"
    "Batches above 1 run the models that take them: BlazePose, and single-pose MoveNet cut as the engine cuts it.\n";

bool parse_options(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    if (flag == "--threads") {
      options->threads = std::stoi(value);
    } else if (flag == "--runs") {
      options->runs = std::stoi(value);
    } else if (flag == "--warmup") {
      options->warmup = std::stoi(value);
    } else if (flag == "--models") {
      options->models = bench::split_list(value);
    } else if (flag == "--peer") {
      options->peer = value;
    } else if (flag == "--model-dir") {
      options->model_dir = value;
    } else if (flag == "--keep-heap") {
      options->keep_heap = value != "0";
    } else if (flag == "--device") {
      options->cuda = value == "cuda";
    } else if (flag == "--fp16") {
      options->fp16 = value != "0";
    } else if (flag == "--batch") {
      options->batch = std::stoi(value);
    } else if (flag == "--profile") {
      options->profile = value != "0";
    } else {
      return false;
    }
  }
  return options->threads > 0 && options->runs > 0 && options->warmup >= 0 && options->batch > 0;
}

// Model name -> tfjs-wasm median from the reference runner's bench file; empty when there is none.
std::map<std::string, double> peer_medians(const std::filesystem::path& path) {
  std::map<std::string, double> medians;
  std::ifstream file(path);
  if (!file) return medians;
  const auto bench = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (!bench.is_object() || !bench.contains("results")) return medians;
  for (const auto& row : bench["results"]) medians[row.value("model", "")] = row.value("medianMs", 0.0);
  return medians;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Loads and times one model; null on failure (the message goes to stderr), and for a batch the model cannot take.
nlohmann::json bench_model(const ReferenceModel& model, const Options& options, double peer_ms) {
  pose::graph::GraphOptions graph_options;
  graph_options.device = options.cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  graph_options.compute = options.fp16 ? pose::graph::ComputeType::kFloat16 : pose::graph::ComputeType::kFloat32;
  const pose::models::ModelSpec* spec = pose::models::find_model(model.name);
  const bool cut = options.batch > 1 && spec != nullptr && spec->cut != nullptr;
  if (cut) {
    graph_options.inputs = {std::string(spec->cut->input)};
    graph_options.outputs.assign(spec->cut->outputs.begin(), spec->cut->outputs.end());
    graph_options.any_batch = true;
  }
  auto graph = pose::graph::Graph::load(options.model_dir / (std::string(model.name) + ".json"), graph_options);
  if (!graph) {
    std::cerr << graph.error().message << "\n";
    return nullptr;
  }
  const auto rgb = pose::graph::test_support::synthetic_rgb(model.size, model.size);
  at::Tensor input = pose::graph::test_support::model_input(rgb, model.size, model.size, model.normalization);
  if (cut) input = input.to(at::kFloat);
  input = input.repeat({options.batch, 1, 1, 1}).to(graph_options.device);
  const auto run_once = [&](pose::graph::OpProfile* profile) {
    auto outputs = (*graph)->run({&input, 1}, profile);
    if (options.cuda) torch::cuda::synchronize();
    return outputs;
  };
  std::vector<double> times_ms;
  for (int i = 0; i < options.warmup + options.runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto outputs = run_once(nullptr);
    const auto stop = std::chrono::steady_clock::now();
    if (!outputs) {
      std::cerr << outputs.error().message << "\n";
      return nullptr;
    }
    if (i >= options.warmup) times_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  const double median_ms = median(times_ms);
  nlohmann::json row = {{"model", model.name},
                        {"input", std::to_string(model.size) + "x" + std::to_string(model.size)},
                        {"device", options.cuda ? "cuda" : "cpu"},
                        {"precision", options.fp16 ? "fp16" : "fp32"},
                        {"batch", options.batch},
                        {"median_ms", median_ms},
                        {"frames_per_s", 1000.0 * options.batch / median_ms},
                        {"min_ms", *std::min_element(times_ms.begin(), times_ms.end())}};
  if (peer_ms > 0 && !options.cuda && options.batch == 1) {
    row["tfjs_wasm_median_ms"] = peer_ms;
    row["speedup_vs_tfjs_wasm"] = peer_ms / median_ms;
  }
  if (options.profile) {
    pose::graph::OpProfile profile;
    if (run_once(&profile)) {
      std::vector<std::pair<std::string, pose::graph::OpTiming>> ops(profile.begin(), profile.end());
      std::sort(ops.begin(), ops.end(),
                [](const auto& a, const auto& b) { return a.second.total_ms > b.second.total_ms; });
      for (const auto& [op, timing] : ops)
        row["ops"].push_back({{"op", op}, {"calls", timing.calls}, {"ms", timing.total_ms}});
    }
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, &options)) {
    std::cerr << kUsage;
    return 2;
  }
  at::set_num_threads(options.threads);
  if (options.keep_heap) {
    core::libtorch::keep_freed_memory();
  }
  if (options.cuda) core::libtorch::allow_tf32(false);  // fp32 means fp32; fp16 is the fast mode
  const auto peers = peer_medians(options.peer);
  nlohmann::json rows = nlohmann::json::array();
  bool ok = true;
  for (const auto& model : pose::graph::test_support::kReferenceModels) {
    if (!options.models.empty() &&
        std::find(options.models.begin(), options.models.end(), model.name) == options.models.end()) {
      continue;
    }
    // MultiPose's graph takes one image at a time, whatever its batch dimension says.
    if (options.batch > 1 && std::string_view(model.name) == "movenet-multipose") continue;
    const auto peer = peers.find(std::string(model.name));
    auto row = bench_model(model, options, peer == peers.end() ? 0.0 : peer->second);
    ok = ok && !row.is_null();
    if (!row.is_null()) rows.push_back(std::move(row));
  }
  const nlohmann::json report = {
      {"threads", at::get_num_threads()}, {"keep_heap", options.keep_heap}, {"runs", options.runs},
      {"warmup", options.warmup},         {"peer", options.peer.string()},  {"results", rows}};
  std::cout << report.dump(1) << "\n";
  return ok ? 0 : 1;
}
