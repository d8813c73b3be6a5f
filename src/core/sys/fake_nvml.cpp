// A stand-in NVML for tests on machines without a GPU: the same C entry points, canned answers for two GPUs.
// It exercises our dlopen/dlsym path and decoding; the real driver is covered by sys_gpu_test on GPU machines.
#include <cstdio>
#include <cstring>

namespace {
struct FakeDevice {
  const char* name;
  unsigned long long total;  // NOLINT(google-runtime-int)
  unsigned long long used;   // NOLINT(google-runtime-int)
  int major;
  int minor;
};
FakeDevice devices[] = {{"NVIDIA GeForce RTX 4060", 8ull << 30, 1ull << 30, 8, 9},
                        {"NVIDIA H100 80GB HBM3", 80ull << 30, 0, 9, 0}};
int initialised = 0;
}  // namespace

// NVML's own names, not ours.
// NOLINTBEGIN(readability-identifier-naming)
extern "C" {
int nvmlInit_v2() { return ++initialised > 0 ? 0 : 1; }
int nvmlShutdown() { return --initialised >= 0 ? 0 : 1; }
const char* nvmlErrorString(int) { return "fake error"; }
int nvmlSystemGetDriverVersion(char* out, unsigned size) { return std::snprintf(out, size, "555.42.06") > 0 ? 0 : 1; }
int nvmlSystemGetCudaDriverVersion_v2(int* version) {
  *version = 12050;
  return 0;
}
int nvmlDeviceGetCount_v2(unsigned* count) {
  *count = 2;
  return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
  if (index >= 2) return 2;
  *device = &devices[index];
  return 0;
}
int nvmlDeviceGetName(void* device, char* out, unsigned size) {
  std::snprintf(out, size, "%s", static_cast<FakeDevice*>(device)->name);
  return 0;
}
int nvmlDeviceGetMemoryInfo(void* device, unsigned long long* memory) {  // NOLINT(google-runtime-int)
  const auto* d = static_cast<FakeDevice*>(device);
  memory[0] = d->total;
  memory[1] = d->total - d->used;
  memory[2] = d->used;
  return 0;
}
int nvmlDeviceGetCudaComputeCapability(void* device, int* major, int* minor) {
  *major = static_cast<FakeDevice*>(device)->major;
  *minor = static_cast<FakeDevice*>(device)->minor;
  return 0;
}
int nvmlDeviceGetComputeRunningProcesses_v3(void* device, unsigned* count, void* infos) {
  if (device != &devices[0]) {
    *count = 0;
    return 0;
  }
  // One process; report "insufficient size" first when given no room, as the real driver does.
  if (*count < 1) {
    *count = 1;
    return 7;
  }
  struct Info {
    unsigned pid;
    unsigned long long used;  // NOLINT(google-runtime-int)
    unsigned gi;
    unsigned ci;
  };
  auto* info = static_cast<Info*>(infos);
  info[0] = Info{4242, 512ull << 20, 0, 0};
  *count = 1;
  return 0;
}
}
// NOLINTEND(readability-identifier-naming)
