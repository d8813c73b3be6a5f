#include "core/sys/sys.h"

#include <dlfcn.h>
#include <sched.h>
#include <sys/statvfs.h>

#include <fstream>
#include <set>
#include <sstream>

namespace core::sys {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\"'\n");
  const auto last = text.find_last_not_of(" \t\"'\n");
  return first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
}

Result<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "key<sep>value" lines into pairs; used for os-release (=), cpuinfo and meminfo (:).
std::vector<std::pair<std::string, std::string>> key_values(const std::string& text, char separator) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const auto at = line.find(separator);
    if (at == std::string::npos) {
      pairs.emplace_back("", "");  // blank lines separate processors in cpuinfo
      continue;
    }
    pairs.emplace_back(trim(line.substr(0, at)), trim(line.substr(at + 1)));
  }
  return pairs;
}

}  // namespace

Result<OsInfo> read_os(const std::filesystem::path& root) {
  auto text = read_text(root / "etc/os-release");
  if (!text) return text.error();
  OsInfo os;
  for (const auto& [key, value] : key_values(*text, '=')) {
    if (key == "PRETTY_NAME") os.pretty_name = value;
    if (key == "ID") os.id = value;
    if (key == "VERSION_ID") os.version_id = value;
  }
  if (auto kernel = read_text(root / "proc/sys/kernel/osrelease")) os.kernel = trim(*kernel);
  return os;
}

Result<CpuInfo> read_cpu(const std::filesystem::path& root) {
  auto text = read_text(root / "proc/cpuinfo");
  if (!text) return text.error();
  CpuInfo cpu;
  std::set<std::pair<std::string, std::string>> cores;
  std::string package;
  for (const auto& [key, value] : key_values(*text, ':')) {
    if (key == "processor") ++cpu.logical_cores;
    if (key == "model name" && cpu.model.empty()) cpu.model = value;
    if (key == "physical id") package = value;
    if (key == "core id") cores.emplace(package, value);
    if (key == "flags" && cpu.logical_cores == 1) {
      std::istringstream flags(" " + value + " ");
      std::string flag;
      while (flags >> flag) {
        cpu.avx2 |= flag == "avx2";
        cpu.fma |= flag == "fma";
        cpu.avx512f |= flag == "avx512f";
      }
    }
  }
  cpu.physical_cores = cores.empty() ? cpu.logical_cores : static_cast<int>(cores.size());
  if (root == "/") {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cpu.usable_cores = CPU_COUNT(&set);
  }
  return cpu;
}

Result<MemoryInfo> read_memory(const std::filesystem::path& root) {
  auto text = read_text(root / "proc/meminfo");
  if (!text) return text.error();
  MemoryInfo memory;
  for (const auto& [key, value] : key_values(*text, ':')) {
    const uint64_t kib = std::strtoull(value.c_str(), nullptr, 10);
    if (key == "MemTotal") memory.total_bytes = kib * 1024;
    if (key == "MemAvailable") memory.available_bytes = kib * 1024;
  }
  if (memory.total_bytes == 0)
    return make_error(ErrorCode::kCorrupt, "no MemTotal in " + (root / "proc/meminfo").string());
  return memory;
}

Result<DiskInfo> read_disk(const std::filesystem::path& path) {
  struct statvfs stats {};
  if (statvfs(path.c_str(), &stats) != 0) {
    return make_error(ErrorCode::kNotFound, "cannot stat the filesystem of " + path.string());
  }
  DiskInfo disk;
  disk.path = path;
  disk.total_bytes = static_cast<uint64_t>(stats.f_blocks) * stats.f_frsize;
  disk.free_bytes = static_cast<uint64_t>(stats.f_bavail) * stats.f_frsize;
  return disk;
}

// ---- NVML ------------------------------------------------------------------------------------------------------
// Declared here from NVML's documented C ABI so that building needs no NVIDIA headers or libraries.

namespace nvml {
using Return = int;
using Device = struct DeviceOpaque*;
constexpr Return kSuccess = 0;
constexpr Return kInsufficientSize = 7;
constexpr unsigned kTemperatureGpu = 0;
struct Memory {
  unsigned long long total;  // NOLINT(google-runtime-int): NVML's ABI
  unsigned long long free;   // NOLINT(google-runtime-int)
  unsigned long long used;   // NOLINT(google-runtime-int)
};
struct Utilization {
  unsigned gpu;
  unsigned memory;
};
struct PciInfo {  // nvmlPciInfo_t
  char bus_id_legacy[16];
  unsigned domain;
  unsigned bus;
  unsigned device;
  unsigned pci_device_id;
  unsigned pci_sub_system_id;
  char bus_id[32];
};
struct ProcessInfo {  // nvmlProcessInfo_t (v2 layout, used by the _v3 query)
  unsigned pid;
  unsigned long long used_gpu_memory;  // NOLINT(google-runtime-int)
  unsigned gpu_instance_id;
  unsigned compute_instance_id;
};
}  // namespace nvml

struct Nvml::Api {
  nvml::Return (*init)();
  nvml::Return (*shutdown)();
  const char* (*error_string)(nvml::Return);
  nvml::Return (*driver_version)(char*, unsigned);
  nvml::Return (*cuda_driver_version)(int*);
  nvml::Return (*device_count)(unsigned*);
  nvml::Return (*device_by_index)(unsigned, nvml::Device*);
  nvml::Return (*device_name)(nvml::Device, char*, unsigned);
  nvml::Return (*device_uuid)(nvml::Device, char*, unsigned);
  nvml::Return (*device_pci)(nvml::Device, nvml::PciInfo*);
  nvml::Return (*device_memory)(nvml::Device, nvml::Memory*);
  nvml::Return (*device_capability)(nvml::Device, int*, int*);
  nvml::Return (*device_utilization)(nvml::Device, nvml::Utilization*);
  nvml::Return (*device_temperature)(nvml::Device, unsigned, unsigned*);
  nvml::Return (*device_power)(nvml::Device, unsigned*);
  nvml::Return (*device_processes)(nvml::Device, unsigned*, nvml::ProcessInfo*);

  std::string describe(nvml::Return code) const {
    return std::string(error_string ? error_string(code) : "NVML error") + " (code " + std::to_string(code) + ")";
  }
};

namespace {

template <class Fn>
bool resolve_symbol(void* handle, const char* name, Fn* out) {
  void* symbol = dlsym(handle, name);
  *out = reinterpret_cast<Fn>(symbol);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): dlsym's contract
  return symbol != nullptr;
}

}  // namespace

Nvml::Nvml(void* handle, std::unique_ptr<Api> api) : handle_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  dlclose(handle_);
}

Result<std::unique_ptr<Nvml>> Nvml::open(const std::string& library) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return make_error(ErrorCode::kUnavailable, "NVIDIA driver library " + library + " could not be loaded (" +
                                                   (reason ? reason : "unknown reason") +
                                                   "): no NVIDIA driver on this machine");
  }
  auto api = std::make_unique<Api>();
  // Required entry points: without these the library is not a usable NVML.
  const bool complete = resolve_symbol(handle, "nvmlInit_v2", &api->init) &&
                        resolve_symbol(handle, "nvmlShutdown", &api->shutdown) &&
                        resolve_symbol(handle, "nvmlErrorString", &api->error_string) &&
                        resolve_symbol(handle, "nvmlSystemGetDriverVersion", &api->driver_version) &&
                        resolve_symbol(handle, "nvmlDeviceGetCount_v2", &api->device_count) &&
                        resolve_symbol(handle, "nvmlDeviceGetHandleByIndex_v2", &api->device_by_index) &&
                        resolve_symbol(handle, "nvmlDeviceGetName", &api->device_name) &&
                        resolve_symbol(handle, "nvmlDeviceGetMemoryInfo", &api->device_memory);
  if (!complete) {
    dlclose(handle);
    return make_error(ErrorCode::kUnavailable, library + " lacks required NVML functions: driver too old?");
  }
  // Optional ones: a missing entry point leaves that field unreported.
  if (!resolve_symbol(handle, "nvmlSystemGetCudaDriverVersion_v2", &api->cuda_driver_version)) {
    resolve_symbol(handle, "nvmlSystemGetCudaDriverVersion", &api->cuda_driver_version);
  }
  resolve_symbol(handle, "nvmlDeviceGetUUID", &api->device_uuid);
  resolve_symbol(handle, "nvmlDeviceGetPciInfo_v3", &api->device_pci);
  resolve_symbol(handle, "nvmlDeviceGetCudaComputeCapability", &api->device_capability);
  resolve_symbol(handle, "nvmlDeviceGetUtilizationRates", &api->device_utilization);
  resolve_symbol(handle, "nvmlDeviceGetTemperature", &api->device_temperature);
  resolve_symbol(handle, "nvmlDeviceGetPowerUsage", &api->device_power);
  resolve_symbol(handle, "nvmlDeviceGetComputeRunningProcesses_v3", &api->device_processes);

  if (const nvml::Return code = api->init(); code != nvml::kSuccess) {
    const std::string reason = api->describe(code);
    dlclose(handle);
    return make_error(ErrorCode::kUnavailable, "NVML could not start: " + reason);
  }
  return std::unique_ptr<Nvml>(new Nvml(handle, std::move(api)));
}

std::string Nvml::driver_version() const {
  char buffer[96] = {};
  return api_->driver_version(buffer, sizeof buffer) == nvml::kSuccess ? std::string(buffer) : std::string();
}

std::string Nvml::cuda_driver_version() const {
  int version = 0;
  if (!api_->cuda_driver_version || api_->cuda_driver_version(&version) != nvml::kSuccess) return {};
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

Result<std::vector<GpuInfo>> Nvml::gpus() const {
  unsigned count = 0;
  if (const auto code = api_->device_count(&count); code != nvml::kSuccess) {
    return make_error(ErrorCode::kUnavailable, "NVML could not count GPUs: " + api_->describe(code));
  }
  std::vector<GpuInfo> gpus;
  for (unsigned i = 0; i < count; ++i) {
    nvml::Device device = nullptr;
    if (const auto code = api_->device_by_index(i, &device); code != nvml::kSuccess) {
      return make_error(ErrorCode::kUnavailable,
                        "NVML could not open GPU " + std::to_string(i) + ": " + api_->describe(code));
    }
    GpuInfo gpu;
    gpu.index = i;
    char text[96] = {};
    if (api_->device_name(device, text, sizeof text) == nvml::kSuccess) gpu.name = text;
    if (api_->device_uuid && api_->device_uuid(device, text, sizeof text) == nvml::kSuccess) gpu.uuid = text;
    nvml::PciInfo pci{};
    if (api_->device_pci && api_->device_pci(device, &pci) == nvml::kSuccess) gpu.pci_bus_id = pci.bus_id;
    nvml::Memory memory{};
    if (api_->device_memory(device, &memory) == nvml::kSuccess) {
      gpu.memory_total_bytes = memory.total;
      gpu.memory_free_bytes = memory.free;
      gpu.memory_used_bytes = memory.used;
    }
    if (api_->device_capability) {
      api_->device_capability(device, &gpu.compute_capability_major, &gpu.compute_capability_minor);
    }
    nvml::Utilization utilization{};
    if (api_->device_utilization && api_->device_utilization(device, &utilization) == nvml::kSuccess) {
      gpu.utilization_percent = static_cast<int>(utilization.gpu);
    }
    unsigned value = 0;
    if (api_->device_temperature && api_->device_temperature(device, nvml::kTemperatureGpu, &value) == nvml::kSuccess) {
      gpu.temperature_c = static_cast<int>(value);
    }
    if (api_->device_power && api_->device_power(device, &value) == nvml::kSuccess) {
      gpu.power_mw = static_cast<int>(value);
    }
    gpus.push_back(std::move(gpu));
  }
  return gpus;
}

Result<std::vector<GpuProcess>> Nvml::processes(unsigned gpu_index) const {
  if (!api_->device_processes) {
    return make_error(ErrorCode::kUnsupported, "this NVIDIA driver does not list processes per GPU");
  }
  nvml::Device device = nullptr;
  if (const auto code = api_->device_by_index(gpu_index, &device); code != nvml::kSuccess) {
    return make_error(ErrorCode::kNotFound, "no GPU " + std::to_string(gpu_index) + ": " + api_->describe(code));
  }
  // The process list can grow between the size query and the fetch; retry with more room.
  std::vector<nvml::ProcessInfo> infos(8);
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto count = static_cast<unsigned>(infos.size());
    const auto code = api_->device_processes(device, &count, infos.data());
    if (code == nvml::kSuccess) {
      std::vector<GpuProcess> processes;
      for (unsigned i = 0; i < count; ++i) processes.push_back({infos[i].pid, infos[i].used_gpu_memory});
      return processes;
    }
    if (code != nvml::kInsufficientSize) {
      return make_error(ErrorCode::kUnavailable, "NVML could not list processes: " + api_->describe(code));
    }
    infos.resize(static_cast<size_t>(count) * 2 + 8);
  }
  return make_error(ErrorCode::kUnavailable, "NVML process list kept growing");
}

GpuReport detect_gpus(const std::string& library) {
  GpuReport report;
  auto nvml = Nvml::open(library);
  if (!nvml) {
    report.reason = nvml.error().message;
    return report;
  }
  report.driver_loaded = true;
  report.driver_version = (*nvml)->driver_version();
  report.cuda_driver_version = (*nvml)->cuda_driver_version();
  if (auto gpus = (*nvml)->gpus()) {
    report.gpus = std::move(*gpus);
    if (report.gpus.empty()) report.reason = "the NVIDIA driver is loaded but reports no GPU";
  } else {
    report.reason = gpus.error().message;
  }
  return report;
}

}  // namespace core::sys
