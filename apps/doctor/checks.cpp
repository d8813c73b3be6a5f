#include "checks.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#ifdef WB_HAVE_OPENCV
#include <opencv2/core/version.hpp>
#include <opencv2/videoio/registry.hpp>
#endif

namespace doctor {
namespace {

std::string gib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / static_cast<double>(1ull << 30));
  return text;
}

std::optional<VideoIo> probe_video() {
#ifdef WB_HAVE_OPENCV
  VideoIo video;
  video.opencv_version = CV_VERSION;
  video.ffmpeg = cv::videoio_registry::hasBackend(cv::CAP_FFMPEG);
  video.v4l2 = cv::videoio_registry::hasBackend(cv::CAP_V4L2);
  return video;
#else
  return std::nullopt;
#endif
}

void system_checks(const Facts& facts, std::vector<Check>* out) {
  if (!facts.os) {
    out->push_back({"system", "os", Status::kWarn, "cannot read /etc/os-release", ""});
  } else {
    const bool debian12 = facts.os->id == "debian" && facts.os->version_id == "12";
    out->push_back({"system", "os", debian12 ? Status::kOk : Status::kWarn,
                    facts.os->pretty_name + ", kernel " + facts.os->kernel,
                    debian12 ? "" : "tested on Debian 12; scripts/setup needs apt and Debian package names"});
  }
  if (!facts.cpu) {
    out->push_back({"system", "cpu", Status::kWarn, "cannot read /proc/cpuinfo", ""});
  } else {
    const auto& cpu = *facts.cpu;
    std::ostringstream detail;
    detail << cpu.model << ", " << cpu.usable_cores << " usable cores (" << cpu.logical_cores << " logical, "
           << cpu.physical_cores << " physical), AVX2 " << (cpu.avx2 ? "yes" : "no") << ", AVX-512 "
           << (cpu.avx512f ? "yes" : "no");
    out->push_back({"system", "cpu", cpu.avx2 ? Status::kOk : Status::kWarn, detail.str(),
                    cpu.avx2 ? "" : "without AVX2, CPU inference runs several times slower"});
  }
  if (facts.memory) {
    const bool enough = facts.memory->total_bytes >= (8ull << 30);
    out->push_back({"system", "memory", enough ? Status::kOk : Status::kWarn,
                    gib(facts.memory->total_bytes) + " total, " + gib(facts.memory->available_bytes) + " available",
                    enough ? "" : "under 8 GiB: building LibTorch code may run out of memory; use `make -j1`"});
  }
  if (facts.disk) {
    const uint64_t free = facts.disk->free_bytes;
    const Status status = free < (1ull << 30) ? Status::kFail : free < (5ull << 30) ? Status::kWarn : Status::kOk;
    out->push_back({"system", "disk", status,
                    gib(free) + " free of " + gib(facts.disk->total_bytes) + " at " + facts.disk->path.string(),
                    status == Status::kOk ? "" : "free disk space: builds, models and recordings need several GB"});
  }
}

void gpu_checks(const Facts& facts, std::vector<Check>* out) {
  if (facts.gpus.gpus.empty()) {
    out->push_back({"gpu", "nvidia", Status::kInfo, "none: " + facts.gpus.reason + "; both tools run on the CPU", ""});
    return;
  }
  for (const auto& gpu : facts.gpus.gpus) {
    std::ostringstream detail;
    detail << gpu.name << ", " << gib(gpu.memory_total_bytes) << " total, " << gib(gpu.memory_free_bytes)
           << " free, compute " << gpu.compute_capability_major << "." << gpu.compute_capability_minor << ", driver "
           << facts.gpus.driver_version << " (CUDA " << facts.gpus.cuda_driver_version << ")";
    const bool old = gpu.compute_capability_major < 6;
    out->push_back({"gpu", "gpu " + std::to_string(gpu.index), old ? Status::kWarn : Status::kOk, detail.str(),
                    old ? "compute capability below 6.0 is not supported by current CUDA LibTorch builds" : ""});
  }
}

void libtorch_checks(const Facts& facts, std::vector<Check>* out) {
  const auto& torch = facts.libtorch;
  std::string cuda = torch.cuda_built ? "CUDA " + torch.cuda_version +
                                            (torch.cudnn_version.empty() ? "" : ", cuDNN " + torch.cudnn_version) +
                                            ", " + std::to_string(torch.cuda_device_count) + " device(s)"
                                      : "CPU build";
  out->push_back({"libtorch", "version", Status::kOk,
                  torch.version + ", " + cuda + ", oneDNN " + (torch.onednn ? "yes" : "no") + ", " +
                      std::to_string(torch.threads) + " threads (" + torch.parallel_backend + ")",
                  ""});
  if (!facts.gpus.gpus.empty() && !torch.cuda_available) {
    out->push_back({"libtorch", "cuda", Status::kWarn,
                    torch.cuda_built ? "built with CUDA but no device is usable"
                                     : "a GPU is present but this LibTorch has no CUDA",
                    "build with a CUDA LibTorch: cmake --preset cuda (see README)"});
  }
  const std::string blas = "built for '" + torch.blas + "', loaded " +
                           (torch.blas_loaded.empty() ? std::string("(none mapped)") : torch.blas_loaded);
  out->push_back({"libtorch", "blas", torch.blas_is_reference ? Status::kFail : Status::kOk, blas,
                  torch.blas_is_reference ? "reference BLAS makes 1x1 convolutions 5-13x slower: "
                                            "apt-get install libopenblas0-openmp"
                                          : ""});
}

void video_checks(const Facts& facts, std::vector<Check>* out) {
  if (!facts.video) {
    out->push_back({"video", "opencv", Status::kWarn, "this build has no OpenCV: no video ingest",
                    "apt-get install libopencv-dev, then rebuild"});
    return;
  }
  out->push_back({"video", "opencv", Status::kOk, "OpenCV " + facts.video->opencv_version, ""});
  out->push_back({"video", "ffmpeg", facts.video->ffmpeg ? Status::kOk : Status::kFail,
                  facts.video->ffmpeg ? "FFmpeg backend: files, RTSP and HTTP streams" : "no FFmpeg backend",
                  facts.video->ffmpeg ? "" : "apt-get install libopencv-videoio-dev (Debian's OpenCV with FFmpeg)"});
  out->push_back({"video", "v4l2", facts.video->v4l2 ? Status::kOk : Status::kWarn,
                  facts.video->v4l2 ? "V4L2 backend: USB cameras" : "no V4L2 backend: cameras unavailable", ""});
}

void model_checks(const Facts& facts, std::vector<Check>* out) {
  for (const auto& model : facts.models) {
    out->push_back({"models", model.model, model.ok ? Status::kOk : Status::kFail,
                    model.ok ? "SHA-256 verified (" + std::to_string(model.files.size()) + " files)" : model.problem,
                    model.ok ? "" : "make setup"});
  }
}

}  // namespace

const char* to_string(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kInfo: return "info";
    case Status::kWarn: return "warn";
    case Status::kFail: return "FAIL";
  }
  return "?";
}

Facts gather(const GatherOptions& options) {
  Facts facts;
  if (auto os = core::sys::read_os()) facts.os = *os;
  if (auto cpu = core::sys::read_cpu()) facts.cpu = *cpu;
  if (auto memory = core::sys::read_memory()) facts.memory = *memory;
  if (auto disk = core::sys::read_disk(options.data_dir)) facts.disk = *disk;
  facts.gpus = core::sys::detect_gpus(options.nvml_library);
  facts.libtorch = core::libtorch::libtorch_info();
  facts.video = probe_video();
  facts.model_dir = options.model_dir;
  facts.models = pose::models::verify_models(options.model_dir);
  return facts;
}

std::vector<Check> evaluate(const Facts& facts) {
  std::vector<Check> checks;
  system_checks(facts, &checks);
  gpu_checks(facts, &checks);
  libtorch_checks(facts, &checks);
  video_checks(facts, &checks);
  model_checks(facts, &checks);
  return checks;
}

int exit_code(const std::vector<Check>& checks) {
  return std::any_of(checks.begin(), checks.end(), [](const Check& c) { return c.status == Status::kFail; }) ? 1 : 0;
}

std::string render_table(const std::vector<Check>& checks, bool color) {
  size_t name_width = 0;
  for (const auto& check : checks) name_width = std::max(name_width, check.group.size() + 1 + check.name.size());
  std::ostringstream out;
  for (const auto& check : checks) {
    const char* paint = "";
    switch (check.status) {
      case Status::kOk: paint = "\033[32m"; break;
      case Status::kInfo: paint = "\033[36m"; break;
      case Status::kWarn: paint = "\033[33m"; break;
      case Status::kFail: paint = "\033[31m"; break;
    }
    const std::string label = check.group + " " + check.name;
    char status[16];
    std::snprintf(status, sizeof status, "%-4s", to_string(check.status));
    out << (color ? paint : "") << status << (color ? "\033[0m" : "") << "  " << label
        << std::string(name_width - label.size() + 2, ' ') << check.detail << "\n";
    if (!check.fix.empty()) out << std::string(6 + name_width + 2, ' ') << "fix: " << check.fix << "\n";
  }
  return out.str();
}

}  // namespace doctor
