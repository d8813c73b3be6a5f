// Route matching and the value-type helpers of the public header; nothing here knows about sockets.
#include <algorithm>
#include <cassert>
#include <cctype>
#include <nlohmann/json.hpp>

#include "server/http/http.h"
#include "server/http/url.h"

namespace server::http {
namespace {

constexpr Method kAllMethods[] = {Method::kGet,   Method::kHead,   Method::kPost,   Method::kPut,
                                  Method::kPatch, Method::kDelete, Method::kOptions};

bool is_parameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

[[maybe_unused]] bool well_formed(std::string_view pattern) {  // for an assert
  if (pattern.empty() || pattern.front() != '/') return false;
  return std::all_of(pattern.begin(), pattern.end(), [](char c) { return c != '?' && c != '#'; });
}

}  // namespace

const char* to_string(Method method) {
  switch (method) {
    case Method::kGet: return "GET";
    case Method::kHead: return "HEAD";
    case Method::kPost: return "POST";
    case Method::kPut: return "PUT";
    case Method::kPatch: return "PATCH";
    case Method::kDelete: return "DELETE";
    case Method::kOptions: return "OPTIONS";
  }
  return "GET";
}

std::optional<Method> parse_method(std::string_view text) {
  for (Method method : kAllMethods) {
    if (text == to_string(method)) return method;
  }
  return std::nullopt;
}

bool HeaderNameLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) < std::tolower(static_cast<unsigned char>(y));
  });
}

Response json_response(int status, const nlohmann::json& body) {
  Response response;
  response.status = status;
  // Replace invalid UTF-8 (say, from a user's file name) instead of throwing out of a handler.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

Response json_error(int status, std::string_view message) {
  return json_response(status, {{"error", {{"status", status}, {"message", message}}}});
}

Router& Router::add(Method method, std::string pattern, Handler handler) {
  assert(well_formed(pattern) && "a route pattern is an absolute path without query or fragment");
  Entry entry;
  entry.route = Route{method, std::move(pattern)};
  for (std::string_view segment : split_path(entry.route.pattern)) {
    assert(!segment.empty() && "a route pattern has no empty segments");
    if (!is_parameter(segment)) ++entry.literal_segments;
    entry.segments.emplace_back(segment);
  }
  assert(std::none_of(
             entries_.begin(), entries_.end(),
             [&](const Entry& e) { return e.route.method == method && e.route.pattern == entry.route.pattern; }) &&
         "a route is added once");
  entry.handler = std::move(handler);
  entries_.push_back(std::move(entry));
  return *this;
}

std::vector<const Router::Entry*> Router::matching(std::string_view path) const {
  const std::vector<std::string_view> segments = split_path(path);
  std::vector<const Entry*> found;
  for (const Entry& entry : entries_) {
    if (entry.segments.size() != segments.size()) continue;
    bool matches = true;
    for (size_t i = 0; i < segments.size() && matches; ++i) {
      matches = is_parameter(entry.segments[i]) ? !segments[i].empty() : entry.segments[i] == segments[i];
    }
    if (matches) found.push_back(&entry);
  }
  return found;
}

std::vector<Method> Router::allowed_methods(std::string_view path) const {
  const std::vector<const Entry*> found = matching(path);
  std::vector<Method> methods;
  for (Method method : kAllMethods) {
    if (std::any_of(found.begin(), found.end(), [&](const Entry* e) { return e->route.method == method; })) {
      methods.push_back(method);
    }
  }
  return methods;
}

Router& Router::websocket(std::string pattern, UpgradeHandler handler) {
  add(Method::kGet, std::move(pattern), [](const Request& request, const PathParams&) {
    Response response = json_error(426, request.path + " is a WebSocket endpoint; connect with a WebSocket client");
    // RFC 9110 15.5.22: a 426 names the protocol to upgrade to, and Upgrade is a connection option.
    response.headers["Upgrade"] = "websocket";
    response.headers["Connection"] = "Upgrade";
    return response;
  });
  entries_.back().upgrade = std::move(handler);
  return *this;
}

std::variant<Response, Router::Match> Router::resolve(const Request& request) const {
  const std::vector<const Entry*> found = matching(request.path);
  if (found.empty()) return json_error(404, "no resource at " + request.path);
  const Entry* best = nullptr;
  for (const Entry* entry : found) {
    if (entry->route.method == request.method && (!best || entry->literal_segments > best->literal_segments)) {
      best = entry;
    }
  }
  if (!best) {
    std::string allow;
    for (Method method : allowed_methods(request.path))
      allow += (allow.empty() ? "" : ", ") + std::string(to_string(method));
    Response response = json_error(
        405, std::string(to_string(request.method)) + " is not allowed on " + request.path + "; allowed: " + allow);
    response.headers["Allow"] = allow;
    return response;
  }
  Match match{best, {}};
  const std::vector<std::string_view> segments = split_path(request.path);
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& segment = best->segments[i];
    if (!is_parameter(segment)) continue;
    std::optional<std::string> value = percent_decode(segments[i], false);
    if (!value) return json_error(400, "malformed percent-encoding in path segment '" + std::string(segments[i]) + "'");
    match.params.emplace(segment.substr(1, segment.size() - 2), std::move(*value));
  }
  return match;
}

Response Router::handle(const Request& request) const {
  std::variant<Response, Match> resolved = resolve(request);
  if (auto* response = std::get_if<Response>(&resolved)) return std::move(*response);
  const Match& match = std::get<Match>(resolved);
  return match.entry->handler(request, match.params);
}

std::variant<Response, WebSocketAccept> Router::upgrade(const Request& request) const {
  std::variant<Response, Match> resolved = resolve(request);
  if (auto* response = std::get_if<Response>(&resolved)) return std::move(*response);
  const Match& match = std::get<Match>(resolved);
  if (!match.entry->upgrade) return json_error(400, request.path + " is not a WebSocket endpoint");
  return match.entry->upgrade(request, match.params);
}

std::vector<Router::Route> Router::routes() const {
  std::vector<Route> out;
  out.reserve(entries_.size());
  for (const Entry& entry : entries_) out.push_back(entry.route);
  return out;
}

}  // namespace server::http
