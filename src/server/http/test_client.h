#pragma once
// Tests only: small blocking HTTP/1.1 and WebSocket clients over Boost.Beast for driving a real server on
// 127.0.0.1. One Client is one keep-alive connection, one WebSocketClient one WebSocket; every operation gives up
// after kTimeout, so a broken server fails a test instead of hanging it.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace server::http::test_support {

struct Reply {
  int status = 0;                              // 0: no response (the connection failed or was closed)
  std::map<std::string, std::string> headers;  // names as the server spelled them
  std::string body;
  std::string error;  // why status is 0

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

class Client {
 public:
  static constexpr std::chrono::seconds kTimeout{10};

  explicit Client(uint16_t port, std::string host = "127.0.0.1") : stream_(io_), host_(std::move(host)) {
    const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address(host_), port);
    stream_.expires_after(kTimeout);
    stream_.async_connect(endpoint, [this](boost::beast::error_code ec) { error_ = ec; });
    run();
  }

  bool connected() const { return !error_ && stream_.socket().is_open(); }

  Reply request(boost::beast::http::verb method, const std::string& target, std::string body = {},
                const std::map<std::string, std::string>& headers = {}) {
    boost::beast::http::request<boost::beast::http::string_body> message{method, target, 11};
    message.set(boost::beast::http::field::host, host_);
    for (const auto& [name, value] : headers) message.set(name, value);
    if (!body.empty() || method == boost::beast::http::verb::post) {
      if (!headers.count("Content-Type")) message.set(boost::beast::http::field::content_type, "application/json");
      message.body() = std::move(body);
    }
    message.prepare_payload();
    stream_.expires_after(kTimeout);
    boost::beast::http::async_write(stream_, message, [this](boost::beast::error_code ec, size_t) { error_ = ec; });
    run();
    if (error_) return failed();
    return read_reply();
  }
  Reply get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return request(boost::beast::http::verb::get, target, {}, headers);
  }
  Reply post(const std::string& target, std::string body) {
    return request(boost::beast::http::verb::post, target, std::move(body));
  }

  // Bytes as they are, for malformed or incomplete requests.
  bool send_raw(const std::string& bytes) {
    stream_.expires_after(kTimeout);
    boost::asio::async_write(stream_, boost::asio::buffer(bytes),
                             [this](boost::beast::error_code ec, size_t) { error_ = ec; });
    run();
    return !error_;
  }

  Reply read_reply() {
    boost::beast::http::response<boost::beast::http::string_body> message;
    stream_.expires_after(kTimeout);
    boost::beast::http::async_read(stream_, buffer_, message,
                                   [this](boost::beast::error_code ec, size_t) { error_ = ec; });
    run();
    if (error_) return failed();
    Reply reply;
    reply.status = static_cast<int>(message.result_int());
    for (const auto& field : message) reply.headers[std::string(field.name_string())] = std::string(field.value());
    reply.body = std::move(message.body());
    return reply;
  }

  // True when the server closes the connection (rather than sending anything) within kTimeout.
  bool closed_by_server() {
    char byte = 0;
    stream_.expires_after(kTimeout);
    stream_.async_read_some(boost::asio::buffer(&byte, 1),
                            [this](boost::beast::error_code ec, size_t) { error_ = ec; });
    run();
    return error_ == boost::asio::error::eof || error_ == boost::asio::error::connection_reset;
  }

 private:
  void run() {
    io_.restart();
    io_.run();
  }
  Reply failed() const {
    Reply reply;
    reply.error = error_.message();
    return reply;
  }

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::beast::error_code error_;
  std::string host_;
};

// The server's answer to the upgrade request is in handshake(): 101 when accepted, the refusal otherwise. Reading
// also answers the server's pings (Beast does), so a client that never calls read() is a silent one.
class WebSocketClient {
 public:
  static constexpr std::chrono::seconds kTimeout = Client::kTimeout;

  WebSocketClient(uint16_t port, const std::string& target, const std::map<std::string, std::string>& headers = {})
      : ws_(io_) {
    const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), port);
    boost::beast::get_lowest_layer(ws_).expires_after(kTimeout);
    boost::beast::get_lowest_layer(ws_).async_connect(endpoint, [this](boost::beast::error_code ec) { error_ = ec; });
    run();
    if (error_) {
      handshake_.error = error_.message();
      return;
    }
    ws_.set_option(
        boost::beast::websocket::stream_base::decorator([headers](boost::beast::websocket::request_type& request) {
          for (const auto& [name, value] : headers) request.set(name, value);
        }));
    ws_.control_callback([this](boost::beast::websocket::frame_type kind, boost::beast::string_view) {
      if (kind == boost::beast::websocket::frame_type::ping) ++pings_;
    });
    boost::beast::websocket::response_type response;
    boost::beast::get_lowest_layer(ws_).expires_after(kTimeout);
    ws_.async_handshake(response, "127.0.0.1", target, [this](boost::beast::error_code ec) { error_ = ec; });
    run();
    handshake_.status = static_cast<int>(response.result_int());
    for (const auto& field : response)
      handshake_.headers[std::string(field.name_string())] = std::string(field.value());
    handshake_.body = response.body();
    if (error_) handshake_.error = error_.message();
    open_ = !error_;
  }

  bool open() const { return open_; }
  const Reply& handshake() const { return handshake_; }

  bool send(const std::string& text, bool binary = false) {
    ws_.binary(binary);
    boost::beast::get_lowest_layer(ws_).expires_after(kTimeout);
    ws_.async_write(boost::asio::buffer(text), [this](boost::beast::error_code ec, size_t) { error_ = ec; });
    run();
    return !error_;
  }

  // The next message; nullopt once the connection ends or nothing came within kTimeout.
  std::optional<std::string> read() {
    boost::beast::flat_buffer buffer;
    boost::beast::get_lowest_layer(ws_).expires_after(kTimeout);
    ws_.async_read(buffer, [this](boost::beast::error_code ec, size_t) { error_ = ec; });
    run();
    if (error_) return std::nullopt;
    return boost::beast::buffers_to_string(buffer.data());
  }

  // The code of the server's close frame once read() has met it; 0 when the connection ended without one.
  int close_code() const { return error_ == boost::beast::websocket::error::closed ? ws_.reason().code : 0; }
  int pings() const { return pings_; }  // pings from the server answered so far

  // The client's close handshake; true when the server answered it.
  bool close() {
    boost::beast::get_lowest_layer(ws_).expires_after(kTimeout);
    ws_.async_close(boost::beast::websocket::close_code::normal, [this](boost::beast::error_code ec) { error_ = ec; });
    run();
    return !error_;
  }

 private:
  void run() {
    io_.restart();
    io_.run();
  }

  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::error_code error_;
  Reply handshake_;
  bool open_ = false;
  int pings_ = 0;
};

}  // namespace server::http::test_support
