#pragma once
// The pose estimator: frames in (any size and aspect; BGR, RGB or gray, 8-bit), people out (17 COCO keypoints in
// source-image pixels with scores, a box, a person score, the model's name). Pre-processing (letterbox or rotated
// ROI crop with the resampling the models were trained with) and post-processing (keypoint decoding, BlazePose
// anchor decoding with weighted NMS, landmark projection) live here; the networks run on pose::graph.
//
//   auto estimator = pose::engine::Estimator::create({.model = "movenet-thunder"});
//   auto people = (*estimator)->estimate(image);
//
// Models: movenet-lightning, movenet-thunder (one person), movenet-multipose (up to 6), blazepose-lite|full|heavy
// (detector, then 33 landmarks with z and visibility, mapped to COCO-17 with the rest kept).
//
// Thread-safety: an Estimator keeps tracking state between frames of one stream (BlazePose's ROI from the last
// landmarks): use one per stream, from one thread at a time. LibTorch is not visible through this header.

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"
#include "pose/engine/person.h"

namespace pose::engine {

enum class PixelFormat { kBgr, kRgb, kGray };

// A view of an 8-bit image; the estimator does not keep it after the call.
struct Image {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int stride_bytes = 0;  // bytes per row; 0 means width * channels
  PixelFormat format = PixelFormat::kBgr;
};

enum class Device { kCpu, kCuda };
enum class Precision { kFloat32, kFloat16 };  // fp16 on CUDA only

struct EstimatorOptions {
  std::string model = "movenet-lightning";
  std::filesystem::path model_dir;  // empty: pose::models::default_model_dir()
  Device device = Device::kCpu;
  Precision precision = Precision::kFloat32;
  bool verify_checksums = true;   // hash the model files against models/models.sha256 before loading
  int max_people = 6;             // multi-person models and the BlazePose detector
  float min_person_score = 0.2f;  // people scoring below are dropped
  // BlazePose: crop the next frame around the last landmarks and run the detector only when tracking is lost.
  bool track = true;
  core::Logger logger;
};

class Estimator {
 public:
  // Fails for an unknown model (listing the known ones), missing or corrupt model files, or CUDA unavailable.
  static core::Result<std::unique_ptr<Estimator>> create(const EstimatorOptions& options);
  virtual ~Estimator() = default;

  // Empty result for a frame with nobody in it; an error for an empty or malformed image.
  virtual core::Result<std::vector<Person>> estimate(const Image& image) = 0;
  // Several independent frames (several streams, no tracking) in one inference call where the model allows it
  // (single-pose MoveNet): the way to fill a GPU. One result per frame, in order; any bad frame fails the call.
  virtual core::Result<std::vector<std::vector<Person>>> estimate_batch(std::span<const Image> images);
  // Runs the networks once at every batch shape estimate_batch uses up to max_batch, so the first real frames do
  // not pay for building kernels (on CUDA, seconds per new shape). Optional: a no-op where nothing is built.
  virtual core::Result<void> warm_up(int max_batch);
  // Forgets tracking state (a new stream, a scene cut).
  virtual void reset() = 0;
  virtual const std::string& model() const = 0;
};

// Names of the models create() accepts.
std::vector<std::string> estimator_models();

}  // namespace pose::engine
