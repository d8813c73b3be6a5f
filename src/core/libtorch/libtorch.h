#pragma once
// The LibTorch runtime as this process sees it: version, CUDA and cuDNN, oneDNN, the BLAS actually loaded, and
// the thread pools. LibTorch's headers stay behind this header so other modules compile without them.
//
// Thread-safety: libtorch_info() is safe from any thread; set_threads() changes process-wide pools and is meant
// for start-up, before inference threads run.

#include <string>

namespace core::libtorch {

struct LibTorchInfo {
  std::string version;          // "1.13.1" / "2.11.0"
  bool cuda_built = false;      // compiled with CUDA
  bool cuda_available = false;  // and a device is usable now
  int cuda_device_count = 0;
  std::string cuda_version;  // runtime the build used, e.g. "13.0"; empty without CUDA
  std::string cudnn_version;
  bool onednn = false;             // oneDNN (MKL-DNN) CPU kernels compiled in
  std::string blas;                // as built: "open", "mkl", "generic", ...
  std::string blas_loaded;         // the BLAS shared library actually mapped into this process
  bool blas_is_reference = false;  // Debian's reference BLAS: correct but 5-13x slower for 1x1 convolutions
  int threads = 0;
  int interop_threads = 0;
  std::string parallel_backend;
};

LibTorchInfo libtorch_info();

// Sets LibTorch's intra-op threads; 0 means every core this process may use. Debian's build defaults to 1.
void set_threads(int threads);

// Keeps freed memory in the process instead of returning it to the kernel after every large free. Inference
// frees megabyte-sized activations every frame; without this glibc unmaps them and every frame page-faults them
// back (measured: BlazePose-Lite 11.6 ms instead of 7.7 ms on 2 cores). Process-wide: applications call it once.
void keep_freed_memory();

// CUDA: the caching allocator grows its segments in place instead of reserving new blocks (LibTorch 2.1 and
// later), so memory capped at a budget is not lost to fragmentation (measured on an H200: a llama-7b plan whose
// allocations peak at 3.49 GB ran out of memory under a 4 GB cap without it, and runs with it). A
// PYTORCH_CUDA_ALLOC_CONF the user set wins. Call before the first CUDA allocation.
void use_expandable_segments();
// TF32 makes CUDA float32 convolutions and matrix products faster and less exact (about 1e-3 relative). Pose
// inference at fp32 turns it off to match the reference; training-style work may keep it. Process-wide.
void allow_tf32(bool allow);

}  // namespace core::libtorch
