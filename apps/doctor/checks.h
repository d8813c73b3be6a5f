#pragma once
// doctor's checks: gather() reads the machine (files, NVML, LibTorch, OpenCV, model files); evaluate() is a pure
// function from those facts to rows with a status and, for problems, the one-line fix.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/libtorch/libtorch.h"
#include "core/result.h"
#include "core/sys/sys.h"
#include "pose/models/models.h"

namespace doctor {

enum class Status { kOk, kInfo, kWarn, kFail };
const char* to_string(Status status);

struct Check {
  std::string group;  // "system", "gpu", "libtorch", "video", "models"
  std::string name;
  Status status = Status::kOk;
  std::string detail;
  std::string fix;  // what to run or change; empty when nothing is wrong
};

struct VideoIo {
  std::string opencv_version;
  bool ffmpeg = false;
  bool v4l2 = false;
};

struct Facts {
  std::optional<core::sys::OsInfo> os;
  std::optional<core::sys::CpuInfo> cpu;
  std::optional<core::sys::MemoryInfo> memory;
  std::optional<core::sys::DiskInfo> disk;
  core::sys::GpuReport gpus;
  core::libtorch::LibTorchInfo libtorch;
  std::optional<VideoIo> video;  // nullopt: this build has no OpenCV
  std::filesystem::path model_dir;
  std::vector<pose::models::ModelCheck> models;
};

struct GatherOptions {
  std::filesystem::path model_dir;
  std::filesystem::path data_dir;  // whose filesystem the disk check looks at
  std::string nvml_library = core::sys::kNvmlLibrary;
};

Facts gather(const GatherOptions& options);
std::vector<Check> evaluate(const Facts& facts);

// 0 when every required check passed, 1 when one failed (warnings do not fail).
int exit_code(const std::vector<Check>& checks);

std::string render_table(const std::vector<Check>& checks, bool color);

}  // namespace doctor
