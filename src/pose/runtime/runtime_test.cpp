// The pipeline end to end on real clips: real decoding, the real Lightning network, tracking and exercise analysis.
#include "pose/runtime/runtime.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/libtorch/libtorch.h"
#include "core/test_support/temp_dir.h"
#include "pose/runtime/json.h"

namespace pose::runtime {
namespace {

using core::test_support::TempDir;

const std::filesystem::path kVideos = std::filesystem::path(WB_SHARED_DIR) / "testdata" / "videos";

// Everything a subscriber saw, in order.
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> lines;  // event_json of every event
  std::map<std::string, std::vector<Event>> by_stream;

  Subscriber subscriber() {
    return [this](const Event& event) {
      std::lock_guard lock(mutex);
      lines.push_back(event_json(event));
      const std::string id = std::visit([](const auto& e) { return e.stream_id; }, event);
      by_stream[id].push_back(event);
    };
  }

  std::vector<StreamStatusEvent> statuses(const std::string& id) {
    std::lock_guard lock(mutex);
    std::vector<StreamStatusEvent> out;
    for (const auto& event : by_stream[id]) {
      if (const auto* status = std::get_if<StreamStatusEvent>(&event)) out.push_back(*status);
    }
    return out;
  }

  size_t frames(const std::string& id) {
    std::lock_guard lock(mutex);
    return static_cast<size_t>(std::count_if(by_stream[id].begin(), by_stream[id].end(),
                                             [](const Event& e) { return std::holds_alternative<FrameResult>(e); }));
  }

  int reps(const std::string& id) {
    std::lock_guard lock(mutex);
    int count = 0;
    for (const auto& event : by_stream[id]) {
      if (const auto* analysis = std::get_if<AnalysisEvent>(&event)) {
        count += std::holds_alternative<analysis::RepEvent>(analysis->event) ? 1 : 0;
      }
    }
    return count;
  }
};

PipelineOptions options() {
  core::libtorch::set_threads(0);
  PipelineOptions options;
  options.estimator.model = "movenet-lightning";
  options.estimator.track = false;
  auto exercises = analysis::load_exercises(analysis::default_exercise_dir());
  EXPECT_TRUE(exercises.ok()) << exercises.error().message;
  if (exercises) options.exercises = *exercises;
  options.max_batch = 4;
  return options;
}

StreamSpec file_stream(const std::string& id, const std::filesystem::path& path, const std::string& exercise) {
  StreamSpec spec;
  spec.id = id;
  spec.source.uri = path.string();
  spec.source.max_side_px = 640;
  spec.exercise = exercise;
  return spec;
}

TEST(Pipeline, CountsSquatsOnARealClipAndPublishesInOrder) {
  auto pipeline = Pipeline::create(options());
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  Recorder recorder;
  (*pipeline)->subscribe(recorder.subscriber());
  auto id = (*pipeline)->add_stream(file_stream("squat", kVideos / "squat_side_3reps.mp4", "squat"));
  ASSERT_TRUE(id.ok()) << id.error().message;
  (*pipeline)->wait();

  EXPECT_EQ(recorder.reps("squat"), 3);
  // A file read as fast as possible loses no frame.
  EXPECT_EQ(recorder.frames("squat"), 346u);
  const auto statuses = recorder.statuses("squat");
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_EQ(statuses[0].state, StreamState::kOpening);
  EXPECT_EQ(statuses[1].state, StreamState::kRunning);
  EXPECT_EQ(statuses[2].state, StreamState::kEnded);
  // The end comes after the last frame and its events.
  std::lock_guard lock(recorder.mutex);
  const auto& events = recorder.by_stream["squat"];
  EXPECT_TRUE(std::holds_alternative<StreamStatusEvent>(events.back()));
  int64_t last_index = -1;
  for (const auto& event : events) {
    if (const auto* frame = std::get_if<FrameResult>(&event)) {
      EXPECT_EQ(frame->frame_index, last_index + 1);
      last_index = frame->frame_index;
      EXPECT_LE(frame->stamps.decoded_us, frame->stamps.inference_start_us);
      EXPECT_LE(frame->stamps.inference_start_us, frame->stamps.inference_end_us);
      EXPECT_LE(frame->stamps.inference_end_us, frame->stamps.published_us);
      EXPECT_EQ(frame->source_width, 540);
      EXPECT_EQ(frame->height, 640);  // 960 tall, downscaled to 640
    }
  }
  // Every event serialises to JSON with a type.
  for (const auto& line : recorder.lines) {
    const auto json = nlohmann::json::parse(line);
    EXPECT_TRUE(json.contains("type")) << line;
  }
  const auto summaries = (*pipeline)->summaries();
  ASSERT_EQ(summaries.size(), 1u);
  int most = 0;
  for (const auto& person : summaries[0].second) most = std::max(most, person.reps);
  EXPECT_EQ(most, 3);
}

TEST(Pipeline, BadStreamsFailAloneAndTheGoodOneIsUnharmed) {
  TempDir temp("pose_runtime_test");
  // Random bytes named like a video; the first 30% of a real one; a file that does not exist.
  const auto garbage = temp.path() / "garbage.mp4";
  {
    std::ofstream out(garbage, std::ios::binary);
    std::mt19937 random(7);
    for (int i = 0; i < 200000; ++i) out.put(static_cast<char>(random() & 0xff));
  }
  const auto truncated = temp.path() / "truncated.mp4";
  {
    std::ifstream in(kVideos / "squat_17.mp4", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(truncated, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() * 3 / 10));
  }
  auto pipeline = Pipeline::create(options());
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  Recorder recorder;
  (*pipeline)->subscribe(recorder.subscriber());
  ASSERT_TRUE((*pipeline)->add_stream(file_stream("good", kVideos / "squat_side_3reps.mp4", "squat")).ok());
  ASSERT_TRUE((*pipeline)->add_stream(file_stream("garbage", garbage, "squat")).ok());
  ASSERT_TRUE((*pipeline)->add_stream(file_stream("truncated", truncated, "squat")).ok());
  ASSERT_TRUE((*pipeline)->add_stream(file_stream("missing", temp.path() / "nope.mp4", "squat")).ok());
  StreamSpec refused;
  refused.id = "refused";
  refused.source.uri = "rtsp://user:secret@127.0.0.1:1/stream";
  refused.source.open_timeout_ms = 2000;
  refused.exercise = "squat";
  ASSERT_TRUE((*pipeline)->add_stream(refused).ok());
  (*pipeline)->wait();

  EXPECT_EQ(recorder.reps("good"), 3);
  EXPECT_EQ(recorder.frames("good"), 346u);
  for (const std::string id : {"garbage", "missing", "refused"}) {
    const auto statuses = recorder.statuses(id);
    ASSERT_FALSE(statuses.empty()) << id;
    EXPECT_EQ(statuses.back().state, StreamState::kFailed) << id;
    EXPECT_FALSE(statuses.back().message.empty()) << id;
    EXPECT_EQ(statuses.back().message.find("secret"), std::string::npos) << statuses.back().message;
  }
  // A truncated file gives what it has, then ends or fails: either way with a final status.
  const auto truncated_statuses = recorder.statuses("truncated");
  ASSERT_FALSE(truncated_statuses.empty());
  EXPECT_TRUE(truncated_statuses.back().state == StreamState::kEnded ||
              truncated_statuses.back().state == StreamState::kFailed);
  EXPECT_LT(recorder.frames("truncated"), 110u);
  for (const auto& line : recorder.lines) EXPECT_EQ(line.find("secret"), std::string::npos) << line;
}

TEST(Pipeline, BatchesFramesAcrossStreams) {
  auto pipeline = Pipeline::create(options());
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  std::mutex mutex;
  std::map<int, int> batch_sizes;
  (*pipeline)->subscribe([&](const Event& event) {
    if (const auto* frame = std::get_if<FrameResult>(&event)) {
      std::lock_guard lock(mutex);
      ++batch_sizes[frame->batch_size];
    }
  });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*pipeline)->add_stream(file_stream("", kVideos / "squat_18.mp4", "squat")).ok());
  }
  (*pipeline)->wait();
  int frames = 0, batched = 0;
  for (const auto& [size, count] : batch_sizes) {
    EXPECT_LE(size, 4);
    frames += count;
    if (size > 1) batched += count;
  }
  EXPECT_EQ(frames, 3 * 93);
  // Three files read as fast as possible keep the scheduler supplied: most frames share a batch.
  EXPECT_GT(batched, frames / 2);
  const auto stats = (*pipeline)->stats();
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[1].stream_id, "s2");
  for (const auto& stream : stats) {
    EXPECT_EQ(stream.frames_analysed, 93);
    EXPECT_EQ(stream.frames_dropped, 0);
    EXPECT_EQ(stream.state, StreamState::kEnded);
  }
}

TEST(Pipeline, StopEndsAPacedStreamPromptly) {
  auto pipeline = Pipeline::create(options());
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  Recorder recorder;
  (*pipeline)->subscribe(recorder.subscriber());
  StreamSpec spec = file_stream("paced", kVideos / "lunges_portrait.mp4", "lunge");
  spec.source.realtime = true;  // 17 s of video
  ASSERT_TRUE((*pipeline)->add_stream(spec).ok());
  while (recorder.frames("paced") < 5) std::this_thread::yield();
  (*pipeline)->stop();
  (*pipeline)->wait();
  const auto statuses = recorder.statuses("paced");
  ASSERT_FALSE(statuses.empty());
  EXPECT_EQ(statuses.back().state, StreamState::kStopped);
  EXPECT_LT(recorder.frames("paced"), 200u);
  // Stopped means stopped: no stream can be added any more.
  EXPECT_FALSE((*pipeline)->add_stream(file_stream("late", kVideos / "squat_18.mp4", "squat")).ok());
}

// A service stops, restarts and deletes streams one at a time: the others never notice.
TEST(Pipeline, StopsRestartsAndForgetsOneStreamWhileAnotherRuns) {
  auto pipeline = Pipeline::create(options());
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  Recorder recorder;
  (*pipeline)->subscribe(recorder.subscriber());
  StreamSpec paced = file_stream("paced", kVideos / "lunges_portrait.mp4", "lunge");
  paced.source.realtime = true;  // 17 s of video: still running when the other is stopped
  StreamSpec blocked = file_stream("blocked", kVideos / "lunges_portrait.mp4", "lunge");
  ASSERT_TRUE((*pipeline)->add_stream(paced).ok());
  ASSERT_TRUE((*pipeline)->add_stream(blocked).ok());
  while (recorder.frames("blocked") < 3 || recorder.frames("paced") < 3) std::this_thread::yield();

  ASSERT_TRUE((*pipeline)->stop_stream("blocked").ok());
  while (recorder.statuses("blocked").back().state != StreamState::kStopped) std::this_thread::yield();
  EXPECT_EQ((*pipeline)->stop_stream("nobody").error().code, core::ErrorCode::kNotFound);
  const auto paced_statuses = recorder.statuses("paced");
  EXPECT_EQ(paced_statuses.back().state, StreamState::kRunning) << "stopping one stream left the other alone";

  // The finished stream's id can be taken again; the running one's cannot.
  EXPECT_FALSE((*pipeline)->add_stream(paced).ok());
  StreamSpec again = file_stream("blocked", kVideos / "squat_18.mp4", "squat");
  ASSERT_TRUE((*pipeline)->add_stream(again).ok());
  while (recorder.statuses("blocked").back().state != StreamState::kEnded) std::this_thread::yield();

  // Forgotten once finished: gone from stats.
  ASSERT_TRUE((*pipeline)->remove_stream("paced").ok());
  (*pipeline)->wait();
  EXPECT_EQ(recorder.statuses("paced").back().state, StreamState::kStopped);
  const auto stats = (*pipeline)->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].stream_id, "blocked");
  EXPECT_EQ(stats[0].frames_analysed, 93);
  EXPECT_EQ(stats[0].queued_frames, 0);
}

// Many people (COCO photos of crowds and groups, read as an image folder) and frames with nobody: tracks get
// distinct ids within a frame and nothing fails.
TEST(Pipeline, ManyPeopleAndEmptyFramesWithMultiPose) {
  PipelineOptions many = options();
  many.estimator.model = "movenet-multipose";
  many.estimator.min_person_score = 0.1f;  // small people in crowds score low; 189475.jpg has five above this
  auto pipeline = Pipeline::create(many);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  Recorder recorder;
  (*pipeline)->subscribe(recorder.subscriber());
  StreamSpec spec =
      file_stream("photos", std::filesystem::path(WB_SHARED_DIR) / "testdata" / "coco" / "images", "auto");
  ASSERT_TRUE((*pipeline)->add_stream(spec).ok());
  (*pipeline)->wait();
  EXPECT_EQ(recorder.frames("photos"), 30u);
  EXPECT_EQ(recorder.statuses("photos").back().state, StreamState::kEnded);
  size_t most_people = 0;
  std::lock_guard lock(recorder.mutex);
  for (const auto& event : recorder.by_stream["photos"]) {
    const auto* frame = std::get_if<FrameResult>(&event);
    if (!frame) continue;
    most_people = std::max(most_people, frame->people.size());
    std::set<int64_t> ids;
    for (const auto& person : frame->people) ids.insert(person.track.id);
    EXPECT_EQ(ids.size(), frame->people.size()) << "frame " << frame->frame_index;
  }
  EXPECT_GE(most_people, 4u);
}

TEST(Pipeline, RejectsDuplicateIdsAndUnknownExercises) {
  auto pipeline = Pipeline::create(options());
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  ASSERT_TRUE((*pipeline)->add_stream(file_stream("a", kVideos / "squat_18.mp4", "squat")).ok());
  auto duplicate = (*pipeline)->add_stream(file_stream("a", kVideos / "squat_18.mp4", "squat"));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.error().message.find("taken"), std::string::npos);
  auto unknown = (*pipeline)->add_stream(file_stream("b", kVideos / "squat_18.mp4", "underwater-basket-weaving"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("squat"), std::string::npos) << "lists the known exercises";
  (*pipeline)->wait();
}

TEST(Pipeline, CreateFailsForABadModelOrNoExercises) {
  PipelineOptions bad = options();
  bad.estimator.model = "movenet-gigantic";
  EXPECT_FALSE(Pipeline::create(bad).ok());
  PipelineOptions none = options();
  none.exercises.clear();
  EXPECT_FALSE(Pipeline::create(none).ok());
}

}  // namespace
}  // namespace pose::runtime
