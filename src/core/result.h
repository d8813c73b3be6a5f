#pragma once
// Result<T>: the return type of every operation that can fail in an expected way (a missing file, a malformed
// config, a GPU that is not there). The message says what failed, where, and how to fix it; callers decide
// whether to recover or to report. Exceptions are kept for the fatal and never cross a module boundary.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace core {

enum class ErrorCode {
  kInvalidArgument,  // the caller passed something malformed (config value, flag, JSON)
  kNotFound,         // a file, device, key or library that should exist does not
  kCorrupt,          // data exists but is damaged (checksum mismatch, truncated file)
  kUnavailable,      // a resource exists but cannot be used now (no driver, device busy, server down)
  kUnsupported,      // valid request this build or machine cannot serve
  kOutOfMemory,
  kIo,
  kInternal,
};

const char* to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Accessing the value of a failed Result is a programming error, not an expected failure.
  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace core
