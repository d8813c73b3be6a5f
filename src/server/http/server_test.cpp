// server::http against real sockets on 127.0.0.1 (an ephemeral port per test), driven by a Beast client.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "server/http/http.h"
#include "server/http/test_client.h"

namespace server::http {
namespace {

using test_support::Client;
using test_support::Reply;
using test_support::WebSocketClient;
using Verb = boost::beast::http::verb;
using SendResult = WebSocket::SendResult;

// A router touching every feature: path parameters, query, echo of the request, a throwing handler.
Router test_router() {
  Router router;
  router
      .add(Method::kGet, "/api/v1/jobs/{id}",
           [](const Request&, const PathParams& params) {
             return json_response(200, {{"id", params.at("id")}});
           })
      .add(Method::kGet, "/api/v1/jobs/latest",
           [](const Request&, const PathParams&) {
             return json_response(200, {{"latest", true}});
           })
      .add(Method::kDelete, "/api/v1/jobs/{id}",
           [](const Request&, const PathParams&) { return json_response(204, nullptr); })
      .add(Method::kGet, "/echo",
           [](const Request& request, const PathParams&) {
             return json_response(200, {{"query", request.query},
                                        {"remote", request.remote_address},
                                        {"agent", request.headers.count("user-agent") ? "yes" : "no"}});
           })
      .add(Method::kPost, "/echo",
           [](const Request& request, const PathParams&) {
             return json_response(200, {{"body", request.body}});
           })
      .add(Method::kGet, "/throw",
           [](const Request&, const PathParams&) -> Response { throw std::runtime_error("handler bug"); });
  return router;
}

std::unique_ptr<Server> start(const ServerOptions& options = {}, Router router = test_router()) {
  auto server = Server::create(options, std::move(router));
  EXPECT_TRUE(server.ok()) << server.error().message;
  return server.ok() ? std::move(server).value() : nullptr;
}

TEST(Server, ListensOnAnEphemeralPort) {
  auto server = start();
  ASSERT_TRUE(server);
  EXPECT_NE(server->port(), 0);
}

TEST(Server, RoutesWithDecodedPathParameters) {
  auto server = start();
  Client client(server->port());
  Reply reply = client.get("/api/v1/jobs/job%2042");
  EXPECT_EQ(reply.status, 200) << reply.error;
  EXPECT_EQ(reply.json()["id"], "job 42");
  EXPECT_EQ(reply.header("Content-Type"), "application/json");
  // A literal segment wins over a parameter.
  EXPECT_EQ(client.get("/api/v1/jobs/latest").json()["latest"], true);
}

TEST(Server, DecodesQueryParameters) {
  auto server = start();
  Client client(server->port());
  const Reply reply = client.get("/echo?a=1&b=x+y&c=%2F%3D&flag&a=2");
  ASSERT_EQ(reply.status, 200);
  const auto query = reply.json()["query"];
  EXPECT_EQ(query["a"], "2");
  EXPECT_EQ(query["b"], "x y");
  EXPECT_EQ(query["c"], "/=");
  EXPECT_EQ(query["flag"], "");
  EXPECT_EQ(Client(server->port()).get("/echo?a=%zz").status, 400);
}

TEST(Server, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  auto server = start();
  Client client(server->port());
  const Reply missing = client.get("/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["error"]["status"], 404);
  EXPECT_EQ(client.get("/api/v1/jobs").status, 404);
  EXPECT_EQ(client.get("/api/v1/jobs/").status, 404);

  const Reply wrong = client.request(Verb::put, "/api/v1/jobs/7", "{}");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("Allow"), "GET, DELETE");
  EXPECT_NE(wrong.json()["error"]["message"].get<std::string>().find("PUT is not allowed"), std::string::npos);
  // A method this server does not know at all.
  EXPECT_EQ(client.request(Verb::propfind, "/echo").status, 501);
}

TEST(Server, OversizedBodyIs413) {
  ServerOptions options;
  options.max_body_bytes = 1024;
  auto server = start(options);
  Client client(server->port());
  EXPECT_EQ(client.post("/echo", std::string(1024, 'x')).status, 200);
  const Reply reply = client.post("/echo", std::string(1025, 'x'));
  EXPECT_EQ(reply.status, 413);
  EXPECT_EQ(reply.header("Connection"), "close");
}

TEST(Server, MalformedRequestIs400AndCloses) {
  auto server = start();
  Client client(server->port());
  ASSERT_TRUE(client.send_raw("this is not HTTP\r\n\r\n"));
  const Reply reply = client.read_reply();
  EXPECT_EQ(reply.status, 400) << reply.error;
  EXPECT_EQ(reply.json()["error"]["status"], 400);
  EXPECT_TRUE(client.closed_by_server());
}

TEST(Server, IncompleteRequestTimesOutWith408) {
  ServerOptions options;
  options.request_timeout = std::chrono::milliseconds(200);
  auto server = start(options);
  Client client(server->port());
  ASSERT_TRUE(client.send_raw("GET /echo HTTP/1.1\r\nHost: x\r\n"));
  EXPECT_EQ(client.read_reply().status, 408);
  // An idle keep-alive connection is closed without a response.
  Client idle(server->port());
  EXPECT_EQ(idle.get("/echo").status, 200);
  EXPECT_TRUE(idle.closed_by_server());
}

TEST(Server, HandlerThatThrowsGives500AndTheServerCarriesOn) {
  std::vector<std::string> logged;
  std::mutex logged_mutex;
  ServerOptions options;
  options.logger = core::Logger(
      [&](const core::LogRecord& record) {
        const std::lock_guard lock(logged_mutex);
        logged.emplace_back(record.message);
      },
      core::LogLevel::kWarn);
  auto server = start(options);
  Client client(server->port());
  const Reply reply = client.get("/throw");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.json()["error"]["status"], 500);
  EXPECT_EQ(client.get("/echo").status, 200);  // same connection, still served
  const std::lock_guard lock(logged_mutex);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("handler bug"), std::string::npos);
}

TEST(Server, KeepsTheConnectionAliveAcrossRequests) {
  auto server = start();
  Client client(server->port());
  std::string remote;
  for (int i = 0; i < 5; ++i) {
    const Reply reply = client.get("/echo");
    ASSERT_EQ(reply.status, 200) << reply.error;
    EXPECT_NE(reply.header("Connection"), "close");
    // One client port throughout: one connection.
    const std::string this_remote = reply.json()["remote"];
    if (i == 0) remote = this_remote;
    EXPECT_EQ(this_remote, remote);
  }
  EXPECT_EQ(client.request(Verb::get, "/echo", {}, {{"Connection", "close"}}).header("Connection"), "close");
  EXPECT_TRUE(client.closed_by_server());
}

TEST(Server, CorsHeadersOnlyForAllowedOrigins) {
  ServerOptions options;
  options.cors_allowed_origins = {"http://dashboard.example"};
  auto server = start(options);
  Client client(server->port());
  Reply reply = client.get("/echo", {{"Origin", "http://dashboard.example"}});
  EXPECT_EQ(reply.header("Access-Control-Allow-Origin"), "http://dashboard.example");
  EXPECT_EQ(reply.header("Vary"), "Origin");
  EXPECT_EQ(client.get("/echo", {{"Origin", "http://evil.example"}}).header("Access-Control-Allow-Origin"), "");

  reply = client.request(Verb::options, "/api/v1/jobs/3", {},
                         {{"Origin", "http://dashboard.example"},
                          {"Access-Control-Request-Method", "DELETE"},
                          {"Access-Control-Request-Headers", "content-type"}});
  EXPECT_EQ(reply.status, 204);
  EXPECT_EQ(reply.header("Access-Control-Allow-Methods"), "GET, DELETE");
  EXPECT_EQ(reply.header("Access-Control-Allow-Headers"), "content-type");
  EXPECT_EQ(reply.header("Access-Control-Allow-Origin"), "http://dashboard.example");

  options.cors_allowed_origins = {"*"};
  auto any = start(options);
  EXPECT_EQ(Client(any->port()).get("/echo", {{"Origin", "http://x.example"}}).header("Access-Control-Allow-Origin"),
            "*");
  auto none = start();
  EXPECT_EQ(Client(none->port()).get("/echo", {{"Origin", "http://x.example"}}).header("Access-Control-Allow-Origin"),
            "");
}

TEST(Server, ServesConcurrentClients) {
  ServerOptions options;
  options.threads = 4;
  auto server = start(options);
  constexpr int kClients = 8;
  constexpr int kRequestsEach = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      Client client(server->port());
      for (int i = 0; i < kRequestsEach; ++i) {
        const std::string id = std::to_string(c) + "-" + std::to_string(i);
        const Reply reply = client.get("/api/v1/jobs/" + id);
        if (reply.status == 200 && reply.json()["id"] == id) ++ok;
      }
    });
  }
  for (auto& thread : clients) thread.join();
  EXPECT_EQ(ok.load(), kClients * kRequestsEach);
}

TEST(Server, StopClosesConnectedClientsAndJoins) {
  auto server = start();
  Client idle(server->port());
  ASSERT_EQ(idle.get("/echo").status, 200);
  Client partial(server->port());
  ASSERT_TRUE(partial.send_raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"));
  Client fresh(server->port());
  ASSERT_TRUE(fresh.connected());

  const auto started = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_TRUE(idle.closed_by_server());
  EXPECT_TRUE(partial.closed_by_server());
  EXPECT_FALSE(Client(server->port()).connected());
  server->stop();  // idempotent
}

TEST(Server, PortInUseIsAnError) {
  auto first = start();
  ServerOptions options;
  options.port = first->port();
  auto second = Server::create(options, Router());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, core::ErrorCode::kUnavailable);
  EXPECT_NE(second.error().message.find("127.0.0.1:" + std::to_string(first->port())), std::string::npos);
}

// What a WebSocket route saw and did, keyed by the {room} of /ws/{room}, with waits bounded by a generous deadline
// (the machine may be loaded; nothing here asserts how fast something happens).
class Probe {
 public:
  static constexpr std::chrono::seconds kDeadline{20};

  // /ws/{room}?token=abc[&max_queued=N][&ping_ms=N][&throw]: 401 without the token.
  Router router() {
    Router router = test_router();
    router.websocket("/ws/{room}", [this](const Request& request, const PathParams& params) {
      return upgrade(request, params.at("room"));
    });
    return router;
  }

  bool wait_open(const std::string& room) {
    return wait([&] { return sockets_.count(room) > 0; }, kDeadline);
  }
  bool wait_closed(const std::string& room, std::chrono::seconds deadline = kDeadline) {
    return wait([&] { return closes_.count(room) > 0; }, deadline);
  }
  bool wait_messages(const std::string& room, size_t count) {
    return wait([&] { return messages_[room].size() >= count; }, kDeadline);
  }

  std::shared_ptr<WebSocket> socket(const std::string& room) {
    const std::lock_guard lock(mutex_);
    return sockets_.count(room) ? sockets_.at(room) : nullptr;
  }
  int closes(const std::string& room) {
    const std::lock_guard lock(mutex_);
    return closes_.count(room) ? closes_.at(room) : 0;
  }
  std::vector<std::string> messages(const std::string& room) {
    const std::lock_guard lock(mutex_);
    return messages_[room];
  }
  std::optional<Request> request(const std::string& room) {
    const std::lock_guard lock(mutex_);
    if (!requests_.count(room)) return std::nullopt;
    return requests_.at(room);
  }

 private:
  std::variant<Response, WebSocketAccept> upgrade(const Request& request, const std::string& room) {
    {
      const std::lock_guard lock(mutex_);
      requests_[room] = request;
    }
    if (request.query.count("throw")) throw std::runtime_error("upgrade handler bug");
    const auto token = request.query.find("token");
    if (token == request.query.end() || token->second != "abc") return json_error(401, "token required");
    WebSocketAccept accept;
    accept.ping_interval = std::chrono::seconds(60);  // no keep-alive drops unless a test asks for them
    if (auto it = request.query.find("max_queued"); it != request.query.end())
      accept.max_queued = std::stoul(it->second);
    if (auto it = request.query.find("ping_ms"); it != request.query.end()) {
      accept.ping_interval = std::chrono::milliseconds(std::stol(it->second));
    }
    accept.callbacks.on_open = [this, room](const std::shared_ptr<WebSocket>& socket) {
      EXPECT_EQ(socket->send("welcome " + room, false), SendResult::kQueued);  // at once, from on_open
      update([&] { sockets_[room] = socket; });
    };
    accept.callbacks.on_message = [this, room](std::string_view text) {
      update([&] { messages_[room].emplace_back(text); });
    };
    accept.callbacks.on_close = [this, room] { update([&] { ++closes_[room]; }); };
    return accept;
  }

  template <class Predicate>
  bool wait(Predicate predicate, std::chrono::seconds deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, deadline, predicate);
  }

  template <class Change>
  void update(Change change) {
    {
      const std::lock_guard lock(mutex_);
      change();
    }
    changed_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<WebSocket>> sockets_;
  std::map<std::string, std::vector<std::string>> messages_;
  std::map<std::string, int> closes_;
  std::map<std::string, Request> requests_;
};

// The connection is open on both sides and the greeting sent from on_open has been read.
std::unique_ptr<WebSocketClient> connect(uint16_t port, Probe& probe, const std::string& room,
                                         const std::string& query = {}) {
  auto client = std::make_unique<WebSocketClient>(port, "/ws/" + room + "?token=abc" + query);
  EXPECT_TRUE(client->open()) << client->handshake().status << " " << client->handshake().error;
  EXPECT_TRUE(probe.wait_open(room));
  EXPECT_EQ(client->read(), "welcome " + room);
  return client;
}

TEST(WebSocket, MessagesFlowBothWaysInOrderAndCloseEndsOnce) {
  Probe probe;  // outlives the server, whose callbacks use it
  auto server = start({}, probe.router());
  auto client = connect(server->port(), probe, "lobby");
  EXPECT_EQ(client->handshake().status, 101);
  EXPECT_EQ(client->handshake().header("Server"), "workbench");
  const std::shared_ptr<WebSocket> socket = probe.socket("lobby");
  ASSERT_TRUE(socket);
  EXPECT_TRUE(socket->is_open());

  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(socket->send("m" + std::to_string(i), i % 2 == 0), SendResult::kQueued);
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(client->read(), "m" + std::to_string(i));

  ASSERT_TRUE(client->send("hello"));
  ASSERT_TRUE(client->send("bytes", true));  // binary arrives as text
  ASSERT_TRUE(probe.wait_messages("lobby", 2));
  EXPECT_EQ(probe.messages("lobby"), (std::vector<std::string>{"hello", "bytes"}));

  EXPECT_TRUE(client->close());
  ASSERT_TRUE(probe.wait_closed("lobby"));
  EXPECT_FALSE(socket->is_open());
  EXPECT_EQ(socket->send("late", false), SendResult::kClosed);
  server.reset();  // stop() finds nothing left to end
  EXPECT_EQ(probe.closes("lobby"), 1);
}

TEST(WebSocket, ServerCloseWritesQueuedMessagesFirst) {
  Probe probe;
  auto server = start({}, probe.router());
  auto client = connect(server->port(), probe, "lobby");
  const std::shared_ptr<WebSocket> socket = probe.socket("lobby");
  EXPECT_EQ(socket->send("last words", false), SendResult::kQueued);
  socket->close(4000, "bye");
  socket->close(4001, "again");  // idempotent
  EXPECT_FALSE(socket->is_open());
  EXPECT_EQ(socket->send("too late", false), SendResult::kClosed);
  EXPECT_EQ(client->read(), "last words");
  EXPECT_EQ(client->read(), std::nullopt);
  EXPECT_EQ(client->close_code(), 4000);
  ASSERT_TRUE(probe.wait_closed("lobby"));
  EXPECT_EQ(probe.closes("lobby"), 1);
}

TEST(WebSocket, RefusalIsAPlainHttpResponse) {
  Probe probe;
  ServerOptions options;
  options.cors_allowed_origins = {"*"};
  auto server = start(options, probe.router());
  WebSocketClient refused(server->port(), "/ws/lobby?token=wrong", {{"Origin", "http://x.example"}});
  EXPECT_FALSE(refused.open());
  EXPECT_EQ(refused.handshake().status, 401);
  EXPECT_EQ(refused.handshake().json()["error"]["status"], 401);
  EXPECT_EQ(refused.handshake().header("Access-Control-Allow-Origin"), "*");

  WebSocketClient broken(server->port(), "/ws/lobby?token=abc&throw");
  EXPECT_FALSE(broken.open());
  EXPECT_EQ(broken.handshake().status, 500);
  EXPECT_EQ(probe.socket("lobby"), nullptr);
  EXPECT_EQ(probe.closes("lobby"), 0);
}

TEST(WebSocket, PlainGetIs426UpgradeToAPlainRouteIs400UnknownPathIs404) {
  Probe probe;
  auto server = start({}, probe.router());
  const Reply plain = Client(server->port()).get("/ws/lobby?token=abc");
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(plain.header("Upgrade"), "websocket");
  EXPECT_EQ(plain.json()["error"]["status"], 426);
  EXPECT_EQ(probe.request("lobby"), std::nullopt);  // the upgrade handler is not asked

  WebSocketClient to_plain(server->port(), "/echo");
  EXPECT_FALSE(to_plain.open());
  EXPECT_EQ(to_plain.handshake().status, 400);
  EXPECT_EQ(to_plain.handshake().json()["error"]["status"], 400);
  EXPECT_EQ(WebSocketClient(server->port(), "/nope").handshake().status, 404);
  EXPECT_EQ(WebSocketClient(server->port(), "/api/v1/jobs/7/x").handshake().status, 404);
}

TEST(WebSocket, UpgradeHandlerSeesPathQueryAndHeaders) {
  Probe probe;
  auto server = start({}, probe.router());
  WebSocketClient client(server->port(), "/ws/room%201?token=abc&resume=42", {{"X-Client", "probe"}});
  ASSERT_TRUE(client.open());
  const std::optional<Request> request = probe.request("room 1");
  ASSERT_TRUE(request);
  EXPECT_EQ(request->method, Method::kGet);
  EXPECT_EQ(request->path, "/ws/room%201");
  EXPECT_EQ(request->query.at("token"), "abc");
  EXPECT_EQ(request->query.at("resume"), "42");
  EXPECT_EQ(request->headers.at("x-client"), "probe");
  EXPECT_EQ(request->headers.at("Upgrade"), "websocket");
  EXPECT_NE(request->remote_address.find("127.0.0.1:"), std::string::npos);
}

// A page from another site must not open the service's WebSockets with its user's access; non-browser clients send
// no Origin, and the server's own pages or allowed CORS origins pass.
TEST(WebSocket, CrossSiteOriginsAreRefused) {
  Probe probe;
  auto server = start({}, probe.router());
  WebSocketClient foreign(server->port(), "/ws/a?token=abc", {{"Origin", "https://evil.example"}});
  EXPECT_FALSE(foreign.open());
  EXPECT_EQ(foreign.handshake().status, 403);
  EXPECT_TRUE(WebSocketClient(server->port(), "/ws/b?token=abc", {{"Origin", "http://127.0.0.1"}}).open())
      << "same origin";
  EXPECT_TRUE(WebSocketClient(server->port(), "/ws/c?token=abc").open()) << "no Origin: not a browser";
  ServerOptions allowing;
  allowing.cors_allowed_origins = {"https://dashboard.example"};
  auto cors = start(allowing, probe.router());
  EXPECT_TRUE(WebSocketClient(cors->port(), "/ws/d?token=abc", {{"Origin", "https://dashboard.example"}}).open());
  EXPECT_EQ(WebSocketClient(cors->port(), "/ws/e?token=abc", {{"Origin", "https://evil.example"}}).handshake().status,
            403);
}

TEST(WebSocket, SlowClientDropsThenClosesWith1008WhileAFastOneGetsEverything) {
  Probe probe;
  auto server = start({}, probe.router());
  auto slow = connect(server->port(), probe, "slow", "&max_queued=4");  // and never reads again until the end
  auto fast = connect(server->port(), probe, "fast");
  const std::shared_ptr<WebSocket> to_slow = probe.socket("slow");
  const std::shared_ptr<WebSocket> to_fast = probe.socket("fast");

  constexpr int kMessages = 200;
  std::vector<std::string> fast_received;
  std::thread fast_reader([&] {
    for (int i = 0; i < kMessages; ++i) {
      std::optional<std::string> message = fast->read();
      if (!message) return;
      fast_received.push_back(std::move(*message));
    }
  });

  // The sending thread never waits: each send answers at once, whatever the slow client does.
  const std::string large(size_t{256} << 10, 'x');
  int queued = 0;
  int dropped = 0;
  for (int i = 0; i < kMessages; ++i) {
    const SendResult result = to_slow->send(large, true);
    EXPECT_NE(result, SendResult::kClosed);
    (result == SendResult::kQueued ? queued : dropped)++;
    EXPECT_EQ(to_fast->send(std::to_string(i), false), SendResult::kQueued);
  }
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(queued + dropped, kMessages);
  EXPECT_EQ(to_slow->dropped(), dropped);
  EXPECT_LE(to_slow->queued(), 4u);

  // Non-droppable messages evict the droppable ones still waiting, then find the queue full of their own kind.
  SendResult result = SendResult::kQueued;
  for (int i = 0; i < 1000 && result == SendResult::kQueued; ++i) result = to_slow->send(large, false);
  EXPECT_EQ(result, SendResult::kClosed);
  EXPECT_GE(to_slow->dropped(), dropped);
  EXPECT_FALSE(to_slow->is_open());
  EXPECT_EQ(to_slow->queued(), 0u);
  EXPECT_EQ(to_slow->send("after", false), SendResult::kClosed);

  // What was already on its way (possibly nothing, if the sends outran the writer) arrives, then the close frame.
  while (std::optional<std::string> message = slow->read()) EXPECT_EQ(message->size(), large.size());
  EXPECT_EQ(slow->close_code(), 1008);
  ASSERT_TRUE(probe.wait_closed("slow"));

  fast_reader.join();
  ASSERT_EQ(fast_received.size(), size_t{kMessages});
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(fast_received[static_cast<size_t>(i)], std::to_string(i));
  EXPECT_TRUE(to_fast->is_open());
  EXPECT_EQ(to_fast->dropped(), 0);
  EXPECT_EQ(probe.closes("fast"), 0);
}

TEST(WebSocket, SilentPeerIsDroppedAfterThreePingIntervals) {
  Probe probe;
  auto server = start({}, probe.router());
  const auto opened = std::chrono::steady_clock::now();
  auto silent = connect(server->port(), probe, "quiet", "&ping_ms=100");  // never reads again: never answers
  ASSERT_TRUE(probe.wait_closed("quiet"));
  EXPECT_GE(std::chrono::steady_clock::now() - opened, std::chrono::milliseconds(300));
  EXPECT_FALSE(probe.socket("quiet")->is_open());
  EXPECT_EQ(silent->read(), std::nullopt);  // the pings, then the end of the connection
  EXPECT_GT(silent->pings(), 0);
}

TEST(WebSocket, PeerThatAnswersPingsStaysOpen) {
  Probe probe;
  auto server = start({}, probe.router());
  auto client = connect(server->port(), probe, "lively", "&ping_ms=500");
  std::optional<std::string> message;
  std::thread reader([&] { message = client->read(); });               // answers the pings while it waits
  EXPECT_FALSE(probe.wait_closed("lively", std::chrono::seconds(3)));  // 6 intervals
  EXPECT_EQ(probe.socket("lively")->send("still here", false), SendResult::kQueued);
  reader.join();
  EXPECT_EQ(message, "still here");
  EXPECT_GT(client->pings(), 0);
}

TEST(WebSocket, StopEndsOpenConnectionsOnce) {
  Probe probe;
  auto server = start({}, probe.router());
  auto one = connect(server->port(), probe, "one");
  auto two = connect(server->port(), probe, "two");
  const std::shared_ptr<WebSocket> socket = probe.socket("one");
  EXPECT_EQ(socket->send("pending", false), SendResult::kQueued);
  server->stop();
  EXPECT_EQ(probe.closes("one"), 1);
  EXPECT_EQ(probe.closes("two"), 1);
  EXPECT_FALSE(socket->is_open());
  EXPECT_EQ(socket->send("after stop", false), SendResult::kClosed);
  server.reset();
  EXPECT_EQ(socket->send("after destruction", false), SendResult::kClosed);  // the handle outlives the server
  EXPECT_EQ(probe.closes("one"), 1);
  EXPECT_EQ(probe.closes("two"), 1);
  while (one->read()) {
  }
  EXPECT_EQ(one->read(), std::nullopt);
}

TEST(WebSocket, OversizedMessageClosesWith1009) {
  Probe probe;
  auto server = start({}, probe.router());
  auto client = connect(server->port(), probe, "big");
  const size_t limit = WebSocketAccept{}.max_message_bytes;
  ASSERT_TRUE(client->send(std::string(limit, 'a')));
  ASSERT_TRUE(probe.wait_messages("big", 1));
  ASSERT_TRUE(client->send(std::string(limit + 1, 'b')));
  EXPECT_EQ(client->read(), std::nullopt);
  EXPECT_EQ(client->close_code(), 1009);
  ASSERT_TRUE(probe.wait_closed("big"));
  EXPECT_EQ(probe.messages("big").size(), 1u);
}

TEST(Router, WebSocketRouteIsAGetRoute) {
  Router router = test_router();
  router.websocket("/ws/{room}",
                   [](const Request&, const PathParams& params) -> std::variant<Response, WebSocketAccept> {
                     if (params.at("room") == "closed") return json_error(403, "closed room");
                     return WebSocketAccept{};
                   });
  const auto routes = router.routes();
  ASSERT_EQ(routes.size(), 7u);
  EXPECT_EQ(routes.back().method, Method::kGet);
  EXPECT_EQ(routes.back().pattern, "/ws/{room}");
  EXPECT_EQ(router.allowed_methods("/ws/lobby"), std::vector<Method>{Method::kGet});

  Request request;
  request.path = "/ws/lobby";
  EXPECT_EQ(router.handle(request).status, 426);
  EXPECT_TRUE(std::holds_alternative<WebSocketAccept>(router.upgrade(request)));
  request.path = "/ws/closed";
  EXPECT_EQ(std::get<Response>(router.upgrade(request)).status, 403);
  request.path = "/echo";
  EXPECT_EQ(std::get<Response>(router.upgrade(request)).status, 400);
  request.path = "/nope";
  EXPECT_EQ(std::get<Response>(router.upgrade(request)).status, 404);
  request.path = "/ws/lobby";
  request.method = Method::kPost;
  EXPECT_EQ(std::get<Response>(router.upgrade(request)).status, 405);
}

TEST(Router, ListsItsRoutes) {
  const auto routes = test_router().routes();
  ASSERT_EQ(routes.size(), 6u);
  EXPECT_EQ(routes[0].method, Method::kGet);
  EXPECT_EQ(routes[0].pattern, "/api/v1/jobs/{id}");
  EXPECT_EQ(routes[2].method, Method::kDelete);
}

}  // namespace
}  // namespace server::http
