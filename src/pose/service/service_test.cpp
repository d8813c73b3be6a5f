// The pose service end to end on a real socket: the real Lightning model on real clips, a real SQLite store, real
// WebSocket clients. What docs/api.md promises, including its answers to bad input.
#include "pose/service/service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "core/libtorch/libtorch.h"
#include "core/test_support/process.h"
#include "core/test_support/temp_dir.h"
#include "pose/analysis/analysis.h"
#include "server/http/test_client.h"
#ifdef WB_HAVE_POSTGRES
#include "store/test_support/postgres_server.h"
#endif

namespace pose::service {
namespace {

using core::test_support::TempDir;
using nlohmann::json;
using server::http::test_support::Client;
using server::http::test_support::Reply;
using server::http::test_support::WebSocketClient;
namespace bhttp = boost::beast::http;

const std::filesystem::path kVideos = std::filesystem::path(WB_SHARED_DIR) / "testdata" / "videos";

// Polls until `done` or the deadline: generous, since a loaded 2-core machine analyses slowly.
template <class Predicate>
bool eventually(Predicate done, std::chrono::seconds deadline = std::chrono::seconds(120)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

ServiceOptions options_in(const std::filesystem::path& dir) {
  core::libtorch::set_threads(0);
  ServiceOptions options;
  options.pipeline.estimator.model = "movenet-lightning";
  options.pipeline.estimator.track = false;
  options.pipeline.max_batch = 4;
  options.builtin_exercises = analysis::default_exercise_dir();
  options.data_dir = dir / "data";
  options.media_dirs = {kVideos};
  options.web_dir = dir / "web";
  options.live.heartbeat = std::chrono::milliseconds(300);
  return options;
}

// A service and its HTTP server on a free port.
struct Running {
  std::unique_ptr<Service> service;
  std::unique_ptr<server::http::Server> server;
  uint16_t port = 0;

  explicit Running(const ServiceOptions& options, size_t max_body = size_t{64} * 1024) {
    auto created = Service::create(options);
    if (!created) {
      ADD_FAILURE() << created.error().message;
      return;
    }
    service = std::move(*created);
    server::http::ServerOptions server_options;
    server_options.max_body_bytes = max_body;
    server_options.threads = 3;
    auto listening = server::http::Server::create(server_options, service->router());
    if (!listening) {
      ADD_FAILURE() << listening.error().message;
      return;
    }
    server = std::move(*listening);
    port = server->port();
  }
  ~Running() {
    if (server) server->stop();
    service.reset();
  }

  Reply get(const std::string& target, const std::map<std::string, std::string>& headers = {}) const {
    return Client(port).get(target, headers);
  }
  Reply send(bhttp::verb verb, const std::string& target, const std::string& body = {},
             const std::map<std::string, std::string>& headers = {}) const {
    return Client(port).request(verb, target, body, headers);
  }
  Reply post(const std::string& target, const json& body,
             const std::map<std::string, std::string>& headers = {}) const {
    return send(bhttp::verb::post, target, body.dump(), headers);
  }
  std::string state(const std::string& id) const { return get("/api/v1/streams/" + id).json().value("state", ""); }
  json reps(const std::string& id) const { return get("/api/v1/events?stream=" + id + "&kind=rep").json()["events"]; }
};

json stream_request(const std::string& id, const std::string& file, bool start = true) {
  return {
      {"id", id}, {"source", (kVideos / file).string()}, {"exercise", "squat"}, {"realtime", false}, {"start", start}};
}

TEST(Service, AnalysesAStreamAddedOverRestAndKeepsItsReps) {
  TempDir dir("pose_service_rest");
  Running running(options_in(dir.path()));
  ASSERT_TRUE(running.server);
  EXPECT_EQ(running.get("/healthz").status, 200);
  EXPECT_EQ(running.get("/readyz").json()["ready"], true);

  const Reply created = running.post("/api/v1/streams", stream_request("gym-1", "squat_side_3reps.mp4"));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("Location"), "/api/v1/streams/gym-1");
  EXPECT_EQ(created.json()["exercise"], "squat");
  ASSERT_TRUE(eventually([&] { return running.state("gym-1") == "ended"; })) << running.get("/api/v1/streams").body;

  const json stream = running.get("/api/v1/streams/gym-1").json();
  EXPECT_GT(stream["stats"]["frames_analysed"].get<int>(), 100);
  EXPECT_EQ(stream["stats"]["frames_dropped"], 0);
  ASSERT_FALSE(stream["people"].empty());
  EXPECT_EQ(stream["people"][0]["reps"], 3);

  // The reps are stored (the Writer flushes within its interval), each once, with the event id the live
  // clients saw.
  ASSERT_TRUE(eventually([&] { return running.reps("gym-1").size() == 3; })) << running.reps("gym-1").dump();
  const json reps = running.reps("gym-1");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(reps[i]["event"]["rep"], i + 1);
    EXPECT_EQ(reps[i]["person"], reps[0]["person"]);
    EXPECT_GT(reps[i]["event"]["id"].get<int64_t>(), 0);
  }
  const json page = running.get("/api/v1/events?stream=gym-1&limit=1").json();
  ASSERT_EQ(page["events"].size(), 1u);
  ASSERT_TRUE(page["next"].is_number());
  EXPECT_EQ(running.get("/api/v1/events?stream=gym-1&limit=1&after=" + page["next"].dump()).json()["events"][0]["id"],
            page["next"].get<int64_t>() + 1);
  EXPECT_EQ(running.get("/api/v1/events?stream=gym-1&kind=rep&from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z")
                .json()["events"]
                .size(),
            0u);

  const json sessions = running.get("/api/v1/sessions?stream=gym-1").json()["sessions"];
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0]["reps"], 3);
  EXPECT_EQ(sessions[0]["exercise"], "squat");

  // Started again: a file's reps are the same reps, stored once.
  ASSERT_EQ(running.post("/api/v1/streams/gym-1/start", json::object()).status, 200);
  ASSERT_TRUE(eventually([&] { return running.state("gym-1") == "ended"; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // past the Writer's flush interval
  EXPECT_EQ(running.reps("gym-1").size(), 3u);

  const std::string metrics = running.get("/metrics").body;
  for (const char* series :
       {"pose_stream_frames_analysed_total{stream=\"gym-1\"}", "pose_frame_latency_seconds_bucket{stream=\"gym-1\"",
        "pose_inference_batch_size_bucket", "pose_store_up 1", "pose_store_spool_records 0",
        "pose_events_total{stream=\"gym-1\",kind=\"rep\"} 6", "pose_ws_clients"}) {
    EXPECT_NE(metrics.find(series), std::string::npos) << series;
  }

  ASSERT_EQ(running.send(bhttp::verb::delete_, "/api/v1/streams/gym-1").status, 204);
  EXPECT_EQ(running.get("/api/v1/streams/gym-1").status, 404);
  EXPECT_EQ(running.reps("gym-1").size(), 3u) << "deleting a stream keeps its events";
}

TEST(Service, AnswersBadInputWithClearErrors) {
  TempDir dir("pose_service_bad");
  Running running(options_in(dir.path()), 4096);
  ASSERT_TRUE(running.server);
  const auto expect = [&](const Reply& reply, int status, const std::string& says) {
    EXPECT_EQ(reply.status, status) << reply.body;
    EXPECT_NE(reply.json()["error"]["message"].get<std::string>().find(says), std::string::npos) << reply.body;
  };
  const std::string stream = "/api/v1/streams";
  expect(running.send(bhttp::verb::post, stream, "{\"source\": "), 400, "malformed JSON");
  expect(running.send(bhttp::verb::post, stream, "[1, 2]"), 400, "JSON object");
  expect(running.post(stream, {{"exercise", "squat"}}), 400, "'source' is required");
  expect(running.post(stream, {{"source", 42}}), 400, "'source' must be a string");
  expect(running.post(stream, {{"source", "x.mp4"}, {"loop", 2}}), 400, "unknown field 'loop'");
  expect(running.post(stream, {{"source", "x.mp4"}, {"loops", -1}}), 400, "'loops'");
  expect(running.post(stream, {{"source", "x.mp4"}, {"id", "has space"}}), 400, "'id'");
  expect(running.post(stream, {{"source", "/etc/passwd"}}), 422, "outside the media folders");
  // Enough ".." to reach the root from any checkout, and one that names no file: outside comes first either way.
  std::string up;
  for (int i = 0; i < 32; ++i) up += "../";
  expect(running.post(stream, {{"source", up + "etc/passwd"}}), 422, "outside the media folders");
  expect(running.post(stream, {{"source", up + "no-such-dir/secret"}}), 422, "outside the media folders");
  expect(running.post(stream, {{"source", "nothing-here.mp4"}}), 422, "no file");
  expect(running.post(stream, {{"source", "ftp://cam.local/live"}}), 422, "scheme 'ftp'");
  expect(running.post(stream, {{"source", "squat_18.mp4"}, {"exercise", "underwater-basket-weaving"}}), 422,
         "unknown exercise");
  expect(running.send(bhttp::verb::post, stream, "source=x", {{"Content-Type", "application/x-www-form-urlencoded"}}),
         415, "JSON");
  EXPECT_EQ(running.send(bhttp::verb::post, stream, std::string(5000, ' ')).status, 413);

  ASSERT_EQ(running.post(stream, stream_request("a", "squat_18.mp4", false)).status, 201);
  expect(running.post(stream, stream_request("a", "squat_18.mp4", false)), 409, "taken");
  EXPECT_EQ(running.state("a"), "created");
  expect(running.send(bhttp::verb::patch, stream + "/a", R"({"max_side": 10})"), 400, "max_side");
  EXPECT_EQ(running.send(bhttp::verb::patch, stream + "/a", R"({"loops": 2})").json()["settings"]["loops"], 2);

  for (const auto& [verb, target] :
       std::vector<std::pair<bhttp::verb, std::string>>{{bhttp::verb::get, stream + "/nope"},
                                                        {bhttp::verb::patch, stream + "/nope"},
                                                        {bhttp::verb::delete_, stream + "/nope"},
                                                        {bhttp::verb::post, stream + "/nope/start"},
                                                        {bhttp::verb::post, stream + "/nope/stop"},
                                                        {bhttp::verb::get, "/api/v1/exercises/nope"}}) {
    expect(running.send(verb, target, verb == bhttp::verb::patch ? "{}" : ""), 404, "nope");
  }
  WebSocketClient unknown(running.port, stream + "/nope/live");
  EXPECT_FALSE(unknown.open());
  EXPECT_EQ(unknown.handshake().status, 404);
  WebSocketClient bad_rate(running.port, stream + "/a/live?jpeg_fps=90");
  EXPECT_EQ(bad_rate.handshake().status, 400);
  EXPECT_EQ(running.get(stream + "/a/live").status, 426);

  expect(running.get("/api/v1/events?limit=0"), 400, "'limit'");
  expect(running.get("/api/v1/events?from=yesterday"), 400, "'from'");
  expect(running.get("/api/v1/events?kind=jump"), 400, "'kind'");

  expect(running.send(bhttp::verb::put, "/api/v1/exercises/wobble", "name = \"wobble\"\n[count]\n",
                      {{"Content-Type", "application/toml"}}),
         422, "");
  expect(running.send(bhttp::verb::put, "/api/v1/exercises/wobble", "not = toml = at all",
                      {{"Content-Type", "application/toml"}}),
         422, "");
  EXPECT_EQ(running.get("/api/v1/exercises/wobble").status, 404) << "a refused definition is not kept";
}

TEST(Service, AddsAnExerciseAtRunTimeThatNewStreamsUse) {
  TempDir dir("pose_service_exercise");
  Running running(options_in(dir.path()));
  ASSERT_TRUE(running.server);
  const json listed = running.get("/api/v1/exercises").json()["exercises"];
  EXPECT_GE(listed.size(), 8u);
  std::string squat = running.get("/api/v1/exercises/squat").json()["definition"];
  ASSERT_NE(squat.find("name = \"squat\""), std::string::npos);
  squat.replace(squat.find("name = \"squat\""), 14, "name = \"deep-squat\"");
  const Reply put =
      running.send(bhttp::verb::put, "/api/v1/exercises/deep-squat", squat, {{"Content-Type", "application/toml"}});
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(put.json()["custom"], true);
  EXPECT_EQ(
      running.send(bhttp::verb::put, "/api/v1/exercises/other-name", squat, {{"Content-Type", "application/toml"}})
          .status,
      422);
  json request = stream_request("deep", "squat_side_3reps.mp4");
  request["exercise"] = "deep-squat";
  ASSERT_EQ(running.post("/api/v1/streams", request).status, 201);
  ASSERT_TRUE(eventually([&] { return running.reps("deep").size() == 3; }));
  EXPECT_EQ(running.reps("deep")[0]["exercise"], "deep-squat");
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "exercises" / "deep-squat.toml"));
}

TEST(Service, TokensGuardChangesAndOptionallyReads) {
  TempDir dir("pose_service_tokens");
  ServiceOptions options = options_in(dir.path());
  options.tokens = {"s3cret", "other"};
  {
    Running running(options);
    ASSERT_TRUE(running.server);
    const json request = stream_request("t", "squat_18.mp4", false);
    const Reply missing = running.post("/api/v1/streams", request);
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(missing.header("WWW-Authenticate"), "Bearer");
    EXPECT_EQ(running.post("/api/v1/streams", request, {{"Authorization", "Bearer wrong"}}).status, 401);
    EXPECT_EQ(running.post("/api/v1/streams", request, {{"Authorization", "Bearer s3cret"}}).status, 201);
    EXPECT_EQ(running.send(bhttp::verb::delete_, "/api/v1/streams/t").status, 401);
    EXPECT_EQ(running.get("/api/v1/streams").status, 200) << "reads are public by default";
    EXPECT_TRUE(WebSocketClient(running.port, "/api/v1/streams/t/live").open());
  }
  options.public_read = false;
  Running running(options);
  ASSERT_TRUE(running.server);
  EXPECT_EQ(running.get("/api/v1/streams").status, 401);
  EXPECT_EQ(running.get("/api/v1/streams", {{"Authorization", "Bearer other"}}).status, 200);
  EXPECT_EQ(running.get("/api/v1/events?token=other").status, 200);
  EXPECT_EQ(WebSocketClient(running.port, "/api/v1/streams/t/live").handshake().status, 401);
  EXPECT_TRUE(WebSocketClient(running.port, "/api/v1/streams/t/live?token=s3cret").open());
  for (const char* open : {"/healthz", "/readyz", "/metrics", "/openapi.json"}) {
    EXPECT_EQ(running.get(open).status, 200) << open;
  }
  // The streams file keeps the definitions only for this machine's eyes.
  const auto permissions = std::filesystem::status(dir.path() / "data" / "streams.json").permissions();
  EXPECT_EQ(permissions & (std::filesystem::perms::group_all | std::filesystem::perms::others_all),
            std::filesystem::perms::none);
}

TEST(Service, CredentialsInSourceUrlsAreNeverReturned) {
  TempDir dir("pose_service_redact");
  Running running(options_in(dir.path()));
  ASSERT_TRUE(running.server);
  // Nothing listens on port 9 (discard): the stream fails to connect, which is beside the point here.
  const json request = {{"id", "cam"}, {"source", "rtsp://admin:hunter2@127.0.0.1:9/live"}, {"start", false}};
  const Reply created = running.post("/api/v1/streams", request);
  ASSERT_EQ(created.status, 201) << created.body;
  for (const std::string& body :
       {created.body, running.get("/api/v1/streams").body, running.get("/api/v1/streams/cam").body}) {
    EXPECT_EQ(body.find("hunter2"), std::string::npos) << body;
    EXPECT_NE(body.find("127.0.0.1:9/live"), std::string::npos) << body;
  }
}

// A gym's camera that is off when its stream starts: the service keeps trying, with backoff, until it is stopped.
TEST(Service, StartsAFailedLiveSourceAgainUntilStopped) {
  TempDir dir("pose_service_retry");
  ServiceOptions options = options_in(dir.path());
  options.live_retry_initial = std::chrono::milliseconds(50);
  options.live_retry_max = std::chrono::milliseconds(200);
  Running running(options);
  ASSERT_TRUE(running.server);
  const uint16_t nobody = core::test_support::free_port();  // nothing listens there: every open is refused
  const json request = {{"id", "cam"}, {"source", "rtsp://127.0.0.1:" + std::to_string(nobody) + "/live"}};
  ASSERT_EQ(running.post("/api/v1/streams", request).status, 201);
  const auto retries = [&] { return running.get("/api/v1/streams/cam").json().value("retries", 0); };
  ASSERT_TRUE(eventually([&] { return retries() >= 3; }, std::chrono::seconds(60)))
      << running.get("/api/v1/streams/cam").body;
  EXPECT_NE(running.get("/api/v1/streams/cam").json()["message"].get<std::string>().find("starting again"),
            std::string::npos);

  ASSERT_EQ(running.post("/api/v1/streams/cam/stop", json::object()).status, 200);
  ASSERT_TRUE(eventually([&] { return running.state("cam") != "opening"; }));
  const int stopped_at = retries();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // three retry intervals: none may come
  EXPECT_EQ(retries(), stopped_at);
  EXPECT_NE(running.state("cam"), "running");
}

TEST(Service, OpenApiDescribesExactlyTheRoutesServed) {
  TempDir dir("pose_service_openapi");
  auto service = Service::create(options_in(dir.path()));
  ASSERT_TRUE(service.ok()) << service.error().message;
  const json& document = openapi_document();
  EXPECT_EQ(document["openapi"], "3.1.0");
  std::set<std::pair<std::string, std::string>> served, described;
  for (const auto& route : (*service)->router().routes()) {
    std::string method = server::http::to_string(route.method);
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    served.emplace(route.pattern, method);
  }
  for (const auto& [path, operations] : document["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      if (method != "parameters") described.emplace(path, method);
    }
  }
  EXPECT_EQ(served, described);
}

// Everything a live client reads until `until` says stop (or the connection ends).
std::vector<json> read_until(WebSocketClient& client, const std::function<bool(const json&)>& until) {
  std::vector<json> messages;
  while (auto text = client.read()) {
    messages.push_back(json::parse(*text));
    if (until(messages.back())) break;
  }
  return messages;
}

std::vector<json> of_type(const std::vector<json>& messages, const std::string& type) {
  std::vector<json> out;
  for (const auto& message : messages) {
    if (message["type"] == type) out.push_back(message);
  }
  return out;
}

TEST(Service, LiveClientsGetFramesImagesEventsAndResume) {
  TempDir dir("pose_service_live");
  Running running(options_in(dir.path()));
  ASSERT_TRUE(running.server);
  ASSERT_EQ(running.post("/api/v1/streams", stream_request("live", "squat_side_3reps.mp4", false)).status, 201);

  WebSocketClient watcher(running.port, "/api/v1/streams/live/live?jpeg_fps=30");
  ASSERT_TRUE(watcher.open()) << watcher.handshake().body;
  // A client that never reads: it must cost the others nothing.
  WebSocketClient stalled(running.port, "/api/v1/streams/live/live?jpeg_fps=30");
  ASSERT_TRUE(stalled.open());
  ASSERT_EQ(running.post("/api/v1/streams/live/start", json::object()).status, 200);

  const auto ended = [](const json& m) { return m["type"] == "status" && m["state"] == "ended"; };
  const std::vector<json> messages = read_until(watcher, ended);
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.front()["type"], "hello");
  EXPECT_EQ(messages.front()["stream"]["id"], "live");
  ASSERT_TRUE(ended(messages.back())) << "the stream's end arrives, after everything else";
  const auto frames = of_type(messages, "frame");
  const json stream = running.get("/api/v1/streams/live").json();
  EXPECT_EQ(static_cast<int64_t>(frames.size()), stream["stats"]["frames_analysed"].get<int64_t>())
      << "a client that keeps up misses no frame";
  ASSERT_FALSE(frames[frames.size() / 2]["people"].empty());
  EXPECT_EQ(frames[frames.size() / 2]["people"][0]["keypoints"].size(), 17u);
  const auto images = of_type(messages, "image");
  ASSERT_FALSE(images.empty());
  EXPECT_EQ(images[0]["mime"], "image/jpeg");
  EXPECT_EQ(images[0]["data"].get<std::string>().rfind("/9j/", 0), 0u) << "base64 of a JPEG's FF D8 FF";
  EXPECT_FALSE(of_type(messages, "heartbeat").empty());

  std::vector<int64_t> event_ids;
  for (const auto& message : messages) {
    if (message.contains("id")) event_ids.push_back(message["id"]);
  }
  const auto reps = of_type(messages, "rep");
  ASSERT_EQ(reps.size(), 3u);
  EXPECT_TRUE(std::is_sorted(event_ids.begin(), event_ids.end()));
  EXPECT_EQ(std::set<int64_t>(event_ids.begin(), event_ids.end()).size(), event_ids.size());

  // Resume after the first rep: the events after it, in order, then "resume".
  const int64_t after = reps[0]["id"];
  WebSocketClient resumed(running.port,
                          "/api/v1/streams/live/live?frames=false&last_event_id=" + std::to_string(after));
  ASSERT_TRUE(resumed.open());
  const auto replay = read_until(resumed, [](const json& m) { return m["type"] == "resume"; });
  ASSERT_EQ(replay.back()["type"], "resume");
  EXPECT_EQ(replay.back()["complete"], true);
  std::vector<int64_t> replayed;
  for (const auto& message : replay) {
    if (message.contains("id")) replayed.push_back(message["id"]);
  }
  std::vector<int64_t> expected;
  for (int64_t id : event_ids) {
    if (id > after) expected.push_back(id);
  }
  EXPECT_EQ(replayed, expected);
  EXPECT_EQ(of_type(replay, "rep").size(), 2u);
  EXPECT_TRUE(of_type(replay, "frame").empty()) << "frames=false";
}

TEST(Service, ResumesFromTheStoreAfterARestartAndRestartsRunningStreams) {
  TempDir dir("pose_service_restart");
  const ServiceOptions options = options_in(dir.path());
  int64_t first_rep_id = 0;
  {
    Running running(options);
    ASSERT_TRUE(running.server);
    json request = stream_request("paced", "squat_side_3reps.mp4");
    request["realtime"] = true;  // about 10 s: still running when the service stops
    ASSERT_EQ(running.post("/api/v1/streams", request).status, 201);
    ASSERT_TRUE(eventually([&] { return !running.reps("paced").empty(); }));
    first_rep_id = running.reps("paced")[0]["event"]["id"];
    ASSERT_EQ(running.post("/api/v1/streams", stream_request("idle", "squat_18.mp4", false)).status, 201);
  }
  // The service stopped with "paced" running: it starts again; "idle" was never started and stays so.
  Running running(options);
  ASSERT_TRUE(running.server);
  EXPECT_EQ(running.state("idle"), "created");
  EXPECT_NE(running.state("paced"), "created");
  ASSERT_TRUE(eventually([&] { return running.state("paced") == "ended"; }));
  ASSERT_TRUE(eventually([&] { return running.reps("paced").size() == 3; })) << running.reps("paced").dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(running.reps("paced").size(), 3u) << "analysed twice, stored once";

  // A client of the new process resumes from an id of the old one: from the store.
  WebSocketClient resumed(running.port,
                          "/api/v1/streams/paced/live?frames=false&last_event_id=" + std::to_string(first_rep_id - 1));
  ASSERT_TRUE(resumed.open());
  const auto replay = read_until(resumed, [](const json& m) { return m["type"] == "resume"; });
  ASSERT_EQ(replay.back()["type"], "resume");
  // The stored rep 1 of the first run, then what the second run showed live (its own rep 1 included: live clients
  // see the analysis as it happens; the store keeps each rep once).
  std::set<int> rep_numbers;
  for (const auto& rep : of_type(replay, "rep")) rep_numbers.insert(rep["rep"].get<int>());
  EXPECT_EQ(rep_numbers, (std::set<int>{1, 2, 3}));
  EXPECT_EQ(of_type(replay, "rep").front()["id"], first_rep_id);
}

}  // namespace
}  // namespace pose::service

#ifdef WB_HAVE_POSTGRES
namespace pose::service {
namespace {

// The acceptance test of the service's PostgreSQL store: the database stops mid-stream and comes back. Meanwhile
// the service reports itself not ready, events wait in the spool, and afterwards every rep is stored once.
TEST(Service, PostgresStoppedAndRestartedMidStreamLosesNothing) {
  store::test_support::PostgresServer database;
  if (!std::filesystem::exists(store::test_support::kPostgresBin / "initdb")) {
    GTEST_SKIP() << "PostgreSQL 15 is not installed (postgresql-15)";
  }
  ASSERT_TRUE(database.ok()) << "the test database did not start";
  TempDir dir("pose_service_postgres");
  ServiceOptions options = options_in(dir.path());
  options.db = database.uri();
  Running running(options);
  ASSERT_TRUE(running.server);
  json request = stream_request("pg", "squat_side_3reps.mp4");
  request["realtime"] = true;  // about 14 s
  ASSERT_EQ(running.post("/api/v1/streams", request).status, 201);
  ASSERT_TRUE(eventually([&] { return running.reps("pg").size() == 1; }));

  database.stop();
  EXPECT_TRUE(eventually([&] { return running.get("/readyz").status == 503; }))
      << "a write fails once a rep comes: the service says so";
  EXPECT_EQ(running.get("/api/v1/events?stream=pg").status, 503);
  ASSERT_TRUE(eventually([&] { return running.state("pg") == "ended"; }));
  const std::string during = running.get("/metrics").body;
  EXPECT_EQ(during.find("pose_store_spool_records 0\n"), std::string::npos) << "the later reps wait in the spool";

  ASSERT_TRUE(database.start());
  ASSERT_TRUE(eventually([&] { return running.get("/readyz").status == 200; }));
  ASSERT_TRUE(eventually([&] { return running.reps("pg").size() == 3; })) << running.reps("pg").dump();
  const json reps = running.reps("pg");
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(reps[i]["event"]["rep"], i + 1);
  EXPECT_NE(running.get("/metrics").body.find("pose_store_spool_records 0\n"), std::string::npos);
}

}  // namespace
}  // namespace pose::service
#endif
