#include "core/libtorch/libtorch.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <malloc.h>
#include <sched.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace core::libtorch {
namespace {

// at::show_config() is the one description every LibTorch version prints; pick "KEY=value" and
// "  - Name version" items from it.
std::string config_value(const std::string& config, const std::string& key) {
  const auto at = config.find(key + "=");
  if (at == std::string::npos) return {};
  const auto start = at + key.size() + 1;
  const auto end = config.find_first_of(", \n", start);
  return config.substr(start, end - start);
}

std::string config_line_version(const std::string& config, const std::string& prefix) {
  const auto at = config.find(prefix);
  if (at == std::string::npos) return {};
  const auto start = at + prefix.size();
  const auto end = config.find('\n', start);
  std::string version = config.substr(start, end - start);
  while (!version.empty() && (version.back() == ' ' || version.back() == '\r')) version.pop_back();
  return version;
}

// Debian's LibTorch links the generic libblas.so.3, which update-alternatives points at OpenBLAS or at the
// reference implementation; only the mapped file tells which one runs.
std::string mapped_blas_library() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find("openblas") != std::string::npos || path.find("libblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos || path.find("blis") != std::string::npos) {
      return path;
    }
  }
  return {};
}

// cuDNN encodes 9.19.0 as 91900 (major*10000 + minor*100 + patch since 9.0; major*1000 + minor*100 before);
// LibTorch's own show_config() prints that as "91.9", so it is decoded here.
std::string cudnn_version(bool cuda_built) {
  if (!cuda_built) return {};
  try {
    const long version = at::detail::getCUDAHooks().versionCuDNN();  // NOLINT(google-runtime-int): its API
    if (version <= 0) return {};
    const long major = version >= 90000 ? version / 10000 : version / 1000;  // NOLINT(google-runtime-int)
    const long minor = version >= 90000 ? (version % 10000) / 100 : (version % 1000) / 100;  // NOLINT
    const long patch = version % 100;  // NOLINT(google-runtime-int)
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  } catch (const c10::Error&) {
    return {};  // built with CUDA but cuDNN unavailable
  }
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

LibTorchInfo libtorch_info() {
  LibTorchInfo info;
  info.version = TORCH_VERSION;
  const std::string config = at::show_config();
  info.cuda_built = config.find("USE_CUDA=ON") != std::string::npos || config.find("USE_CUDA=1") != std::string::npos;
  info.cuda_available = torch::cuda::is_available();
  info.cuda_device_count = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.cuda_version = config_line_version(config, "CUDA Runtime ");
  info.cudnn_version = cudnn_version(info.cuda_built);
  info.onednn = config.find("USE_MKLDNN=ON") != std::string::npos || config.find("USE_MKLDNN=1") != std::string::npos;
  info.blas = config_value(config, "BLAS_INFO");
  info.blas_loaded = mapped_blas_library();
  // pip's LibTorch links MKL statically: no BLAS library is mapped, and none needs to be.
  if (info.blas_loaded.empty() && info.blas == "mkl") info.blas_loaded = "statically linked into LibTorch";
  // The reference BLAS lives in .../blas/libblas.so.3; OpenBLAS' alternative in .../openblas-*/libblas.so.3.
  info.blas_is_reference = info.blas_loaded.find("/blas/libblas") != std::string::npos;
  info.threads = at::get_num_threads();
  info.interop_threads = static_cast<int>(at::get_num_interop_threads());
  const std::string parallel = at::get_parallel_info();
  info.parallel_backend = config_line_version(parallel, "ATen parallel backend: ");
  return info;
}

void set_threads(int threads) { at::set_num_threads(threads > 0 ? threads : usable_cores()); }

void keep_freed_memory() {
  constexpr int kThreshold = 512 << 20;  // allocations below this stay on the heap; the heap is not trimmed
  mallopt(M_MMAP_THRESHOLD, kThreshold);
  mallopt(M_TRIM_THRESHOLD, kThreshold);
}

void use_expandable_segments() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0);
#endif
}

void allow_tf32(bool allow) {
  at::globalContext().setAllowTF32CuDNN(allow);
  at::globalContext().setAllowTF32CuBLAS(allow);
}

}  // namespace core::libtorch
