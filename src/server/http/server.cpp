// The Beast/Asio side of server::http: accepting, one Session per connection (read, respond, write, repeat while
// kept alive), and the protocol-level answers (400/408/413/431/500/501) the Router never sees.
#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "server/http/http.h"
#include "server/http/url.h"

namespace server::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

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

  void accept();
};

namespace {

constexpr std::chrono::seconds kWriteTimeout{30};

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
    try {
      response = server.router.handle(request);
    } catch (const std::exception& e) {
      server.options.logger.warn(to_string(request.method), " ", request.path, ": handler threw: ", e.what());
      response = json_error(500, "internal error while handling " + std::string(to_string(request.method)) + " " +
                                     request.path + "; the server log has the details");
    } catch (...) {
      server.options.logger.warn(to_string(request.method), " ", request.path, ": handler threw a non-exception");
      response = json_error(
          500, "internal error while handling " + std::string(to_string(request.method)) + " " + request.path);
    }
  }
  if (auto origin = allowed_origin(server.options, request)) {
    response.headers["Access-Control-Allow-Origin"] = *origin;
    if (*origin != "*") response.headers["Vary"] = "Origin";
  }
  return response;
}

// One connection. Shared ownership is Asio's idiom: each pending operation's handler holds the session, and the
// session ends when the last one completes (or when the io_context is destroyed with them pending).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Server::Impl& server)
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
    std::optional<Request> request = to_request(message, &response);
    if (request) response = respond(server_, *request);
    if (server_.options.logger.enabled(core::LogLevel::kDebug)) {
      const auto elapsed_us =
          std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
      server_.options.logger.debug(remote_address_, " ", message.method_string(), " ", message.target(), " ",
                                   response.status, " ", elapsed_us, " us");
    }
    write(std::move(response), keep_alive && request.has_value());
  }

  // The Request value, or false with `error` set for what the router cannot be asked about.
  std::optional<Request> to_request(const bhttp::request<bhttp::string_body>& message, Response* error) const {
    // WebSocket seam: an upgrade route will take over stream_ here.
    if (beast::websocket::is_upgrade(message)) {
      *error = json_error(501, "WebSocket upgrades are not supported by this server");
      return std::nullopt;
    }
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
    response_.set(bhttp::field::server, "workbench");
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

  const Server::Impl& server_;
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
  // Destroying the io_context destroys the handlers still pending, and with them every session and its socket.
  impl_->acceptor.reset();
  impl_->io.reset();
}

}  // namespace server::http
