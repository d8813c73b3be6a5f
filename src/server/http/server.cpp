// The Beast/Asio side of server::http: accepting, one Session per connection (read, respond, write, repeat while
// kept alive), the protocol-level answers (400/408/413/431/500/501) the Router never sees, and WebSocket
// connections: a Session hands its stream to a WebSocketConnection (I/O, on the connection's strand) when the
// router accepts an upgrade, and the application holds the connection's WebSocketHandle (queue and state).
#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <variant>

#include "server/http/http.h"
#include "server/http/url.h"

namespace server::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

namespace {
class WebSocketHandle;
}  // namespace

struct Server::Impl {
  ServerOptions options;
  Router router;
  // Sessions refer to the fields above; they live in the io_context's pending handlers, so the io_context is
  // destroyed (and with it every session) before them.
  std::unique_ptr<asio::io_context> io;
  std::optional<tcp::acceptor> acceptor;
  uint16_t port = 0;
  std::vector<std::thread> threads;
  std::mutex stop_mutex;
  bool stopped = false;
  // Open WebSocket connections: stop() ends those whose I/O it cut short.
  std::mutex websockets_mutex;
  std::set<std::shared_ptr<WebSocketHandle>> websockets;

  void accept();
};

namespace {

constexpr std::chrono::seconds kWriteTimeout{30};
// WebSocket opening handshake, and closing: a peer that has not completed the close handshake this long after the
// server asked for it (say, because it does not read) is disconnected.
constexpr std::chrono::seconds kWebSocketHandshakeTimeout{10};
constexpr int kSilentPingIntervals = 3;       // a WebSocket peer silent this many ping intervals is dropped
constexpr size_t kMaxCloseReasonBytes = 123;  // RFC 6455 5.5: a control frame's payload is at most 125 bytes
constexpr const char* kServerName = "workbench";

// Boost 1.74's Beast speaks boost::string_view.
std::string_view view(beast::string_view text) { return {text.data(), text.size()}; }

std::string join(const std::vector<Method>& methods) {
  std::string out;
  for (Method method : methods) out += (out.empty() ? "" : ", ") + std::string(to_string(method));
  return out;
}

// The Access-Control-Allow-Origin value for this request, if CORS is on and its Origin is allowed.
std::optional<std::string> allowed_origin(const ServerOptions& options, const Request& request) {
  const auto origin = request.headers.find("Origin");
  if (options.cors_allowed_origins.empty() || origin == request.headers.end()) return std::nullopt;
  const auto& allowed = options.cors_allowed_origins;
  if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) return "*";
  if (std::find(allowed.begin(), allowed.end(), origin->second) != allowed.end()) return origin->second;
  return std::nullopt;
}

bool is_preflight(const ServerOptions& options, const Request& request) {
  return !options.cors_allowed_origins.empty() && request.method == Method::kOptions &&
         request.headers.count("Origin") > 0 && request.headers.count("Access-Control-Request-Method") > 0;
}

void add_cors_headers(const ServerOptions& options, const Request& request, Response* response) {
  if (auto origin = allowed_origin(options, request)) {
    response->headers["Access-Control-Allow-Origin"] = *origin;
    if (*origin != "*") response->headers["Vary"] = "Origin";
  }
}

// `decide()`, with an exception from the handler it calls turned into a 500: handlers should not throw, and the
// server survives one that does.
template <class Decide>
auto guarded(const Server::Impl& server, const Request& request, Decide decide) -> decltype(decide()) {
  const auto what = [&] { return std::string(to_string(request.method)) + " " + request.path; };
  try {
    return decide();
  } catch (const std::exception& e) {
    server.options.logger.warn(what(), ": handler threw: ", e.what());
    return json_error(500, "internal error while handling " + what() + "; the server log has the details");
  } catch (...) {
    server.options.logger.warn(what(), ": handler threw a non-exception");
    return json_error(500, "internal error while handling " + what());
  }
}

// Request -> Response: CORS preflight, the router, and a 500 for a handler that throws.
Response respond(const Server::Impl& server, const Request& request) {
  Response response;
  const std::vector<Method> methods = server.router.allowed_methods(request.path);
  if (is_preflight(server.options, request) && !methods.empty()) {
    response.status = 204;
    response.content_type.clear();
    response.headers["Access-Control-Allow-Methods"] = join(methods);
    const auto requested = request.headers.find("Access-Control-Request-Headers");
    response.headers["Access-Control-Allow-Headers"] =
        requested == request.headers.end() ? "Content-Type" : requested->second;
    response.headers["Access-Control-Max-Age"] = "600";
  } else {
    response = guarded(server, request, [&] { return server.router.handle(request); });
  }
  add_cors_headers(server.options, request, &response);
  return response;
}

// Browsers send any page's WebSockets with the user's cookies and no CORS check, so a page from elsewhere could
// use a logged-in user's access (cross-site WebSocket hijacking): an upgrade whose Origin is neither this server
// (the Host it asked for) nor an allowed CORS origin is refused. Clients that are not browsers send no Origin.
bool cross_site(const ServerOptions& options, const Request& request) {
  const auto origin = request.headers.find("Origin");
  if (origin == request.headers.end() || allowed_origin(options, request)) return false;
  const auto host = request.headers.find("Host");
  const size_t scheme_end = origin->second.find("://");
  const std::string origin_host = scheme_end == std::string::npos ? "" : origin->second.substr(scheme_end + 3);
  return host == request.headers.end() || origin_host != host->second;
}

// The request target as logs show it: the values of secret query parameters (?token=...) replaced by ***.
std::string loggable_target(std::string_view target) {
  std::string out(target);
  for (size_t at = out.find("token="); at != std::string::npos; at = out.find("token=", at + 1)) {
    if (at == 0 || (out[at - 1] != '?' && out[at - 1] != '&')) continue;
    const size_t value = at + 6;
    const size_t end = std::min(out.find('&', value), out.size());
    out.replace(value, end - value, "***");
  }
  return out;
}

// An upgrade request -> the router's decision; a refusal is a response like any other.
std::variant<Response, WebSocketAccept> decide_upgrade(const Server::Impl& server, const Request& request) {
  if (cross_site(server.options, request)) {
    Response refusal = json_error(403, "WebSocket from origin " + request.headers.find("Origin")->second +
                                           " refused: it is not this server's, nor an allowed CORS origin");
    return refusal;
  }
  std::variant<Response, WebSocketAccept> decision =
      guarded(server, request, [&] { return server.router.upgrade(request); });
  if (auto* refusal = std::get_if<Response>(&decision)) {
    if (refusal->status == 101) {
      server.options.logger.warn("GET ", request.path, ": upgrade handler refused with status 101");
      *refusal = json_error(500, "internal error while handling GET " + request.path);
    }
    add_cors_headers(server.options, request, refusal);
  }
  return decision;
}

class WebSocketConnection;

// The application's side of a WebSocket connection: the write queue with its drop policy and the state that send()
// and close() see. It owns no I/O object, so the application may keep it after the connection and the Server are
// gone. It reaches the connection (to start its write loop) only while attached, under mutex_: finish() detaches
// it, and Server::stop() finishes every open one before destroying the io_context, so send() never posts to a
// destroyed one.
class WebSocketHandle final : public WebSocket {
 public:
  struct CloseRequest {
    uint16_t code = 0;
    std::string reason;
  };
  // What the connection's write loop does next: write a message, close, or (neither) stop until send() wakes it.
  struct WriteStep {
    std::optional<std::string> message;
    std::optional<CloseRequest> close;
  };

  WebSocketHandle(WebSocketCallbacks callbacks, size_t max_queued, std::string name)
      : callbacks_(std::move(callbacks)), max_queued_(std::max<size_t>(1, max_queued)), name_(std::move(name)) {}

  SendResult send(std::string text, bool droppable) override {
    const std::lock_guard lock(mutex_);
    if (state_ != State::kOpen) return SendResult::kClosed;
    if (waiting_.size() >= max_queued_) {
      if (droppable) {
        ++dropped_;
        return SendResult::kDropped;
      }
      const auto victim =
          std::find_if(waiting_.begin(), waiting_.end(), [](const Outgoing& message) { return message.droppable; });
      if (victim == waiting_.end()) {
        waiting_.clear();  // a client this far behind resumes after reconnecting, not from here
        request_close_locked({1008, "client too slow"});
        return SendResult::kClosed;
      }
      waiting_.erase(victim);
      ++dropped_;
    }
    waiting_.push_back({std::move(text), droppable});
    schedule_write_locked();
    return SendResult::kQueued;
  }

  void close(uint16_t code, std::string reason) override {
    const std::lock_guard lock(mutex_);
    if (state_ == State::kOpen) request_close_locked({code, std::move(reason)});
  }

  bool is_open() const override {
    const std::lock_guard lock(mutex_);
    return state_ == State::kOpen;
  }
  size_t queued() const override {
    const std::lock_guard lock(mutex_);
    return waiting_.size();
  }
  int64_t dropped() const override {
    const std::lock_guard lock(mutex_);
    return dropped_;
  }

  const WebSocketCallbacks& callbacks() const { return callbacks_; }
  const std::string& name() const { return name_; }  // "127.0.0.1:53412 /ws", for logs

  // The connection's side, on its strand: once the handshake is done.
  void attach(std::weak_ptr<WebSocketConnection> connection) {
    const std::lock_guard lock(mutex_);
    connection_ = std::move(connection);
  }

  WriteStep next_write() {
    const std::lock_guard lock(mutex_);
    WriteStep step;
    if (!waiting_.empty()) {
      step.message = std::move(waiting_.front().text);
      waiting_.pop_front();
    } else if (close_) {
      step.close = std::move(close_);
      close_.reset();  // the write loop stays marked running: nothing is written after the close frame
    } else {
      writing_ = false;
    }
    return step;
  }

  // Marks the connection ended and detaches it; true the first time only, when the caller calls on_close.
  bool finish() {
    const std::lock_guard lock(mutex_);
    if (state_ == State::kClosed) return false;
    state_ = State::kClosed;
    waiting_.clear();
    close_.reset();
    connection_.reset();
    return true;
  }

 private:
  enum class State { kOpen, kClosing, kClosed };
  struct Outgoing {
    std::string text;
    bool droppable = false;
  };

  // Queued messages go first, then the close frame.
  void request_close_locked(CloseRequest request) {
    state_ = State::kClosing;
    close_ = std::move(request);
    schedule_write_locked();
  }
  void schedule_write_locked();  // starts the connection's write loop unless it runs

  const WebSocketCallbacks callbacks_;
  const size_t max_queued_;
  const std::string name_;
  mutable std::mutex mutex_;
  State state_ = State::kOpen;
  std::deque<Outgoing> waiting_;
  std::optional<CloseRequest> close_;  // requested, not yet started
  bool writing_ = false;               // the write loop runs: it takes messages until waiting_ is empty
  int64_t dropped_ = 0;
  std::weak_ptr<WebSocketConnection> connection_;
};

// Calls one of the application's callbacks, which should not throw; if it does, the connection is closed with 1011.
template <class Call>
void invoke(const core::Logger& logger, WebSocketHandle& handle, const char* callback, Call call) {
  try {
    call(handle.callbacks());
  } catch (const std::exception& e) {
    logger.warn(handle.name(), ": WebSocket ", callback, " threw: ", e.what());
    handle.close(1011, "internal error");
  } catch (...) {
    logger.warn(handle.name(), ": WebSocket ", callback, " threw a non-exception");
    handle.close(1011, "internal error");
  }
}

// The one end of every accepted WebSocket connection, whether its I/O ended or Server::stop() cut it short.
void end_websocket(Server::Impl& server, const std::shared_ptr<WebSocketHandle>& handle, const std::string& why) {
  if (!handle->finish()) return;
  {
    const std::lock_guard lock(server.websockets_mutex);
    server.websockets.erase(handle);
  }
  server.options.logger.debug(handle->name(), " WebSocket closed: ", why, "; ", handle->dropped(), " messages dropped");
  invoke(server.options.logger, *handle, "on_close", [](const WebSocketCallbacks& callbacks) {
    if (callbacks.on_close) callbacks.on_close();
  });
}

// The I/O side of one accepted WebSocket connection. Like Session, it lives in its pending handlers (the read loop,
// a write, the ping and close timers) and everything here runs on its strand.
class WebSocketConnection : public std::enable_shared_from_this<WebSocketConnection> {
 public:
  WebSocketConnection(beast::tcp_stream stream, Server::Impl& server, WebSocketAccept accept, std::string name)
      : server_(server),
        strand_(stream.get_executor()),
        ws_(std::move(stream)),
        handle_(std::make_shared<WebSocketHandle>(std::move(accept.callbacks), accept.max_queued, std::move(name))),
        ping_interval_(std::max(accept.ping_interval, std::chrono::milliseconds(1))),
        max_message_bytes_(accept.max_message_bytes),
        ping_timer_(strand_),
        close_timer_(strand_) {}

  const asio::any_io_executor& strand() const { return strand_; }

  // Completes the handshake of the upgrade request the Session read.
  void start(bhttp::request<bhttp::string_body> request) {
    upgrade_request_ = std::move(request);
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket stream's timeouts and ours apply instead
    ws_.set_option(websocket::stream_base::timeout{kWebSocketHandshakeTimeout, websocket::stream_base::none(), false});
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(bhttp::field::server, kServerName); }));
    ws_.read_message_max(max_message_bytes_);
    ws_.text(true);
    // Pings, pongs and close frames are signs of life too. `this`: ws_ holds the callback and this holds ws_.
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_received_ = Clock::now(); });
    ws_.async_accept(upgrade_request_, beast::bind_front_handler(&WebSocketConnection::on_accept, shared_from_this()));
  }

  // The write loop: one async_write at a time, taking from the handle's queue until it is empty.
  void write_next() {
    WebSocketHandle::WriteStep step = handle_->next_write();
    if (step.message) {
      writing_ = std::move(*step.message);
      ws_.async_write(asio::buffer(writing_),
                      beast::bind_front_handler(&WebSocketConnection::on_write, shared_from_this()));
    } else if (step.close) {
      start_close(*step.close);
    }
  }

 private:
  using Clock = std::chrono::steady_clock;

  void on_accept(beast::error_code ec) {
    if (ec) {
      server_.options.logger.debug(handle_->name(), " WebSocket handshake failed: ", ec.message());
      return;
    }
    {
      const std::lock_guard lock(server_.websockets_mutex);
      server_.websockets.insert(handle_);
    }
    handle_->attach(weak_from_this());
    last_received_ = Clock::now();
    wait_for_ping();
    invoke(server_.options.logger, *handle_, "on_open", [this](const WebSocketCallbacks& callbacks) {
      if (callbacks.on_open) callbacks.on_open(handle_);
    });
    read();
  }

  void read() {
    ws_.async_read(read_buffer_, beast::bind_front_handler(&WebSocketConnection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t /*bytes*/) {
    if (ec) return end(ec);
    last_received_ = Clock::now();
    const auto data = read_buffer_.cdata();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    invoke(server_.options.logger, *handle_, "on_message", [text](const WebSocketCallbacks& callbacks) {
      if (callbacks.on_message) callbacks.on_message(text);
    });
    read_buffer_.consume(read_buffer_.size());
    read();
  }

  // A failed write leaves the stream failed: the read loop ends too, and end() stops the queue.
  void on_write(beast::error_code ec, size_t /*bytes*/) {
    if (!ec) write_next();
  }

  void start_close(const WebSocketHandle::CloseRequest& request) {
    close_reason_ = "closed by the server with " + std::to_string(request.code) + " " + request.reason;
    close_timer_.expires_after(kWebSocketHandshakeTimeout);
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->ended_) self->drop("close handshake not completed in time");
    });
    websocket::close_reason reason(request.code);
    reason.reason = utf8_prefix(request.reason, kMaxCloseReasonBytes);
    ws_.async_close(reason, [self = shared_from_this()](beast::error_code) {});
  }

  // The timer wakes when the peer will have been silent one more whole ping interval: it pings the peer after one
  // and drops it after kSilentPingIntervals.
  void wait_for_ping() {
    const int64_t intervals = (Clock::now() - last_received_) / ping_interval_ + 1;
    ping_timer_.expires_at(last_received_ + intervals * ping_interval_);
    ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->ended_) self->on_ping_timer();  // cancel() does not stop a wait that already completed
    });
  }

  void on_ping_timer() {
    const auto silent = Clock::now() - last_received_;
    if (silent >= kSilentPingIntervals * ping_interval_) {
      return drop("peer silent for " + std::to_string(kSilentPingIntervals) + " ping intervals");
    }
    // A ping waits behind a write to a peer that does not read; one at a time is enough.
    if (silent >= ping_interval_ && !ping_pending_ && handle_->is_open()) {
      ping_pending_ = true;
      ws_.async_ping({}, [self = shared_from_this()](beast::error_code) { self->ping_pending_ = false; });
    }
    wait_for_ping();
  }

  // Ends the connection without a close handshake; the read loop then ends with an error.
  void drop(const std::string& why) {
    close_reason_ += (close_reason_.empty() ? "" : "; ") + why;
    beast::get_lowest_layer(ws_).close();
  }

  void end(beast::error_code ec) {
    ended_ = true;
    ping_timer_.cancel();
    close_timer_.cancel();
    beast::get_lowest_layer(ws_).close();  // also ends a write to a peer that stopped reading
    std::string why = close_reason_;
    if (why.empty() && ec == websocket::error::closed) {
      why = "closed by the peer with " + std::to_string(ws_.reason().code) + " " +
            std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
    } else if (why.empty() && ec == websocket::error::message_too_big) {
      why = "message larger than " + std::to_string(max_message_bytes_) + " bytes";
    } else if (why.empty()) {
      why = ec.message();
    }
    end_websocket(server_, handle_, why);
  }

  // The longest prefix of `text` of at most `bytes` bytes that does not split a UTF-8 sequence.
  static std::string utf8_prefix(const std::string& text, size_t bytes) {
    if (text.size() <= bytes) return text;
    while (bytes > 0 && (static_cast<unsigned char>(text[bytes]) & 0xC0) == 0x80) --bytes;
    return text.substr(0, bytes);
  }

  Server::Impl& server_;
  const asio::any_io_executor strand_;  // const: handles read it from other threads
  websocket::stream<beast::tcp_stream> ws_;
  const std::shared_ptr<WebSocketHandle> handle_;  // shared with the application (on_open)
  const std::chrono::milliseconds ping_interval_;
  const size_t max_message_bytes_;
  asio::steady_timer ping_timer_;
  asio::steady_timer close_timer_;
  bhttp::request<bhttp::string_body> upgrade_request_;
  beast::flat_buffer read_buffer_;
  std::string writing_;       // the message async_write is writing
  std::string close_reason_;  // why the server ended it, for the log
  Clock::time_point last_received_;
  bool ping_pending_ = false;
  bool ended_ = false;
};

void WebSocketHandle::schedule_write_locked() {
  if (writing_) return;
  std::shared_ptr<WebSocketConnection> connection = connection_.lock();
  if (!connection) return;
  writing_ = true;
  const asio::any_io_executor strand = connection->strand();
  // Moved, not copied: the handler (on the strand) holds the only new reference, so the connection is never
  // destroyed on the application's thread.
  asio::post(strand, [connection = std::move(connection)] { connection->write_next(); });
}

// One connection. Shared ownership is Asio's idiom: each pending operation's handler holds the session, and the
// session ends when the last one completes (or when the io_context is destroyed with them pending).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Server::Impl& server)
      : server_(server), stream_(std::move(socket)), read_timer_(stream_.get_executor()) {
    beast::error_code ec;
    const tcp::endpoint remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_address_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  // The read deadline is our own timer, not the stream's: the stream's would close the socket, and an incomplete
  // request deserves a 408 before the close.
  void read() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    timed_out_ = false;
    ++reads_;
    read_timer_.expires_after(server_.options.request_timeout);
    // A timer that fired as the read completed may still run later, during the next read: `read` tells them apart.
    read_timer_.async_wait([weak = weak_from_this(), read = reads_](beast::error_code ec) {
      if (auto self = weak.lock(); self && !ec && self->reads_ == read) {
        self->timed_out_ = true;
        beast::error_code ignored;
        self->stream_.socket().cancel(ignored);
      }
    });
    stream_.expires_never();
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t /*bytes*/) {
    read_timer_.cancel();
    if (ec && timed_out_) {
      if (parser_->got_some()) return reply_and_close(json_error(408, "request not received in time"));
      return close();
    }
    if (ec == bhttp::error::end_of_stream) return close();
    if (ec == bhttp::error::body_limit) {
      return reply_and_close(
          json_error(413, "request body larger than " + std::to_string(server_.options.max_body_bytes) + " bytes"));
    }
    if (ec == bhttp::error::header_limit) return reply_and_close(json_error(431, "request headers too large"));
    if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
        ec != bhttp::error::partial_message) {
      return reply_and_close(json_error(400, "malformed HTTP request: " + ec.message()));
    }
    if (ec) return close();  // the peer went away
    dispatch();
  }

  void dispatch() {
    const auto started = std::chrono::steady_clock::now();
    const auto& message = parser_->get();
    const bool keep_alive = message.keep_alive();
    Response response;
    std::optional<WebSocketAccept> accepted;
    std::optional<Request> request = to_request(message, &response);
    if (request && websocket::is_upgrade(message)) {
      std::variant<Response, WebSocketAccept> decision = decide_upgrade(server_, *request);
      if (auto* accept = std::get_if<WebSocketAccept>(&decision)) {
        accepted = std::move(*accept);
      } else {
        response = std::move(std::get<Response>(decision));
      }
    } else if (request) {
      response = respond(server_, *request);
    }
    if (server_.options.logger.enabled(core::LogLevel::kDebug)) {
      const auto elapsed_us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
      server_.options.logger.debug(remote_address_, " ", message.method_string(), " ",
                                   loggable_target(view(message.target())), " ", accepted ? 101 : response.status, " ",
                                   elapsed_us, " us");
    }
    if (accepted) return hand_over(std::move(*accepted), request->path);
    write(std::move(response), keep_alive && request.has_value());
  }

  // The stream (and the upgrade request) go to a WebSocketConnection; this session ends.
  void hand_over(WebSocketAccept accept, const std::string& path) {
    auto connection = std::make_shared<WebSocketConnection>(std::move(stream_), server_, std::move(accept),
                                                            remote_address_ + " " + path);
    connection->start(parser_->release());
  }

  // The Request value, or false with `error` set for what the router cannot be asked about.
  std::optional<Request> to_request(const bhttp::request<bhttp::string_body>& message, Response* error) const {
    const std::optional<Method> method = parse_method(view(message.method_string()));
    if (!method) {
      *error = json_error(501, "method " + std::string(message.method_string()) + " is not implemented");
      return std::nullopt;
    }
    auto target = parse_target(view(message.target()));
    if (!target) {
      *error = json_error(400, target.error().message);
      return std::nullopt;
    }
    Request request;
    request.method = *method;
    request.path = std::move(target->path);
    request.query = std::move(target->query);
    for (const auto& field : message) {
      auto [it, inserted] = request.headers.emplace(std::string(field.name_string()), std::string(field.value()));
      if (!inserted) it->second += ", " + std::string(field.value());
    }
    request.body = message.body();
    request.remote_address = remote_address_;
    return request;
  }

  void write(Response response, bool keep_alive) {
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(response.status));
    response_.set(bhttp::field::server, kServerName);
    if (!response.content_type.empty()) response_.set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) response_.set(name, value);
    response_.body() = std::move(response.body);
    response_.keep_alive(keep_alive);
    response_.prepare_payload();
    stream_.expires_after(kWriteTimeout);
    bhttp::async_write(stream_, response_, beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void reply_and_close(Response response) { write(std::move(response), false); }

  void on_write(beast::error_code ec, size_t /*bytes*/) {
    if (ec || !response_.keep_alive()) return close();
    read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  Server::Impl& server_;
  beast::tcp_stream stream_;
  asio::steady_timer read_timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  std::string remote_address_;
  uint64_t reads_ = 0;
  bool timed_out_ = false;
};

}  // namespace

void Server::Impl::accept() {
  acceptor->async_accept(asio::make_strand(*io), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      options.logger.warn("accept failed: ", ec.message());
    } else {
      std::make_shared<Session>(std::move(socket), *this)->start();
    }
    accept();
  });
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { stop(); }

core::Result<std::unique_ptr<Server>> Server::create(const ServerOptions& options, Router router) {
  if (options.threads < 1) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "server threads must be at least 1, not " + std::to_string(options.threads));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->router = std::move(router);
  impl->io = std::make_unique<asio::io_context>(options.threads);
  const std::string where = options.host + ":" + std::to_string(options.port);

  beast::error_code ec;
  tcp::resolver resolver(*impl->io);
  const auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                          tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "cannot listen on " + where + ": host not resolved (" + ec.message() + ")");
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  impl->acceptor.emplace(*impl->io);
  const auto fail = [&](const char* step) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            "cannot listen on " + where + ": " + step + ": " + ec.message() +
                                (ec == asio::error::address_in_use ? " (choose another port)" : ""));
  };
  if (impl->acceptor->open(endpoint.protocol(), ec)) return fail("open");
  if (impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec)) return fail("set SO_REUSEADDR");
  if (impl->acceptor->bind(endpoint, ec)) return fail("bind");
  if (impl->acceptor->listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  impl->port = impl->acceptor->local_endpoint().port();

  impl->accept();
  impl->threads.reserve(static_cast<size_t>(options.threads));
  for (int i = 0; i < options.threads; ++i) impl->threads.emplace_back([io = impl->io.get()] { io->run(); });
  options.logger.info("listening on ", endpoint.address().to_string(), ":", impl->port);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->port; }

void Server::stop() {
  {
    const std::lock_guard lock(impl_->stop_mutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->io->stop();
  for (std::thread& thread : impl_->threads) thread.join();
  // WebSocket connections still open end here, before the io_context goes: no I/O thread runs to end them, and
  // ending detaches each from the application's handle.
  std::set<std::shared_ptr<WebSocketHandle>> open;
  {
    const std::lock_guard lock(impl_->websockets_mutex);
    open.swap(impl_->websockets);
  }
  for (const auto& handle : open) end_websocket(*impl_, handle, "server stopped");
  // Destroying the io_context destroys the handlers still pending, and with them every session and its socket.
  impl_->acceptor.reset();
  impl_->io.reset();
}

}  // namespace server::http
