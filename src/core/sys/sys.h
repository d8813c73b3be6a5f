#pragma once
// What machine is this: OS, CPU, memory, disk, and NVIDIA GPUs through NVML loaded at run time (dlopen), so the
// same binary runs on machines with no GPU or no driver. Readers take a filesystem root so tests can feed real
// /proc and /etc files captured from other machines.
//
// Thread-safety: the free functions are safe to call from any thread. An Nvml handle may be shared between
// threads (NVML itself is thread-safe); it must outlive the calls made through it.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace core::sys {

struct OsInfo {
  std::string pretty_name;  // "Debian GNU/Linux 12 (bookworm)"
  std::string id;           // "debian"
  std::string version_id;   // "12"
  std::string kernel;       // "6.1.0-18-amd64"
};

struct CpuInfo {
  std::string model;
  int logical_cores = 0;   // online processors listed in /proc/cpuinfo
  int physical_cores = 0;  // distinct (package, core) pairs; equals logical_cores when the kernel hides topology
  int usable_cores = 0;    // what this process may run on (affinity / container limits); 0 when unknown
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
};

struct MemoryInfo {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;
};

struct DiskInfo {
  std::filesystem::path path;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // available to unprivileged users
};

struct GpuInfo {
  unsigned index = 0;
  std::string name;
  std::string uuid;
  std::string pci_bus_id;
  uint64_t memory_total_bytes = 0;
  uint64_t memory_free_bytes = 0;
  uint64_t memory_used_bytes = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  int utilization_percent = -1;  // -1 when the driver does not report it
  int temperature_c = -1;
  int power_mw = -1;
};

struct GpuProcess {
  unsigned pid = 0;
  uint64_t used_memory_bytes = 0;  // 0 when the driver cannot attribute memory (e.g. inside some containers)
};

Result<OsInfo> read_os(const std::filesystem::path& root = "/");
Result<CpuInfo> read_cpu(const std::filesystem::path& root = "/");
Result<MemoryInfo> read_memory(const std::filesystem::path& root = "/");
Result<DiskInfo> read_disk(const std::filesystem::path& path);

inline constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

// An initialised NVML session. Opening fails with kUnavailable when the library or driver is missing, which
// callers treat as "no NVIDIA GPU here", not as an error of the program.
class Nvml {
 public:
  static Result<std::unique_ptr<Nvml>> open(const std::string& library = kNvmlLibrary);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  std::string driver_version() const;       // "580.159.04"
  std::string cuda_driver_version() const;  // "13.0": the newest CUDA the driver supports
  Result<std::vector<GpuInfo>> gpus() const;
  Result<std::vector<GpuProcess>> processes(unsigned gpu_index) const;

  struct Api;  // resolved entry points, defined in sys.cpp

 private:
  Nvml(void* handle, std::unique_ptr<Api> api);
  void* handle_;
  std::unique_ptr<Api> api_;
};

// Convenience for reports: every GPU NVML sees, or an empty list and the reason there is none.
struct GpuReport {
  bool driver_loaded = false;
  std::string driver_version;
  std::string cuda_driver_version;
  std::vector<GpuInfo> gpus;
  std::string reason;  // why no GPU was found, when driver_loaded is false or gpus is empty
};
GpuReport detect_gpus(const std::string& library = kNvmlLibrary);

}  // namespace core::sys
