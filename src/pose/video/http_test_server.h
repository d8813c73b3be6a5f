#pragma once
// Tests only: a tiny HTTP server on 127.0.0.1 that streams a real clip and then dies or stalls, for the network
// sources of both back-ends.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

namespace pose::video::test_support {

// Serves one file over HTTP/1.1 (with byte ranges) until `limit` bytes of it have gone out in total; then it
// either dies (closes the connection and stops listening, so reconnects are refused) or stalls (keeps the
// connection open and sends nothing more).
class HttpServer {
 public:
  enum class AtLimit { kDie, kStall };
  HttpServer(std::string body, size_t limit, AtLimit at_limit)
      : body_(std::move(body)), limit_(limit), at_limit_(at_limit) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(listen(listen_fd_, 4), 0);
    EXPECT_EQ(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HttpServer() { shut_down(); }

  void shut_down() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/clip.mp4"; }
  bool died() const { return died_; }

 private:
  bool wait(int fd, decltype(pollfd::events) events) {  // poll's own type for the event mask
    pollfd entry{fd, events, 0};
    while (!stop_) {
      if (poll(&entry, 1, 20) > 0) return true;
    }
    return false;
  }

  void serve() {
    while (!stop_ && !died_ && wait(listen_fd_, POLLIN)) {
      const int connection = accept(listen_fd_, nullptr, nullptr);
      if (connection < 0) continue;
      respond(connection);
      if (at_limit_ == AtLimit::kStall && sent_ >= limit_) wait(connection, 0);  // until shut_down
      close(connection);
      if (at_limit_ == AtLimit::kDie && sent_ >= limit_) {
        close(listen_fd_);
        listen_fd_ = -1;
        died_ = true;
      }
    }
  }

  void respond(int connection) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && wait(connection, POLLIN)) {
      const ssize_t got = recv(connection, buffer, sizeof(buffer), 0);
      if (got <= 0) return;
      request.append(buffer, static_cast<size_t>(got));
    }
    size_t offset = 0;
    if (const size_t range = request.find("Range: bytes="); range != std::string::npos) {
      offset = std::min(body_.size(), std::stoul(request.substr(range + 13)));
    }
    std::string header = offset == 0 ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 206 Partial Content\r\n";
    header += "Content-Type: video/mp4\r\nAccept-Ranges: bytes\r\nConnection: close\r\nContent-Length: " +
              std::to_string(body_.size() - offset) + "\r\n";
    if (offset > 0) {
      header += "Content-Range: bytes " + std::to_string(offset) + "-" + std::to_string(body_.size() - 1) + "/" +
                std::to_string(body_.size()) + "\r\n";
    }
    header += "\r\n";
    if (!send_all(connection, header)) return;
    while (offset < body_.size() && sent_ < limit_) {
      const size_t chunk = std::min({size_t{16'384}, body_.size() - offset, limit_ - sent_});
      if (!send_all(connection, std::string_view(body_).substr(offset, chunk))) return;
      offset += chunk;
      sent_ += chunk;
    }
  }

  bool send_all(int connection, std::string_view bytes) {
    while (!bytes.empty()) {
      if (!wait(connection, POLLOUT)) return false;
      const ssize_t sent = send(connection, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  std::string body_;
  size_t limit_;
  AtLimit at_limit_;
  size_t sent_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> died_{false};
  std::thread thread_;
};

// A port on 127.0.0.1 that refuses connections: bound, then closed without listening.
inline int closed_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace pose::video::test_support
