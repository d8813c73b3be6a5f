#pragma once
// The machine profile: tuned defaults for both tools, derived from what `doctor` detected and measured, written
// as TOML whose [pose] and [vram] keys are the same keys the tools' option tables read. Both tools load it as the
// lowest-priority config file, so a flag, variable or config file overrides any of it. docs/machine-profile.md
// documents every key and the rules below.
//
// derive_profile is pure: facts and measurements in, settings out, each with the reason it was chosen.

#include <cstdint>
#include <string>
#include <vector>

#include "core/sys/sys.h"

namespace core::profile {

struct MachineFacts {
  sys::CpuInfo cpu;
  sys::MemoryInfo memory;
  sys::GpuReport gpus;
  bool libtorch_cuda = false;  // LibTorch was built with CUDA and sees at least one device
};

struct Measurements {
  double pose_proxy_ms = 0.0;          // median ms per frame of the pose proxy network, batch 1; 0: not measured
  std::string pose_proxy_device;       // where it ran: "cpu" or "cuda"
  double h2d_pinned_gb_per_s = 0.0;    // host-to-device copy from pinned memory; 0: not measured
  double h2d_pageable_gb_per_s = 0.0;  // the same from ordinary (pageable) memory
};

struct PoseSettings {
  std::string device;     // "cpu" or "cuda"
  std::string model;      // a model name from pose::models
  std::string precision;  // "fp32" or "fp16"
  int batch_size = 1;
  int streams_per_device = 1;
  int threads = 0;  // LibTorch intra-op threads for CPU inference
};

struct VramSettings {
  std::string device;         // "cpu" or "cuda"
  uint64_t budget_bytes = 0;  // default memory budget; 0: the whole device
};

struct MachineProfile {
  std::string generated_at;    // UTC, ISO 8601
  std::string hardware_class;  // "cpu", "gpu-small", "gpu-7gb+", "gpu-14gb+", "gpu-20gb+", "gpu-40gb+", "gpu-70gb+"
  MachineFacts facts;
  Measurements measured;
  PoseSettings pose;
  VramSettings vram;
  std::vector<std::string> reasons;  // one line per decision, for the report and the file's comments
};

MachineProfile derive_profile(const MachineFacts& facts, const Measurements& measured, std::string generated_at);

// TOML with [pose], [vram] (read by the tools), [machine] and [measured] (informational).
std::string to_toml(const MachineProfile& profile);

}  // namespace core::profile
