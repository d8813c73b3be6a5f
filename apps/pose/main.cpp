// pose: the pose analyzer's command line. Commands:
//   pose models   list the pretrained models and verify their files against the pinned SHA-256 digests
//   pose detect   people and keypoints in images, written in the COCO results format
//   pose eval     COCO keypoint AP/AR of a results file against COCO ground truth
//   pose analyze  streams through the analysis pipeline: reps, form, anomalies (analyze.cpp)
//   pose bench-streams  N concurrent copies of a source: analysed fps, drops, latency (analyze.cpp)
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <chrono>
#include <map>
#include "analyze.h"
#include "core/build_info.h"
#include "core/config/config.h"
#include "core/libtorch/libtorch.h"
#include "pose/analysis/analysis.h"
#include "pose/engine/engine.h"
#include "pose/eval/coco_eval.h"
#include "pose/models/models.h"

#ifdef WB_HAVE_OPENCV
#include <opencv2/imgcodecs.hpp>
#endif

namespace {

using core::config::Option;
using core::config::OptionKind;

std::vector<Option> option_table() {
  const std::string workspace = core::kWorkspaceDir;
  return {
      {"profile", "profile", "WB_PROFILE", workspace + "/var/machine-profile.toml",
       "machine profile written by doctor (device, model, batch for this hardware)", OptionKind::kConfigFile},
      {"config", "config", "POSE_CONFIG", "", "TOML config file", OptionKind::kConfigFile},
      {"models.dir", "models-dir", "WB_MODELS_DIR", pose::models::default_model_dir().string(),
       "folder holding the pose model files", OptionKind::kPath},
      {"pose.model", "model", "POSE_MODEL", "movenet-lightning", "pose model", OptionKind::kString,
       pose::engine::estimator_models()},
      {"pose.device", "device", "POSE_DEVICE", "cpu", "where inference runs", OptionKind::kString, {"cpu", "cuda"}},
      {"pose.precision",
       "precision",
       "POSE_PRECISION",
       "fp32",
       "fp16 is CUDA only",
       OptionKind::kString,
       {"fp32", "fp16"}},
      {"pose.max_people", "max-people", "", "6", "most people reported per image", OptionKind::kInt},
      {"pose.batch_size", "max-batch", "POSE_MAX_BATCH", "8", "frames per inference call, across streams",
       OptionKind::kInt},
      {"pose.threads", "threads", "POSE_THREADS", "0", "CPU threads for inference (0: every core)", OptionKind::kInt},
      {"pose.streams_per_device", "streams", "", "4",
       "bench-streams: concurrent copies of the source (the profile: what this machine holds at 30 fps)",
       OptionKind::kInt},
      {"pose.min_score", "min-score", "", "0.2", "people scoring lower are dropped", OptionKind::kFloat},
      {"out.json", "json", "", "", "detect: COCO results file; analyze: summary file", OptionKind::kPath},
      {"analyze.exercise", "exercise", "POSE_EXERCISE", "auto", "exercise to count, or auto", OptionKind::kString},
      {"analyze.exercises_dir", "exercises-dir", "POSE_EXERCISES_DIR", pose::analysis::default_exercise_dir().string(),
       "folder of exercise definitions (*.toml)", OptionKind::kPath},
      {"analyze.events", "events", "", "", "analyze: write events as JSON lines here", OptionKind::kPath},
      {"analyze.events_frames", "events-frames", "", "false", "analyze: per-frame events too (large)",
       OptionKind::kBool},
      {"analyze.annotate", "annotate", "", "", "analyze: write an annotated video here (.mp4, .avi or a folder)",
       OptionKind::kPath},
      {"analyze.realtime", "realtime", "", "false", "pace files at their frame rate, as a camera would deliver",
       OptionKind::kBool},
      {"analyze.decoder",
       "decoder",
       "POSE_DECODER",
       "auto",
       "video files and streams: nvdec decodes on the GPU",
       OptionKind::kString,
       {"auto", "opencv", "ffmpeg", "nvdec"}},
      {"analyze.db", "db", "POSE_DB", "",
       "analyze, events: the event store, a SQLite file or a postgresql:// URI (empty: none)", OptionKind::kString},
      {"analyze.spool", "spool", "POSE_SPOOL", "var/spool",
       "analyze: where events wait on disk while the database is down", OptionKind::kPath},
      {"events.stream", "stream", "", "", "events: only this stream", OptionKind::kString},
      {"events.kind", "kind", "", "", "events: only rep, form, anomaly or status", OptionKind::kString},
      {"events.limit", "limit", "", "1000000", "events: at most this many", OptionKind::kInt},
      {"analyze.loops", "loops", "", "1", "play video files this many times (0: until stopped)", OptionKind::kInt},
      {"analyze.max_side", "max-side", "POSE_MAX_SIDE", "640",
       "downscale frames so the longer side is at most this (0 keeps the size)", OptionKind::kInt},
      {"runtime.max_wait_ms", "max-wait-ms", "", "2", "how long a partial batch waits for more streams",
       OptionKind::kFloat},
      {"bench.source", "source", "", "", "bench-streams: the video file to copy", OptionKind::kPath},
      {"bench.trace", "trace", "", "", "bench-streams: write every frame's stage timestamps here (CSV)",
       OptionKind::kPath},
      {"bench.no_realtime", "no-realtime", "", "false", "bench-streams: read as fast as possible, not paced",
       OptionKind::kBool},
      {"serve.host", "host", "POSE_HOST", "127.0.0.1", "serve: address to listen on (0.0.0.0: every interface)",
       OptionKind::kString},
      {"serve.port", "port", "POSE_PORT", "8400", "serve: port to listen on (0: any free one)", OptionKind::kInt},
      {"serve.data_dir", "data-dir", "POSE_DATA_DIR", workspace + "/var/pose",
       "serve: streams, added exercises, the spool and (by default) the SQLite event store", OptionKind::kPath},
      {"serve.media_dirs", "media-dir", "POSE_MEDIA_DIRS", workspace + "/var/media",
       "serve: folders file sources may be read from (comma-separated)", OptionKind::kString},
      {"serve.retention_days", "retention-days", "POSE_RETENTION_DAYS", "0",
       "serve: PostgreSQL keeps events this many days, dropping whole months (0: forever)", OptionKind::kInt},
      {"serve.tokens", "token", "POSE_TOKEN", "",
       "serve: bearer token(s) for changes (comma-separated); empty: no authentication", OptionKind::kString},
      {"serve.public_read", "public-read", "", "true", "serve: reads need no token even when tokens are set",
       OptionKind::kBool},
      {"serve.cors_origins", "cors-origins", "POSE_CORS_ORIGINS", "",
       "serve: browser origins allowed to call the API (comma-separated, * for any)", OptionKind::kString},
      {"serve.web_dir", "web-dir", "", workspace + "/web/dist", "serve: the built dashboard", OptionKind::kPath},
      {"serve.max_body", "max-body", "", "65536", "serve: largest request body in bytes", OptionKind::kInt},
      {"serve.client_queue", "client-queue", "", "256",
       "serve: frames a WebSocket client may have waiting before it loses some", OptionKind::kInt},
      {"serve.log_level", "log-level", "POSE_LOG_LEVEL", "info", "serve: debug, info, warn or error",
       OptionKind::kString},
      {"eval.gt", "gt", "", "", "COCO person_keypoints ground truth (JSON)", OptionKind::kPath},
      {"eval.dt", "dt", "", "", "detections in the COCO results format (JSON)", OptionKind::kPath},
  };
}

core::Result<std::string> read_file(const std::filesystem::path& path, const char* what) {
  if (path.empty()) return core::make_error(core::ErrorCode::kInvalidArgument, std::string("missing --") + what);
  std::ifstream in(path);
  if (!in) return core::make_error(core::ErrorCode::kNotFound, "cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

#ifdef WB_HAVE_OPENCV
// COCO image ids: from --gt's images by file name when given, else the number in a COCO-style file name.
core::Result<int64_t> image_id(const std::filesystem::path& path, const std::map<std::string, int64_t>& by_name) {
  const std::string name = path.filename().string();
  if (!by_name.empty()) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) return core::make_error(core::ErrorCode::kNotFound, name + " is not an image of --gt");
    return it->second;
  }
  const std::string stem = path.stem().string();
  std::string digits;
  for (char c : stem)
    if (c >= '0' && c <= '9') digits += c;
  if (digits.empty() || digits.size() > 18) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            name + " has no image number in its name: pass --gt to look ids up by file name");
  }
  return std::stoll(digits);
}
#endif

int detect(const core::config::Config& config) {
#ifndef WB_HAVE_OPENCV
  (void)config;
  std::cerr << "pose detect: this build has no OpenCV to decode images\n";
  return 2;
#else
  const auto& args = config.positional();
  if (args.size() < 2) {
    std::cerr << "pose detect: give one or more images: pose detect IMAGES... --model NAME --json OUT\n";
    return 2;
  }
  std::map<std::string, int64_t> by_name;
  if (!config.path("eval.gt").empty()) {
    auto text = read_file(config.path("eval.gt"), "gt");
    auto truth = text ? pose::eval::parse_ground_truth(*text, config.text("eval.gt"))
                      : core::Result<pose::eval::GroundTruth>(text.error());
    if (!truth) {
      std::cerr << "pose detect: " << truth.error().message << "\n";
      return 2;
    }
    for (const auto& image : truth->images) by_name[image.file_name] = image.id;
  }
  pose::engine::EstimatorOptions options = pose_cli::estimator_options(config);
  options.track = false;  // photos are unrelated frames
  core::libtorch::set_threads(static_cast<int>(config.integer("pose.threads")));
  core::libtorch::keep_freed_memory();
  if (options.device == pose::engine::Device::kCuda) {
    core::libtorch::allow_tf32(options.precision != pose::engine::Precision::kFloat32);
  }
  auto estimator = pose::engine::Estimator::create(options);
  if (!estimator) {
    std::cerr << "pose detect: " << estimator.error().message << "\n";
    return 2;
  }
  std::vector<pose::eval::Detection> detections;
  int failures = 0;
  double total_ms = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::filesystem::path path = args[i];
    auto id = image_id(path, by_name);
    const cv::Mat bgr = id ? cv::imread(path.string(), cv::IMREAD_COLOR) : cv::Mat();
    if (!id || bgr.empty()) {
      std::cerr << "pose detect: " << (!id ? id.error().message : path.string() + ": not an image, or unreadable")
                << "\n";
      ++failures;
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    auto people =
        (*estimator)
            ->estimate({bgr.data, bgr.cols, bgr.rows, static_cast<int>(bgr.step), pose::engine::PixelFormat::kBgr});
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!people) {
      std::cerr << "pose detect: " << path.string() << ": " << people.error().message << "\n";
      ++failures;
      continue;
    }
    for (const auto& person : *people) {
      pose::eval::Detection detection{*id, {}, person.score};
      for (size_t k = 0; k < pose::engine::kCocoKeypointCount; ++k) {
        detection.keypoints[3 * k] = person.keypoints[k].x;
        detection.keypoints[3 * k + 1] = person.keypoints[k].y;
        detection.keypoints[3 * k + 2] = person.keypoints[k].score;
      }
      detections.push_back(detection);
    }
  }
  const size_t images = args.size() - 1 - static_cast<size_t>(failures);
  std::printf("%s: %zu people in %zu images (%.1f ms per image on %s)", options.model.c_str(), detections.size(),
              images, images > 0 ? total_ms / static_cast<double>(images) : 0.0, config.text("pose.device").c_str());
  if (!config.path("out.json").empty()) {
    std::ofstream out(config.path("out.json"));
    out << pose::eval::detections_json(detections) << "\n";
    if (!out) {
      std::cerr << "\npose detect: cannot write " << config.text("out.json") << "\n";
      return 2;
    }
    std::printf(", written to %s", config.text("out.json").c_str());
  }
  std::printf("\n");
  return failures == 0 ? 0 : 1;
#endif
}

int evaluate(const core::config::Config& config) {
  const auto gt_path = config.path("eval.gt");
  const auto dt_path = config.path("eval.dt");
  auto gt_text = read_file(gt_path, "gt");
  auto dt_text = gt_text ? read_file(dt_path, "dt") : gt_text;
  if (!gt_text || !dt_text) {
    std::cerr << "pose eval: " << (!gt_text ? gt_text : dt_text).error().message << "\n";
    return 2;
  }
  auto truth = pose::eval::parse_ground_truth(*gt_text, gt_path.string());
  auto detections = truth ? pose::eval::parse_detections(*dt_text, dt_path.string())
                          : core::Result<std::vector<pose::eval::Detection>>(truth.error());
  if (!truth || !detections) {
    std::cerr << "pose eval: " << (!truth ? truth.error() : detections.error()).message << "\n";
    return 2;
  }
  auto summary = pose::eval::evaluate(*truth, *detections);
  if (!summary) {
    std::cerr << "pose eval: " << summary.error().message << "\n";
    return 2;
  }
  const auto line = [](const char* name, const char* area, double value) {
    std::printf(" %-28s @[ OKS=0.50:0.95 | area=%6s | maxDets=20 ] = %.3f\n", name, area, value);
  };
  std::printf("%zu images, %zu people with keypoints, %zu detections\n", summary->images, summary->people,
              summary->detections);
  line("Average Precision  (AP)", "all", summary->ap);
  std::printf(" %-28s @[ OKS=0.50      | area=   all | maxDets=20 ] = %.3f\n", "Average Precision  (AP)",
              summary->ap50);
  std::printf(" %-28s @[ OKS=0.75      | area=   all | maxDets=20 ] = %.3f\n", "Average Precision  (AP)",
              summary->ap75);
  line("Average Precision  (AP)", "medium", summary->ap_medium);
  line("Average Precision  (AP)", "large", summary->ap_large);
  line("Average Recall     (AR)", "all", summary->ar);
  std::printf(" %-28s @[ OKS=0.50      | area=   all | maxDets=20 ] = %.3f\n", "Average Recall     (AR)",
              summary->ar50);
  std::printf(" %-28s @[ OKS=0.75      | area=   all | maxDets=20 ] = %.3f\n", "Average Recall     (AR)",
              summary->ar75);
  line("Average Recall     (AR)", "medium", summary->ar_medium);
  line("Average Recall     (AR)", "large", summary->ar_large);
  return 0;
}

int list_models(const core::config::Config& config) {
  const auto checks = pose::models::verify_models(config.path("models.dir"));
  int failed = 0;
  for (size_t i = 0; i < checks.size(); ++i) {
    const auto& spec = pose::models::catalog()[i];
    std::cout << (checks[i].ok ? "ok    " : "FAIL  ") << spec.name << "  "
              << (spec.input_size > 0 ? std::to_string(spec.input_size) + " px" : std::string("dynamic")) << "  "
              << spec.description << "\n";
    if (!checks[i].ok) {
      std::cout << "      " << checks[i].problem << "\n";
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

namespace pose_cli {

pose::engine::EstimatorOptions estimator_options(const core::config::Config& config) {
  pose::engine::EstimatorOptions options;
  options.model = config.text("pose.model");
  options.model_dir = config.path("models.dir");
  options.device = config.text("pose.device") == "cuda" ? pose::engine::Device::kCuda : pose::engine::Device::kCpu;
  options.precision =
      config.text("pose.precision") == "fp16" ? pose::engine::Precision::kFloat16 : pose::engine::Precision::kFloat32;
  options.max_people = static_cast<int>(config.integer("pose.max_people"));
  options.min_person_score = static_cast<float>(config.number("pose.min_score"));
  return options;
}

}  // namespace pose_cli

int main(int argc, char** argv) {
  const auto table = option_table();
  core::config::Sources sources;
  sources.args.assign(argv + 1, argv + argc);
  auto config = core::config::Config::resolve(table, sources);
  if (!config) {
    std::cerr << "pose: " << config.error().message << "\n";
    return 2;
  }
  const auto& args = config->positional();
  if (config->help_requested() || args.empty()) {
    std::cout << "Usage: pose COMMAND [options]\n\nCommands:\n"
                 "  models   list the pretrained models and verify their files\n"
                 "  detect   IMAGES... [--model NAME] [--device cpu|cuda] [--gt GT.json] --json OUT\n"
                 "  eval     --gt person_keypoints.json --dt results.json: COCO keypoint AP and AR\n"
                 "  analyze  SOURCE... [--exercise NAME|auto] [--json SUMMARY] [--events EVENTS.jsonl]\n"
                 "           [--annotate OUT.mp4] [--realtime] [--db pose.db]: reps, form feedback and anomalies\n"
                 "           per person (--db: stored, SQLite or postgresql://)\n"
                 "  events   --db pose.db [--stream ID] [--kind rep] [--exercise NAME]: stored events, JSON lines\n"
                 "  bench-streams --streams N --source FILE: analysed fps, drops and latency per stream (JSON)\n"
                 "  serve    [--port 8400] [--media-dir DIR] [--token T] [--db DB]: the service (REST, WebSocket,\n"
                 "           dashboard, metrics) until SIGINT/SIGTERM\n\n"
              << core::config::usage(table);
    return args.empty() && !config->help_requested() ? 2 : 0;
  }
  if (args.front() == "models") return list_models(*config);
  if (args.front() == "eval") return evaluate(*config);
  if (args.front() == "detect") return detect(*config);
#ifdef WB_HAVE_RUNTIME
  if (args.front() == "analyze") return pose_cli::analyze(*config);
#ifdef WB_HAVE_STORE
  if (args.front() == "events") return pose_cli::events(*config);
#endif
#ifdef WB_HAVE_SERVICE
  if (args.front() == "serve") return pose_cli::serve(*config);
#endif
  if (args.front() == "bench-streams") return pose_cli::bench_streams(*config);
#endif
  std::cerr << "pose: unknown command '" << args.front() << "'; `pose --help` lists the commands\n";
  return 2;
}
