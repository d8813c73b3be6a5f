// pose: the pose analyzer's command line. Commands:
//   pose models   list the pretrained models and verify their files against the pinned SHA-256 digests
//   pose eval     COCO keypoint AP/AR of a results file against COCO ground truth
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/config/config.h"
#include "pose/eval/coco_eval.h"
#include "pose/models/models.h"

namespace {

using core::config::Option;
using core::config::OptionKind;

std::vector<Option> option_table() {
  return {
      {"config", "config", "POSE_CONFIG", "", "TOML config file", OptionKind::kConfigFile},
      {"models.dir", "models-dir", "WB_MODELS_DIR", pose::models::default_model_dir().string(),
       "folder holding the pose model files", OptionKind::kPath},
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
                 "  eval     --gt person_keypoints.json --dt results.json: COCO keypoint AP and AR\n\n"
              << core::config::usage(table);
    return args.empty() && !config->help_requested() ? 2 : 0;
  }
  if (args.front() == "models") return list_models(*config);
  if (args.front() == "eval") return evaluate(*config);
  std::cerr << "pose: unknown command '" << args.front() << "'; `pose --help` lists the commands\n";
  return 2;
}
