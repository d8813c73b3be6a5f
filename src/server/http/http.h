#pragma once
// server::http: a small HTTP/1.1 server for the tools' REST APIs and Prometheus endpoints.
//
// The application describes its API as a Router: (method, path pattern) -> handler, where a handler is a pure
// function from a Request value to a Response value. The Server owns the sockets and threads (Boost.Beast, kept
// out of this header), turns each parsed request into a Request, asks the Router, and writes the Response back.
// Protocol failures are answered by the server itself: 400 malformed request, 408 request timeout, 413 body too
// large, 431 headers too large, 500 for a handler that throws (handlers should not; the server survives it).
//
// WebSockets: Router::websocket adds a GET route whose UpgradeHandler sees the upgrade request as a Request (path,
// query, headers) and either refuses it with a plain Response or accepts it with a WebSocketAccept; the server then
// completes the handshake and owns the connection, calling the accept's callbacks and writing what the application
// send()s through a bounded per-connection queue with an explicit drop policy (WebSocket::send). A plain GET to a
// WebSocket route is answered 426, an upgrade request to a path with only plain routes 400, to an unknown path 404.
// Incoming messages over WebSocketAccept::max_message_bytes close the connection with 1009. A peer that sends
// nothing (not even a pong) for 3 ping intervals is dropped; one that is sent a close frame and does not complete
// the close handshake (or does not read) within 10 s is disconnected.
//
// Thread-safety: a Router is built on one thread and then only read; handlers are called concurrently from the
// server's I/O threads and must be safe for that. Server's methods may be called from any thread. WebSocket's
// methods may be called from any thread; each connection's callbacks are called one at a time (on_close from
// Server::stop's thread when the server stops, from an I/O thread otherwise), different connections' concurrently.

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
#include <variant>
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

// One accepted WebSocket connection as the application sees it. All methods are thread-safe and never block (they
// take a short lock): the pose service calls send() from its analysis thread for many clients, and a slow client
// must never slow it. The object stays valid (and answers kClosed) after the connection ends, also after the Server
// is destroyed.
class WebSocket {
 public:
  virtual ~WebSocket() = default;
  enum class SendResult { kQueued, kDropped, kClosed };
  // Queues a text message (written in order on the connection's strand). When `max_queued` messages are waiting:
  // a droppable message is dropped (kDropped, counted); a non-droppable one evicts the oldest droppable message
  // still waiting (counted as dropped) and is queued; if none is droppable, the connection is closed with
  // 1008 "client too slow" (the waiting messages are discarded) and kClosed returned (the client reconnects and
  // resumes; nothing is silently lost). kClosed also once the connection is closed or close() was called.
  virtual SendResult send(std::string text, bool droppable) = 0;
  // Graceful close: messages already queued are written first, then the close frame. Idempotent.
  virtual void close(uint16_t code, std::string reason) = 0;
  virtual bool is_open() const = 0;     // false once close() was called or the connection ended
  virtual size_t queued() const = 0;    // messages waiting now, besides the one being written
  virtual int64_t dropped() const = 0;  // messages dropped so far
};

struct WebSocketCallbacks {
  std::function<void(const std::shared_ptr<WebSocket>&)> on_open;  // after the handshake; may send at once
  std::function<void(std::string_view text)> on_message;           // each message from the client (binary too)
  // Exactly once after on_open, for any end (peer close, error, timeout, too slow, Server::stop); never after the
  // Server is destroyed. Not called when the handshake fails (on_open was not called either).
  std::function<void()> on_close;
};

struct WebSocketAccept {
  WebSocketCallbacks callbacks;
  size_t max_queued = 256;  // messages waiting to be written (at least 1), see WebSocket::send
  // A ping when nothing has been received for this long; a peer that sends nothing (not even a pong) for 3
  // intervals is dropped.
  std::chrono::milliseconds ping_interval{5000};
  size_t max_message_bytes = size_t{64} << 10;  // a larger incoming message closes the connection with 1009
};

// Decides an upgrade: a Response (any status but 101) refuses it as plain HTTP (401, 404, 400...); a
// WebSocketAccept takes the connection over.
using UpgradeHandler = std::function<std::variant<Response, WebSocketAccept>(const Request&, const PathParams&)>;

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

  // A WebSocket endpoint: a GET route (listed by routes() and allowed_methods() as such, same pattern rules as add)
  // whose upgrade requests go to `handler`; a plain GET to it is answered 426 with Upgrade: websocket.
  Router& websocket(std::string pattern, UpgradeHandler handler);

  // The handler's response; 404 when no pattern matches the path, 405 with Allow when patterns match but none
  // for this method. Exceptions from the handler propagate (the server turns them into 500).
  Response handle(const Request& request) const;

  // The decision on an upgrade request: the WebSocket route's handler's, or 404 / 405 as in handle(), 400 when the
  // best matching GET route is not a WebSocket route. Exceptions from the handler propagate.
  std::variant<Response, WebSocketAccept> upgrade(const Request& request) const;

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
    UpgradeHandler upgrade;  // WebSocket routes only; their `handler` answers plain GETs 426
  };
  struct Match {
    const Entry* entry = nullptr;
    PathParams params;
  };
  std::vector<const Entry*> matching(std::string_view path) const;
  // The route for the request's method and path with its parameters, or the 404/405/400 answer.
  std::variant<Response, Match> resolve(const Request& request) const;

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
  // threads, then calls on_close of each WebSocket still open (on this thread; its TCP connection is dropped
  // without a close frame). Idempotent; must not be called from a handler or a WebSocket callback.
  void stop();

  struct Impl;  // the Beast/Asio side, in server.cpp

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace server::http
