#include "vram/memory/memory.h"

#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>
#include <cstring>
#include <mutex>

#ifdef WB_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

namespace vram::memory {
namespace {

// Process-wide counters of the counting CPU allocator. They live for the whole process because tensors allocated
// through it may be freed at any later time, after every Meter is gone.
struct CpuCounters {
  std::atomic<int64_t> allocated_bytes{0};
  std::atomic<int64_t> peak_allocated_bytes{0};
  std::atomic<int64_t> limit_bytes{0};  // 0: none
};

CpuCounters& cpu_counters() {
  static CpuCounters counters;
  return counters;
}

void raise_peak(std::atomic<int64_t>& peak, int64_t value) {
  int64_t seen = peak.load(std::memory_order_relaxed);
  while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// Each allocation carries its size in a header in front of the data, so the data pointer is also the deleter's
// context: LibTorch's raw_allocate() path (used by some CPU kernels) requires that.
constexpr size_t kHeaderBytes = 64;  // keeps the data at LibTorch's 64-byte alignment

void free_counted(void* data) {
  if (data == nullptr) return;
  auto* base = static_cast<char*>(data) - kHeaderBytes;
  int64_t bytes = 0;
  std::memcpy(&bytes, base, sizeof bytes);
  cpu_counters().allocated_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  c10::free_cpu(base);
}

// Counts bytes around LibTorch's own CPU allocation routine. LibTorch 1.13 declares allocate() const and has no
// copy_data(); 2.x declares allocate() non-const and copy_data() pure. Declaring both forms (without `override`)
// implements the interface of either version.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) const { return count(bytes); }  // LibTorch 1.x
  c10::DataPtr allocate(size_t bytes) { return count(bytes); }        // LibTorch 2.x
  void copy_data(void* dest, const void* src, size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &free_counted; }

 private:
  static c10::DataPtr count(size_t bytes) {
    auto& counters = cpu_counters();
    const auto size = static_cast<int64_t>(bytes);
    const int64_t now = counters.allocated_bytes.fetch_add(size, std::memory_order_relaxed) + size;
    const int64_t limit = counters.limit_bytes.load(std::memory_order_relaxed);
    if (limit > 0 && now > limit) {
      counters.allocated_bytes.fetch_sub(size, std::memory_order_relaxed);
      TORCH_CHECK_WITH(OutOfMemoryError, false, "CPU out of memory: allocating ", bytes, " bytes would exceed the ",
                       limit, "-byte limit");
    }
    raise_peak(counters.peak_allocated_bytes, now);
    auto* base = static_cast<char*>(c10::alloc_cpu(bytes + kHeaderBytes));
    std::memcpy(base, &size, sizeof size);
    void* data = base + kHeaderBytes;
    return {data, data, &free_counted, c10::Device(c10::DeviceType::CPU)};
  }
};

void install_counting_cpu_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Never freed: tensors allocated through it outlive any scope.
    static auto* allocator = new CountingCpuAllocator();
    c10::SetAllocator(c10::DeviceType::CPU, allocator, /*priority=*/1);
  });
}

class CpuMeter final : public Meter {
 public:
  CpuMeter() { install_counting_cpu_allocator(); }
  ~CpuMeter() override { cpu_counters().limit_bytes.store(0); }
  Snapshot read() const override {
    const auto& counters = cpu_counters();
    Snapshot snapshot;
    snapshot.allocated_bytes = counters.allocated_bytes.load(std::memory_order_relaxed);
    snapshot.peak_allocated_bytes = counters.peak_allocated_bytes.load(std::memory_order_relaxed);
    snapshot.reserved_bytes = snapshot.allocated_bytes;
    snapshot.peak_reserved_bytes = snapshot.peak_allocated_bytes;
    return snapshot;
  }
  void reset_peak() override {
    auto& counters = cpu_counters();
    counters.peak_allocated_bytes.store(counters.allocated_bytes.load(std::memory_order_relaxed),
                                        std::memory_order_relaxed);
  }
  void release_cached() override {}
  int64_t capacity_bytes() const override { return 0; }
  core::Status limit_bytes(int64_t bytes) override {
    if (bytes < 0) return core::make_error(core::ErrorCode::kInvalidArgument, "a memory limit cannot be negative");
    cpu_counters().limit_bytes.store(bytes);
    return {};
  }
  const std::string& device() const override { return device_; }

 private:
  std::string device_ = "cpu";
};

#ifdef WB_TORCH_CUDA
namespace allocator = c10::cuda::CUDACachingAllocator;

class CudaMeter final : public Meter {
 public:
  CudaMeter(c10::DeviceIndex index, std::string device) : index_(index), device_(std::move(device)) {}
  ~CudaMeter() override {
    if (limited_) allocator::setMemoryFraction(1.0, index_);
  }
  Snapshot read() const override {
    // Index 0 of each statistic array is the aggregate over the small and large pools (StatType::AGGREGATE).
    const auto stats = allocator::getDeviceStats(index_);
    Snapshot snapshot;
    snapshot.allocated_bytes = stats.allocated_bytes[0].current;
    snapshot.reserved_bytes = stats.reserved_bytes[0].current;
    snapshot.peak_allocated_bytes = stats.allocated_bytes[0].peak;
    snapshot.peak_reserved_bytes = stats.reserved_bytes[0].peak;
    snapshot.alloc_retries = stats.num_alloc_retries;
    snapshot.ooms = stats.num_ooms;
    return snapshot;
  }
  void reset_peak() override { allocator::resetPeakStats(index_); }
  void release_cached() override { allocator::emptyCache(); }
  int64_t capacity_bytes() const override {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    int previous = 0;
    cudaGetDevice(&previous);
    cudaSetDevice(index_);
    cudaMemGetInfo(&free_bytes, &total_bytes);
    cudaSetDevice(previous);
    return static_cast<int64_t>(total_bytes);
  }
  core::Status limit_bytes(int64_t bytes) override {
    const int64_t capacity = capacity_bytes();
    if (bytes < 0 || bytes > capacity) {
      return core::make_error(core::ErrorCode::kInvalidArgument, "a memory limit must be between 0 and the device's " +
                                                                     std::to_string(capacity) + " bytes");
    }
    allocator::setMemoryFraction(bytes == 0 ? 1.0 : static_cast<double>(bytes) / static_cast<double>(capacity), index_);
    limited_ = bytes != 0;
    return {};
  }
  const std::string& device() const override { return device_; }

 private:
  c10::DeviceIndex index_;
  std::string device_;
  bool limited_ = false;
};
#endif

}  // namespace

Runtime runtime(const std::string& device) {
  Runtime result;
  result.libtorch_major = TORCH_VERSION_MAJOR;
#ifdef WB_TORCH_CUDA
  if (device != "cpu" && torch::cuda::is_available()) {
    int index = 0;
    try {
      const c10::Device parsed(device);
      index = parsed.has_index() ? parsed.index() : 0;
    } catch (const c10::Error&) {
      return result;
    }
    cudaDeviceGetAttribute(&result.cuda_capability_major, cudaDevAttrComputeCapabilityMajor, index);
  }
#else
  (void)device;
#endif
  return result;
}

bool is_out_of_memory(const std::string& what) {
  return what.find("out of memory") != std::string::npos || what.find("OutOfMemory") != std::string::npos ||
         what.find("DefaultCPUAllocator: can't allocate") != std::string::npos;
}

core::Result<std::unique_ptr<Meter>> Meter::create(const std::string& device) {
  if (device == "cpu") return std::unique_ptr<Meter>(std::make_unique<CpuMeter>());
  c10::Device parsed(c10::DeviceType::CPU);
  try {
    parsed = c10::Device(device);
  } catch (const c10::Error&) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "unknown device '" + device + "': use cpu, cuda or cuda:N");
  }
  if (!parsed.is_cuda()) {
    return core::make_error(core::ErrorCode::kUnsupported, "memory metering supports cpu and cuda, not " + device);
  }
#ifdef WB_TORCH_CUDA
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  const c10::DeviceIndex index = parsed.has_index() ? parsed.index() : 0;
  if (index >= count) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            device + " is not available: LibTorch sees " + std::to_string(count) + " CUDA device(s)");
  }
  try {
    // The caching allocator of a device exists only after its first allocation; statistics and the memory
    // fraction before that fail ("Allocator not initialized").
    at::empty({1}, at::TensorOptions().device(c10::Device(c10::DeviceType::CUDA, index)));
  } catch (const c10::Error& error) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            device + " cannot be used: " + std::string(error.what_without_backtrace()));
  }
  return std::unique_ptr<Meter>(std::make_unique<CudaMeter>(index, device));
#else
  return core::make_error(core::ErrorCode::kUnavailable,
                          device + " is not available: this build's LibTorch has no CUDA (use the cuda preset)");
#endif
}

}  // namespace vram::memory
