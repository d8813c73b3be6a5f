#pragma once
// Logging through an injected sink. Libraries receive a Logger in their options and never choose where logs go;
// the application decides (stderr, a file, a test's vector). A default-constructed Logger discards everything.
//
// Thread-safety: a Logger is immutable after construction and may be copied and used from any thread; the sink
// must be safe to call concurrently (the sinks below are).

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

namespace core {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

const char* to_string(LogLevel level);
// Accepts debug, info, warn, error (case-insensitive). Returns false for anything else.
bool parse_log_level(std::string_view text, LogLevel* level);

struct LogRecord {
  LogLevel level = LogLevel::kInfo;
  std::string_view component;  // e.g. "doctor", "pose.ingest"
  std::string_view message;
  std::chrono::system_clock::time_point time;
};

using LogSink = std::function<void(const LogRecord&)>;

// Writes "2026-11-26T20:31:04.123Z warn  [doctor] message" lines to stderr, serialised by a mutex.
LogSink stderr_sink();

class Logger {
 public:
  Logger() = default;
  Logger(LogSink sink, LogLevel min_level, std::string component = {})
      : sink_(std::make_shared<const LogSink>(std::move(sink))),
        min_level_(min_level),
        component_(std::move(component)) {}

  // A logger for a sub-component that shares this one's sink and level.
  Logger child(std::string_view component) const {
    Logger copy = *this;
    copy.component_ = component_.empty() ? std::string(component) : component_ + "." + std::string(component);
    return copy;
  }

  bool enabled(LogLevel level) const { return sink_ && level >= min_level_; }

  template <class... Args>
  void debug(const Args&... args) const {
    write(LogLevel::kDebug, args...);
  }
  template <class... Args>
  void info(const Args&... args) const {
    write(LogLevel::kInfo, args...);
  }
  template <class... Args>
  void warn(const Args&... args) const {
    write(LogLevel::kWarn, args...);
  }
  template <class... Args>
  void error(const Args&... args) const {
    write(LogLevel::kError, args...);
  }

 private:
  // Arguments are streamed and concatenated, so the cost is paid only when the level is enabled.
  template <class... Args>
  void write(LogLevel level, const Args&... args) const {
    if (!enabled(level)) return;
    std::ostringstream text;
    (text << ... << args);
    const std::string message = text.str();
    (*sink_)(LogRecord{level, component_, message, std::chrono::system_clock::now()});
  }

  // Shared so that copies of a Logger (one per component) refer to one sink; the sink itself is immutable.
  std::shared_ptr<const LogSink> sink_;
  LogLevel min_level_ = LogLevel::kInfo;
  std::string component_;
};

}  // namespace core
