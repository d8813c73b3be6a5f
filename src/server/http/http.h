#pragma once
// server::http: a small HTTP/1.1 server for the tools' REST APIs and Prometheus endpoints.
//
// The application describes its API as a Router: (method, path pattern) -> handler, where a handler is a pure
// function from a Request value to a Response value. The Server owns the sockets and threads (Boost.Beast, kept
// out of this header), turns each parsed request into a Request, asks the Router, and writes the Response back.
// Protocol failures are answered by the server itself: 400 malformed request, 408 request timeout, 413 body too
// large, 431 headers too large, 500 for a handler that throws (handlers should not; the server survives it).
//
// WebSocket seam: an upgrade request (Connection: Upgrade, Upgrade: websocket) is recognised in one place in
// server.cpp (Session::dispatch) and answered 501 today. WebSocket support will add an upgrade route to the
// Router whose handler takes over the connection's stream there; plain routes are unaffected.
//
// Thread-safety: a Router is built on one thread and then only read; handlers are called concurrently from the
// server's I/O threads and must be safe for that. Server's methods may be called from any thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/result.h"

namespace server::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete, kOptions };
const char* to_string(Method method);  // "GET"
std::optional<Method> parse_method(std::string_view text);

// Header names compare case-insensitively, as HTTP requires.
struct HeaderNameLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};
// A header sent several times is kept once, its values joined with ", " (RFC 9110 5.3).
using Headers = std::map<std::string, std::string, HeaderNameLess>;

struct Request {
  Method method = Method::kGet;
  std::string path;  // as sent, still percent-encoded: "/api/v1/jobs/7"; path parameters come decoded
  std::map<std::string, std::string, std::less<>> query;  // decoded ('+' is a space); a repeated key keeps the last
  Headers headers;
  std::string body;
  std::string remote_address;  // "127.0.0.1:53412"
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;  // besides Content-Type and Content-Length, which the server sets
  std::string body;
};

// `body` serialised, with Content-Type application/json.
Response json_response(int status, const nlohmann::json& body);
// {"error": {"status": N, "message": "..."}}: the one error shape of every API served here.
Response json_error(int status, std::string_view message);

// Values of a pattern's {name} segments, percent-decoded.
using PathParams = std::map<std::string, std::string, std::less<>>;
using Handler = std::function<Response(const Request&, const PathParams&)>;

class Router {
 public:
  struct Route {
    Method method = Method::kGet;
    std::string pattern;
  };

  // `pattern` is "/" followed by '/'-separated segments, each literal or a {name} matching one non-empty segment:
  // "/api/v1/jobs/{id}". Where several patterns match a path, the one with more literal segments wins. A
  // malformed pattern or a (method, pattern) pair added twice is a programming error (asserted).
  Router& add(Method method, std::string pattern, Handler handler);

  // The handler's response; 404 when no pattern matches the path, 405 with Allow when patterns match but none
  // for this method. Exceptions from the handler propagate (the server turns them into 500).
  Response handle(const Request& request) const;

  // Methods with a route for `path`, for Allow and CORS preflight answers; empty when no pattern matches.
  std::vector<Method> allowed_methods(std::string_view path) const;

  // Every route in the order added, e.g. to check an OpenAPI document against what is served.
  std::vector<Route> routes() const;

 private:
  struct Entry {
    Route route;
    std::vector<std::string> segments;  // "{id}" kept with braces: a parameter
    int literal_segments = 0;
    Handler handler;
  };
  std::vector<const Entry*> matching(std::string_view path) const;

  std::vector<Entry> entries_;
};

struct ServerOptions {
  std::string host = "127.0.0.1";           // address to listen on; "0.0.0.0" for every interface
  uint16_t port = 0;                        // 0: an ephemeral port, see Server::port()
  int threads = 2;                          // I/O threads; handlers run on them, so a slow handler holds one up
  size_t max_body_bytes = size_t{1} << 20;  // larger request bodies are answered 413
  // Time allowed to receive one whole request, and how long an idle keep-alive connection stays open. A request
  // still incomplete then is answered 408; an idle connection is closed.
  std::chrono::milliseconds request_timeout{30'000};
  // Origins allowed to call from a browser; "*" allows any. Empty: no CORS headers at all (same-origin only).
  std::vector<std::string> cors_allowed_origins;
  core::Logger logger;  // one debug line per request; warnings for handler failures
};

// Listening from create() until stop() or destruction.
class Server {
 public:
  // Binds and starts listening; fails (kUnavailable) when the address cannot be bound, naming it.
  static core::Result<std::unique_ptr<Server>> create(const ServerOptions& options, Router router);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;  // the bound port, also when options.port was 0

  // Stops accepting, closes every connection (a handler already running finishes first) and joins the I/O
  // threads. Idempotent; must not be called from a handler.
  void stop();

  struct Impl;  // the Beast/Asio side, in server.cpp

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace server::http
