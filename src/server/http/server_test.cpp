// server::http against real sockets on 127.0.0.1 (an ephemeral port per test), driven by a Beast client.
#include <gtest/gtest.h>

#include <atomic>
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
using Verb = boost::beast::http::verb;

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

TEST(Router, ListsItsRoutes) {
  const auto routes = test_router().routes();
  ASSERT_EQ(routes.size(), 6u);
  EXPECT_EQ(routes[0].method, Method::kGet);
  EXPECT_EQ(routes[0].pattern, "/api/v1/jobs/{id}");
  EXPECT_EQ(routes[2].method, Method::kDelete);
}

}  // namespace
}  // namespace server::http
