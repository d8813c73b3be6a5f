#pragma once
// Tests only: a PostgreSQL 15 cluster of the test's own, in a temporary folder (Debian's postgresql-15; as root it
// runs as the postgres user, which PostgreSQL requires), on a Unix socket there. stop() and start() let a test take
// the database away under a running writer.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/test_support/process.h"

namespace store::test_support {

inline const std::filesystem::path kPostgresBin = "/usr/lib/postgresql/15/bin";

inline int run(const std::string& command) {
  return std::system(command.c_str());
}  // NOLINT(cert-env33-c): test harness

// A PostgreSQL cluster of its own: initdb, then pg_ctl start/stop on a Unix socket in the same folder.
class PostgresServer {
 public:
  PostgresServer()
      : dir_(std::filesystem::temp_directory_path() / ("pg_test_" + std::to_string(getpid()))),
        port_(core::test_support::free_port()) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    as_user_ = geteuid() == 0 ? "runuser -u postgres -- " : "";
    if (geteuid() == 0) run("chown postgres " + dir_.string());
    ok_ = std::filesystem::exists(kPostgresBin / "initdb") &&
          run(as_user_ + (kPostgresBin / "initdb").string() + " -A trust -U postgres -D " + (dir_ / "data").string() +
              " > " + (dir_ / "initdb.log").string() + " 2>&1") == 0 &&
          start();
  }
  ~PostgresServer() {
    stop();
    std::filesystem::remove_all(dir_);
  }
  bool ok() const { return ok_; }
  bool start() {
    return run(as_user_ + (kPostgresBin / "pg_ctl").string() + " -w -D " + (dir_ / "data").string() + " -l " +
               (dir_ / "server.log").string() + " -o \"-k " + dir_.string() + " -p " + std::to_string(port_) +
               " -c listen_addresses=''\" start > /dev/null") == 0;
  }
  void stop() {
    run(as_user_ + (kPostgresBin / "pg_ctl").string() + " -w -m fast -D " + (dir_ / "data").string() +
        " stop > /dev/null 2>&1");
  }
  // psql's unaligned output of one statement ("" when it failed), for what the Store interface does not show.
  std::string sql(const std::string& statement) const {
    const std::string command = as_user_ + (kPostgresBin / "psql").string() + " -h " + dir_.string() + " -p " +
                                std::to_string(port_) + " -U postgres -d postgres -tAq -v ON_ERROR_STOP=1 -c \"" +
                                statement + "\" 2>/dev/null";
    FILE* pipe = popen(command.c_str(), "r");  // NOLINT(cert-env33-c): test harness
    if (pipe == nullptr) return "";
    std::string out;
    char buffer[4096];
    while (fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
    pclose(pipe);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  std::string uri(const std::string& password = "") const {
    return "postgresql://postgres" + (password.empty() ? "" : ":" + password) + "@/postgres?host=" + dir_.string() +
           "&port=" + std::to_string(port_);
  }

 private:
  std::filesystem::path dir_;
  uint16_t port_;
  std::string as_user_;
  bool ok_ = false;
};

}  // namespace store::test_support
