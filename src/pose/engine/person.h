#pragma once
// The people the estimator reports: plain values that every later stage (tracking, analysis, drawing, storage)
// passes along. Header-only so those stages can use the types without linking the estimator (and LibTorch).

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pose::engine {

// COCO-17 order: nose, eyes (L, R), ears (L, R), shoulders, elbows, wrists, hips, knees, ankles (L, R each).
inline constexpr int kCocoKeypointCount = 17;
enum class Joint : uint8_t {
  kNose,
  kLeftEye,
  kRightEye,
  kLeftEar,
  kRightEar,
  kLeftShoulder,
  kRightShoulder,
  kLeftElbow,
  kRightElbow,
  kLeftWrist,
  kRightWrist,
  kLeftHip,
  kRightHip,
  kLeftKnee,
  kRightKnee,
  kLeftAnkle,
  kRightAnkle,
};
// Lower-case snake names in COCO order ("left_knee"), the names exercise files and JSON use.
inline constexpr std::array<const char*, kCocoKeypointCount> kJointNames = {
    "nose",           "left_eye",   "right_eye",   "left_ear",   "right_ear",   "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip",      "left_knee",  "right_knee",  "left_ankle", "right_ankle"};
// The skeleton's bones as joint index pairs, for drawing.
inline constexpr std::array<std::array<int, 2>, 16> kBones = {{{5, 6},
                                                               {5, 7},
                                                               {7, 9},
                                                               {6, 8},
                                                               {8, 10},
                                                               {5, 11},
                                                               {6, 12},
                                                               {11, 12},
                                                               {11, 13},
                                                               {13, 15},
                                                               {12, 14},
                                                               {14, 16},
                                                               {0, 1},
                                                               {0, 2},
                                                               {1, 3},
                                                               {2, 4}}};

// COCO-17 keypoint i is BlazePose landmark kCocoFromBlazePose[i] (so a BlazePose Person's landmarks give its
// keypoints a depth).
inline constexpr std::array<int, kCocoKeypointCount> kCocoFromBlazePose = {0,  2,  5,  7,  8,  11, 12, 13, 14,
                                                                           15, 16, 23, 24, 25, 26, 27, 28};

struct Keypoint {
  float x = 0;  // source-image pixels (continuous: the image spans [0, width] x [0, height])
  float y = 0;
  float score = 0;  // 0..1 confidence the point is where it says and visible
};

struct Landmark {
  float x = 0, y = 0;    // source-image pixels
  float z = 0;           // depth relative to the hips, in the same pixel scale (smaller is closer)
  float visibility = 0;  // 0..1
  float presence = 0;    // 0..1
};

struct Box {
  float x = 0, y = 0, width = 0, height = 0;  // source-image pixels
};

struct Person {
  std::array<Keypoint, kCocoKeypointCount> keypoints{};
  Box box;
  float score = 0;                  // 0..1
  std::vector<Landmark> landmarks;  // BlazePose: all 33 landmarks; empty for MoveNet
  std::string model;
};

}  // namespace pose::engine
