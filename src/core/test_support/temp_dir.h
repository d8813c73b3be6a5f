#pragma once
// Tests only: a folder of their own under the system's temporary directory, removed with everything in it.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace core::test_support {

class TempDir {
 public:
  // Named after `prefix`, the process and a count: CTest runs test cases in parallel processes, and a case may make
  // several. A folder left by an earlier process of the same id is emptied first.
  explicit TempDir(std::string_view prefix = "wb_test") {
    static std::atomic<int> made{0};
    path_ = std::filesystem::temp_directory_path() /
            (std::string(prefix) + "_" + std::to_string(::getpid()) + "_" + std::to_string(made++));
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;  // a destructor must not throw; a leftover folder is harmless
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // The path of `name` inside, as text (what file APIs and source URIs take).
  std::string operator/(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace core::test_support
