// The service's HTTP side: request -> validation -> a call on the Service's state -> response. docs/api.md is the
// contract; openapi.cpp describes the same routes, and a test checks that the two agree.
#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "pose/analysis/analysis.h"
#include "pose/service/state.h"
#include "pose/service/text.h"

namespace pose::service {
namespace {

using nlohmann::json;
using server::http::json_error;
using server::http::json_response;
using server::http::Method;
using server::http::PathParams;
using server::http::Request;
using server::http::Response;

enum class Access { kOpen, kRead, kWrite };

// Equal length and equal bytes, in time that does not depend on where they differ.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  return difference == 0;
}

// The token a request carries: "Authorization: Bearer T", or ?token=T (browsers cannot set WebSocket headers).
std::string token_of(const Request& request) {
  if (const auto header = request.headers.find("Authorization"); header != request.headers.end()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (header->second.size() > kBearer.size() &&
        std::equal(kBearer.begin(), kBearer.end(), header->second.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return header->second.substr(kBearer.size());
    }
  }
  if (const auto query = request.query.find("token"); query != request.query.end()) return query->second;
  return "";
}

// nullopt when the request may go on; else the 401.
std::optional<Response> refuse_unauthorised(const ServiceOptions& options, Access access, const Request& request) {
  if (access == Access::kOpen || options.tokens.empty()) return std::nullopt;
  if (access == Access::kRead && options.public_read) return std::nullopt;
  const std::string token = token_of(request);
  const bool known = std::any_of(options.tokens.begin(), options.tokens.end(),
                                 [&](const std::string& t) { return same_secret(t, token); });
  if (known) return std::nullopt;
  Response response = json_error(
      401, token.empty() ? "this request needs a token: Authorization: Bearer TOKEN" : "the token is not valid");
  response.headers["WWW-Authenticate"] = "Bearer";
  return response;
}

// The request's JSON object body, or the 4xx that says what is wrong with it.
struct Body {
  json value;
  std::optional<Response> error;
};

Body json_body(const Request& request) {
  Body body;
  const auto type = request.headers.find("Content-Type");
  if (type != request.headers.end() && type->second.find("json") == std::string::npos) {
    body.error = json_error(415, "the body must be JSON (Content-Type: application/json), not " + type->second);
    return body;
  }
  try {
    body.value = json::parse(request.body.empty() ? std::string("{}") : request.body);
  } catch (const json::parse_error& e) {
    body.error = json_error(400, std::string("malformed JSON: ") + e.what());
    return body;
  }
  if (!body.value.is_object()) body.error = json_error(400, "the body must be a JSON object");
  return body;
}

// Typed optional fields of a JSON object; the first problem becomes the 400.
class Fields {
 public:
  Fields(const json& object, const std::set<std::string>& known) : object_(object) {
    for (const auto& [key, value] : object.items()) {
      if (!known.count(key) && !error_) error_ = "unknown field '" + key + "'";
    }
  }

  void text(const char* key, std::string* out) {
    if (const json* value = find(key)) {
      if (value->is_string())
        *out = value->get<std::string>();
      else
        fail(key, "a string");
    }
  }
  void boolean(const char* key, bool* out) {
    if (const json* value = find(key)) {
      if (value->is_boolean())
        *out = value->get<bool>();
      else
        fail(key, "true or false");
    }
  }
  void integer(const char* key, int* out, int min, int max) {
    if (const json* value = find(key)) {
      if (value->is_number_integer() && value->get<int64_t>() >= min && value->get<int64_t>() <= max) {
        *out = value->get<int>();
      } else {
        fail(key, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
      }
    }
  }
  bool has(const char* key) const { return object_.contains(key); }
  std::optional<Response> error() const {
    if (!error_) return std::nullopt;
    return json_error(400, *error_);
  }

 private:
  const json* find(const char* key) const {
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  void fail(const char* key, const std::string& expected) {
    if (!error_) error_ = std::string("field '") + key + "' must be " + expected;
  }
  const json& object_;
  std::optional<std::string> error_;
};

bool valid_id(const std::string& id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool is_camera(const std::string& source) {
  static const std::regex camera(R"((/dev/video\d+)|(camera:\d+)|(\d+))");
  return std::regex_match(source, camera);
}

// The source as the pipeline will open it, or the 422 that says why not.
core::Result<std::string> resolve_source(const ServiceOptions& options, const std::string& source) {
  if (source.empty() || source.size() > 4096) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "source must be 1 to 4096 characters");
  }
  if (is_camera(source)) return source;
  if (const size_t scheme_end = source.find("://"); scheme_end != std::string::npos) {
    std::string scheme = source.substr(0, scheme_end);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
    if (scheme == "rtsp" || scheme == "rtsps" || scheme == "http" || scheme == "https") {
      if (source.size() == scheme_end + 3) {
        return core::make_error(core::ErrorCode::kInvalidArgument,
                                "source " + video::redact_uri(source) + " has no host");
      }
      return source;
    }
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "source scheme '" + scheme +
                                "' is not read here: use rtsp://, rtsps://, http://, https://, "
                                "a camera (/dev/video0) or a file in a media folder");
  }
  if (options.media_dirs.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "file sources are off: the service has no --media-dir");
  }
  std::filesystem::path path(source);
  if (path.is_relative()) path = options.media_dirs.front() / path;
  std::error_code ec;
  const std::filesystem::path real = std::filesystem::weakly_canonical(path, ec);  // symbolic links resolved
  // Inside a media folder is decided before existence, so that a request cannot learn whether a file outside exists.
  const bool inside = !ec && std::any_of(options.media_dirs.begin(), options.media_dirs.end(), [&](const auto& dir) {
    std::error_code root_ec;
    const std::filesystem::path root = std::filesystem::weakly_canonical(dir, root_ec);
    if (root_ec) return false;
    return std::mismatch(root.begin(), root.end(), real.begin(), real.end()).first == root.end();
  });
  if (!inside) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "source " + source + " is outside the media folders the service may read (--media-dir)");
  }
  if (!std::filesystem::is_regular_file(real, ec)) {
    return core::make_error(core::ErrorCode::kNotFound, "no file " + source + " in the media folders");
  }
  return real.string();
}

Response error_response(int status, const core::Error& error) { return json_error(status, error.message); }

// Reads a query parameter as a time (RFC 3339 or microseconds) or an integer.
std::optional<Response> time_parameter(const Request& request, const char* name, int64_t* out) {
  const auto it = request.query.find(name);
  if (it == request.query.end()) return std::nullopt;
  const auto parsed = parse_time_us(it->second);
  if (!parsed) {
    return json_error(400, std::string("parameter '") + name +
                               "' must be an RFC 3339 time (2026-11-27T09:00:00Z) or microseconds since the epoch");
  }
  *out = *parsed;
  return std::nullopt;
}

std::optional<Response> integer_parameter(const Request& request, const char* name, int64_t min, int64_t max,
                                          int64_t* out) {
  const auto it = request.query.find(name);
  if (it == request.query.end()) return std::nullopt;
  try {
    size_t used = 0;
    const int64_t value = std::stoll(it->second, &used);
    if (used == it->second.size() && value >= min && value <= max) {
      *out = value;
      return std::nullopt;
    }
  } catch (const std::exception&) {
  }
  return json_error(400, std::string("parameter '") + name + "' must be an integer from " + std::to_string(min) +
                             " to " + std::to_string(max));
}

std::optional<Response> bool_parameter(const Request& request, const char* name, bool* out) {
  const auto it = request.query.find(name);
  if (it == request.query.end()) return std::nullopt;
  if (it->second == "true" || it->second == "1")
    *out = true;
  else if (it->second == "false" || it->second == "0")
    *out = false;
  else
    return json_error(400, std::string("parameter '") + name + "' must be true or false");
  return std::nullopt;
}

json exercise_json(const ExerciseEntry& entry, bool with_definition) {
  const analysis::ExerciseInfo info = analysis::describe(*entry.exercise);
  json out = {{"name", info.name},     {"description", info.description},
              {"views", info.views},   {"key_angles", info.key_angles},
              {"kind", info.kind},     {"rules", info.rules},
              {"custom", entry.custom}};
  if (with_definition) out["definition"] = entry.toml;
  return out;
}

const char* content_type_of(const std::filesystem::path& path) {
  const std::string extension = path.extension().string();
  if (extension == ".html") return "text/html; charset=utf-8";
  if (extension == ".js" || extension == ".mjs") return "text/javascript; charset=utf-8";
  if (extension == ".css") return "text/css; charset=utf-8";
  if (extension == ".svg") return "image/svg+xml";
  if (extension == ".png") return "image/png";
  if (extension == ".ico") return "image/x-icon";
  if (extension == ".json" || extension == ".map") return "application/json";
  return "application/octet-stream";
}

Response static_file(const std::filesystem::path& path, bool immutable) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return json_error(404, "no file " + path.filename().string());
  std::stringstream bytes;
  bytes << in.rdbuf();
  Response response;
  response.content_type = content_type_of(path);
  response.body = bytes.str();
  // Vite names assets by their content's hash, so they never change; index.html must be fetched each time.
  response.headers["Cache-Control"] = immutable ? "public, max-age=31536000, immutable" : "no-cache";
  return response;
}

class Api {
 public:
  explicit Api(Service::State& state) : s_(state) {}

  // Handlers hold a copy of the Api (a reference to the state), so it need not outlive this call.
  server::http::Router router() const {
    server::http::Router router;
    add(router, Method::kGet, "/healthz", Access::kOpen, [](const Request&, const PathParams&) {
      return json_response(200, {{"status", "ok"}});
    });
    add(router, Method::kGet, "/readyz", Access::kOpen,
        [api = *this](const Request&, const PathParams&) { return api.ready(); });
    add(router, Method::kGet, "/metrics", Access::kOpen, [api = *this](const Request&, const PathParams&) {
      Response response;
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = api.s_.metrics_text();
      return response;
    });
    add(router, Method::kGet, "/openapi.json", Access::kOpen,
        [](const Request&, const PathParams&) { return json_response(200, openapi_document()); });

    add(router, Method::kGet, "/", Access::kOpen,
        [api = *this](const Request&, const PathParams&) { return api.index(); });
    add(router, Method::kGet, "/assets/{file}", Access::kOpen, [api = *this](const Request&, const PathParams& p) {
      const std::string& file = p.at("file");
      if (file.front() == '.' || file.find('/') != std::string::npos) return json_error(404, "no file " + file);
      return static_file(api.s_.options.web_dir / "assets" / file, true);
    });

    add(router, Method::kGet, "/api/v1/streams", Access::kRead,
        [api = *this](const Request&, const PathParams&) { return api.list_streams(); });
    add(router, Method::kPost, "/api/v1/streams", Access::kWrite,
        [api = *this](const Request& r, const PathParams&) { return api.create_stream(r); });
    add(router, Method::kGet, "/api/v1/streams/{id}", Access::kRead,
        [api = *this](const Request&, const PathParams& p) { return api.get_stream(p.at("id")); });
    add(router, Method::kPatch, "/api/v1/streams/{id}", Access::kWrite,
        [api = *this](const Request& r, const PathParams& p) { return api.patch_stream(r, p.at("id")); });
    add(router, Method::kDelete, "/api/v1/streams/{id}", Access::kWrite,
        [api = *this](const Request&, const PathParams& p) { return api.delete_stream(p.at("id")); });
    add(router, Method::kPost, "/api/v1/streams/{id}/start", Access::kWrite,
        [api = *this](const Request&, const PathParams& p) { return api.start_stream(p.at("id")); });
    add(router, Method::kPost, "/api/v1/streams/{id}/stop", Access::kWrite,
        [api = *this](const Request&, const PathParams& p) { return api.stop_stream(p.at("id")); });
    router.websocket("/api/v1/streams/{id}/live",
                     [api = *this](const Request& r, const PathParams& p) { return api.live(r, p.at("id")); });

    add(router, Method::kGet, "/api/v1/events", Access::kRead,
        [api = *this](const Request& r, const PathParams&) { return api.events(r); });
    add(router, Method::kGet, "/api/v1/sessions", Access::kRead,
        [api = *this](const Request& r, const PathParams&) { return api.sessions(r); });

    add(router, Method::kGet, "/api/v1/exercises", Access::kRead,
        [api = *this](const Request&, const PathParams&) { return api.list_exercises(); });
    add(router, Method::kGet, "/api/v1/exercises/{name}", Access::kRead,
        [api = *this](const Request&, const PathParams& p) { return api.get_exercise(p.at("name")); });
    add(router, Method::kPut, "/api/v1/exercises/{name}", Access::kWrite,
        [api = *this](const Request& r, const PathParams& p) { return api.put_exercise(r, p.at("name")); });
    return router;
  }

 private:
  // Every route goes through here: the token check and the request counter.
  void add(server::http::Router& router, Method method, std::string pattern, Access access,
           std::function<Response(const Request&, const PathParams&)> handler) const {
    router.add(method, std::move(pattern),
               [&state = s_, access, handler = std::move(handler)](const Request& request, const PathParams& params) {
                 std::optional<Response> refused = refuse_unauthorised(state.options, access, request);
                 Response response = refused ? std::move(*refused) : handler(request, params);
                 state.requests->with({std::to_string(response.status)}).inc();
                 return response;
               });
  }

  Response ready() const {
    const store::WriterStats writer = s_.writer->stats();
    bool shutting_down = false;
    {
      std::lock_guard lock(s_.mutex);
      shutting_down = s_.shutting_down;
    }
    const json checks = {{"model", "ok"},
                         {"store", writer.store_up ? "ok" : "down: events wait in the spool until it is back"},
                         {"accepting", shutting_down ? "shutting down" : "ok"}};
    const bool ready = writer.store_up && !shutting_down;
    return json_response(ready ? 200 : 503, {{"ready", ready}, {"checks", checks}});
  }

  Response index() const {
    const std::filesystem::path index = s_.options.web_dir / "index.html";
    if (std::filesystem::exists(index)) return static_file(index, false);
    Response response;
    response.content_type = "text/html; charset=utf-8";
    response.body =
        "<!doctype html><title>pose service</title><h1>pose service</h1><p>The dashboard is not built ("
        "<code>npm run build:web</code>, which <code>make run-pose</code> does). The API is at <a "
        "href=\"/api/v1/streams\">/api/v1/streams</a>, described by <a href=\"/openapi.json\">/openapi.json</a>.</p>";
    return response;
  }

  std::map<std::string, runtime::StreamStats> stats_by_stream() const {
    std::map<std::string, runtime::StreamStats> out;
    for (auto& stats : s_.pipeline->stats()) out[stats.stream_id] = stats;
    return out;
  }

  json stream_json(const StreamEntry& entry, const std::map<std::string, runtime::StreamStats>& stats) const {
    const auto it = stats.find(entry.definition.id);
    return s_.stream_json(entry, it == stats.end() ? nullptr : &it->second);
  }

  Response list_streams() const {
    const auto stats = stats_by_stream();
    json all = json::array();
    std::lock_guard lock(s_.mutex);
    for (const auto& id : s_.order) all.push_back(stream_json(s_.streams.at(id), stats));
    return json_response(200, {{"streams", std::move(all)}});
  }

  Response get_stream(const std::string& id) const {
    const auto stats = stats_by_stream();
    std::lock_guard lock(s_.mutex);
    const auto it = s_.streams.find(id);
    if (it == s_.streams.end()) return unknown_stream(id);
    return json_response(200, stream_json(it->second, stats));
  }

  static Response unknown_stream(const std::string& id) { return json_error(404, "no stream '" + id + "'"); }

  // Validates the settings fields into `d`; a 400 or 422 when they are wrong.
  std::optional<Response> read_settings(Fields& fields, StreamDefinition& d) const {
    fields.text("exercise", &d.exercise);
    fields.boolean("realtime", &d.realtime);
    fields.integer("loops", &d.loops, 0, 1'000'000);
    fields.integer("max_side", &d.max_side, 0, 8192);
    if (auto error = fields.error()) return error;
    if (d.max_side != 0 && d.max_side < 64) return json_error(400, "field 'max_side' must be 0 or at least 64");
    if (d.exercise != "auto" && !s_.exercises.count(d.exercise)) {
      std::string known;
      for (const auto& [name, entry] : s_.exercises) known += (known.empty() ? "" : ", ") + name;
      return json_error(422, "unknown exercise '" + d.exercise + "'; known: auto, " + known);
    }
    return std::nullopt;
  }

  Response create_stream(const Request& request) const {
    Body body = json_body(request);
    if (body.error) return *body.error;
    Fields fields(body.value, {"id", "source", "exercise", "realtime", "loops", "max_side", "start"});
    StreamDefinition d;
    d.max_side = s_.options.default_max_side;
    std::string source;
    bool start = true;
    fields.text("id", &d.id);
    fields.text("source", &source);
    fields.boolean("start", &start);
    if (!fields.has("source") && !fields.error()) return json_error(400, "field 'source' is required");
    std::lock_guard lock(s_.mutex);
    if (auto error = read_settings(fields, d)) return *error;
    if (fields.has("id") && !valid_id(d.id)) {
      return json_error(400, "field 'id' must be 1 to 64 letters, digits, '-' or '_'");
    }
    auto resolved = resolve_source(s_.options, source);
    if (!resolved) return error_response(422, resolved.error());
    d.source = std::move(*resolved);
    if (d.id.empty()) {
      do d.id = "s" + std::to_string(++s_.streams_created);
      while (s_.streams.count(d.id));
    } else if (s_.streams.count(d.id)) {
      return json_error(409, "stream id '" + d.id + "' is taken");
    }
    d.created_us = wall_clock_us();
    StreamEntry entry;
    entry.definition = d;
    s_.order.push_back(d.id);
    StreamEntry& added = s_.streams[d.id] = std::move(entry);
    if (start) {
      if (auto started = s_.start(added); !started) {
        s_.order.pop_back();
        s_.streams.erase(d.id);
        return error_response(422, started.error());
      }
    } else {
      s_.save_streams();
    }
    s_.options.logger.info("stream ", d.id, " added: ", video::redact_uri(d.source));
    Response response = json_response(201, s_.stream_json(added, nullptr));
    response.headers["Location"] = "/api/v1/streams/" + d.id;
    return response;
  }

  static bool is_active(const StreamEntry& entry) { return entry.state == "opening" || entry.state == "running"; }

  Response patch_stream(const Request& request, const std::string& id) const {
    Body body = json_body(request);
    if (body.error) return *body.error;
    Fields fields(body.value, {"exercise", "realtime", "loops", "max_side"});
    std::lock_guard lock(s_.mutex);
    const auto it = s_.streams.find(id);
    if (it == s_.streams.end()) return unknown_stream(id);
    StreamDefinition changed = it->second.definition;
    if (auto error = read_settings(fields, changed)) return *error;
    if (is_active(it->second)) return json_error(409, "stream '" + id + "' is running: stop it first");
    it->second.definition = changed;
    s_.save_streams();
    return json_response(200, s_.stream_json(it->second, nullptr));
  }

  Response start_stream(const std::string& id) const {
    std::lock_guard lock(s_.mutex);
    const auto it = s_.streams.find(id);
    if (it == s_.streams.end()) return unknown_stream(id);
    if (is_active(it->second)) return json_error(409, "stream '" + id + "' is already " + it->second.state);
    it->second.retries = 0;
    it->second.retry_at_us = 0;
    if (auto started = s_.start(it->second); !started) {
      // The previous run has been told to stop but has not finished yet.
      if (started.error().code == core::ErrorCode::kInvalidArgument) {
        return json_error(409, "stream '" + id + "' is still stopping; try again in a moment");
      }
      return error_response(422, started.error());
    }
    return json_response(200, s_.stream_json(it->second, nullptr));
  }

  Response stop_stream(const std::string& id) const {
    std::lock_guard lock(s_.mutex);
    const auto it = s_.streams.find(id);
    if (it == s_.streams.end()) return unknown_stream(id);
    it->second.definition.run = false;
    it->second.retry_at_us = 0;  // a failed camera waiting to be started again is not
    s_.save_streams();
    (void)s_.pipeline->stop_stream(id);  // kNotFound: it never ran; nothing to stop
    return json_response(200, s_.stream_json(it->second, nullptr));
  }

  Response delete_stream(const std::string& id) const {
    {
      std::lock_guard lock(s_.mutex);
      const auto it = s_.streams.find(id);
      if (it == s_.streams.end()) return unknown_stream(id);
      (void)s_.pipeline->remove_stream(id);  // kNotFound: it never ran
      s_.streams.erase(it);
      std::erase(s_.order, id);
      s_.save_streams();
    }
    s_.hub->close_stream(id);
    s_.options.logger.info("stream ", id, " deleted");
    Response response;
    response.status = 204;
    response.content_type.clear();
    return response;
  }

  std::variant<Response, server::http::WebSocketAccept> live(const Request& request, const std::string& id) const {
    if (auto refused = refuse_unauthorised(s_.options, Access::kRead, request)) return *refused;
    ClientOptions options;
    int64_t jpeg_fps = 0;
    int64_t last_event_id = -1;
    for (auto error :
         {bool_parameter(request, "frames", &options.frames), bool_parameter(request, "keypoints", &options.keypoints),
          integer_parameter(request, "jpeg_fps", 0, 30, &jpeg_fps),
          integer_parameter(request, "last_event_id", 0, INT64_MAX, &last_event_id)}) {
      if (error) return *error;
    }
    options.jpeg_fps = static_cast<double>(jpeg_fps);
    options.last_event_id = last_event_id;
    json hello;
    {
      const auto stats = stats_by_stream();
      std::lock_guard lock(s_.mutex);
      const auto it = s_.streams.find(id);
      if (it == s_.streams.end()) return unknown_stream(id);
      hello = {{"type", "hello"},
               {"stream", stream_json(it->second, stats)},
               {"heartbeat_s", static_cast<double>(s_.options.live.heartbeat.count()) / 1000.0},
               {"queue", s_.options.live.client_queue}};
    }
    server::http::WebSocketAccept accept;
    accept.max_queued = s_.hub->connection_queue();
    accept.ping_interval = s_.options.live.heartbeat;
    LiveHub* hub = s_.hub.get();
    // The connection, once open; on_message and on_close need it. Weak: the hub owns the live reference.
    auto socket = std::make_shared<std::weak_ptr<server::http::WebSocket>>();
    accept.callbacks.on_open = [hub, id, options, hello, socket](const std::shared_ptr<server::http::WebSocket>& ws) {
      *socket = ws;
      hub->attach(id, ws, options, hello);
    };
    accept.callbacks.on_message = [socket](std::string_view) {
      if (auto ws = socket->lock()) {
        ws->send(json{{"type", "error"}, {"message", "this endpoint only sends; messages to it are ignored"}}.dump(),
                 true);
      }
    };
    accept.callbacks.on_close = [hub, socket] {
      if (auto ws = socket->lock()) hub->detach(ws.get());
    };
    s_.requests->with({"101"}).inc();
    return accept;
  }

  Response events(const Request& request) const {
    store::Query query;
    int64_t person = -1, after = 0, limit = 100;
    for (auto error : {time_parameter(request, "from", &query.from_us), time_parameter(request, "to", &query.to_us),
                       integer_parameter(request, "person", 0, INT64_MAX, &person),
                       integer_parameter(request, "after", 0, INT64_MAX, &after),
                       integer_parameter(request, "limit", 1, 1000, &limit)}) {
      if (error) return *error;
    }
    const auto text = [&](const char* name) {
      const auto it = request.query.find(name);
      return it == request.query.end() ? std::string() : it->second;
    };
    query.stream_id = text("stream");
    query.kind = text("kind");
    query.exercise = text("exercise");
    if (!query.kind.empty() && query.kind != "rep" && query.kind != "form" && query.kind != "anomaly" &&
        query.kind != "status") {
      return json_error(400, "parameter 'kind' must be rep, form, anomaly or status");
    }
    if (person >= 0) query.track_id = person;
    query.after_id = after;
    query.limit = static_cast<int>(limit);
    core::Result<store::Page> page = [&] {
      std::lock_guard lock(s_.read_mutex);
      return s_.read_store->query(query);
    }();
    if (!page) return json_error(503, "the event store cannot be read now: " + page.error().message);
    json events = json::array();
    for (const auto& stored : page->records) {
      const store::Record& r = stored.record;
      json payload = json::parse(r.payload, nullptr, false);
      events.push_back({{"id", stored.id},
                        {"stream", r.stream_id},
                        {"kind", r.kind},
                        {"person", r.track_id >= 0 ? json(r.track_id) : json(nullptr)},
                        {"exercise", r.exercise},
                        {"time", rfc3339(r.timestamp_us)},
                        {"event", payload.is_discarded() ? json(r.payload) : std::move(payload)}});
    }
    return json_response(200, {{"events", std::move(events)},
                               {"next", page->next_after_id > 0 ? json(page->next_after_id) : json(nullptr)}});
  }

  // Per stream, person and exercise: what the store holds. Read page by page, at most kMostEvents.
  Response sessions(const Request& request) const {
    static constexpr int64_t kMostEvents = 200'000;
    store::Query query;
    for (auto error : {time_parameter(request, "from", &query.from_us), time_parameter(request, "to", &query.to_us)}) {
      if (error) return *error;
    }
    if (auto it = request.query.find("stream"); it != request.query.end()) query.stream_id = it->second;
    if (auto it = request.query.find("exercise"); it != request.query.end()) query.exercise = it->second;
    query.limit = 1000;
    struct Session {
      int64_t reps = 0, form = 0, anomalies = 0, first_us = 0, last_us = 0;
    };
    std::map<std::tuple<std::string, int64_t, std::string>, Session> sessions;
    int64_t read = 0;
    bool truncated = false;
    while (true) {
      core::Result<store::Page> page = [&] {
        std::lock_guard lock(s_.read_mutex);
        return s_.read_store->query(query);
      }();
      if (!page) return json_error(503, "the event store cannot be read now: " + page.error().message);
      for (const auto& stored : page->records) {
        const store::Record& r = stored.record;
        if (r.track_id < 0) continue;  // stream status
        Session& session = sessions[{r.stream_id, r.track_id, r.exercise}];
        session.reps += r.kind == "rep";
        session.form += r.kind == "form";
        session.anomalies += r.kind == "anomaly";
        session.first_us = session.first_us == 0 ? r.timestamp_us : std::min(session.first_us, r.timestamp_us);
        session.last_us = std::max(session.last_us, r.timestamp_us);
      }
      read += static_cast<int64_t>(page->records.size());
      if (page->next_after_id == 0) break;
      if (read >= kMostEvents) {
        truncated = true;
        break;
      }
      query.after_id = page->next_after_id;
    }
    json all = json::array();
    for (const auto& [key, session] : sessions) {
      const auto& [stream, person, exercise] = key;
      all.push_back({{"stream", stream},
                     {"person", person},
                     {"exercise", exercise},
                     {"reps", session.reps},
                     {"form_issues", session.form},
                     {"anomalies", session.anomalies},
                     {"first", rfc3339(session.first_us)},
                     {"last", rfc3339(session.last_us)}});
    }
    return json_response(200, {{"sessions", std::move(all)}, {"truncated", truncated}});
  }

  Response list_exercises() const {
    json all = json::array();
    std::lock_guard lock(s_.mutex);
    for (const auto& [name, entry] : s_.exercises) all.push_back(exercise_json(entry, false));
    return json_response(200, {{"exercises", std::move(all)}});
  }

  Response get_exercise(const std::string& name) const {
    std::lock_guard lock(s_.mutex);
    const auto it = s_.exercises.find(name);
    if (it == s_.exercises.end()) return json_error(404, "no exercise '" + name + "'");
    return json_response(200, exercise_json(it->second, true));
  }

  Response put_exercise(const Request& request, const std::string& name) const {
    const auto type = request.headers.find("Content-Type");
    if (type != request.headers.end() && type->second.find("toml") == std::string::npos &&
        type->second.find("text/plain") == std::string::npos) {
      return json_error(415, "an exercise is TOML (Content-Type: application/toml), not " + type->second);
    }
    if (!valid_id(name)) return json_error(400, "an exercise name is 1 to 64 letters, digits, '-' or '_'");
    auto parsed = analysis::parse_exercise(request.body, "PUT /api/v1/exercises/" + name);
    if (!parsed) return error_response(422, parsed.error());
    if (analysis::exercise_name(**parsed) != name) {
      return json_error(422, "the definition is named '" + analysis::exercise_name(**parsed) + "', not '" + name +
                                 "' as the URL says");
    }
    std::lock_guard lock(s_.mutex);
    const bool replaced = s_.exercises.count(name) > 0;
    const std::filesystem::path file = s_.options.data_dir / "exercises" / (name + ".toml");
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    {
      std::ofstream out(file.string() + ".tmp", std::ios::trunc);
      out << request.body;
      if (!out.flush()) return json_error(507, "cannot save the exercise in " + file.parent_path().string());
    }
    std::filesystem::rename(file.string() + ".tmp", file, ec);
    if (ec) return json_error(507, "cannot save the exercise: " + ec.message());
    ExerciseEntry& entry = s_.exercises[name] = ExerciseEntry{*parsed, request.body, true};
    s_.options.logger.info("exercise ", name, replaced ? " replaced" : " added");
    return json_response(replaced ? 200 : 201, exercise_json(entry, false));
  }

  Service::State& s_;
};

}  // namespace

server::http::Router make_router(Service::State& state) { return Api(state).router(); }

}  // namespace pose::service
