// The SQLite store: one file, WAL journal (readers never block the writer), fsync on every commit, migrations
// tracked in PRAGMA user_version.
#include <sqlite3.h>

#include <array>
#include <string>
#include <system_error>

#include "store/store.h"

namespace store {
namespace {

// Each migration takes the schema from its index to the next version, in one transaction. Never edit one that
// has shipped: add another.
constexpr std::array<const char*, 2> kMigrations = {
    // 1: events, unique by key; found by stream and time, or by time alone.
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  key TEXT NOT NULL UNIQUE,"
    "  stream_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  track_id INTEGER NOT NULL,"
    "  exercise TEXT NOT NULL,"
    "  timestamp_us INTEGER NOT NULL,"
    "  payload TEXT NOT NULL);"
    "CREATE INDEX events_by_stream_time ON events(stream_id, timestamp_us);"
    "CREATE INDEX events_by_time ON events(timestamp_us);",
    // 2: the service's history asks for one kind (reps) of one stream most often.
    "CREATE INDEX events_by_stream_kind ON events(stream_id, kind, id);",
};

// Errors that pass: the store may take writes again later (a lock, a full disk, an I/O error, a file made
// read-only). Everything else is a bug or damage.
core::ErrorCode code_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL: return core::ErrorCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return core::ErrorCode::kCorrupt;
    default: return core::ErrorCode::kInternal;
  }
}

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr); }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  int prepared() const { return rc_; }
  sqlite3_stmt* get() const { return statement_; }

 private:
  sqlite3_stmt* statement_ = nullptr;
  int rc_ = SQLITE_OK;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  core::Status append(std::span<const Record> records) override {
    for (const auto& record : records) {
      if (record.key.empty()) return core::make_error(core::ErrorCode::kInvalidArgument, "a record needs a key");
    }
    if (int rc = exec("BEGIN IMMEDIATE"); rc != SQLITE_OK) return error(rc, "starting a write");
    Statement insert(db_,
                     "INSERT OR IGNORE INTO events (key, stream_id, kind, track_id, exercise, timestamp_us, payload) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)");
    int rc = insert.prepared();
    for (size_t i = 0; rc == SQLITE_OK && i < records.size(); ++i) {
      const Record& r = records[i];
      sqlite3_stmt* s = insert.get();
      sqlite3_bind_text(s, 1, r.key.data(), static_cast<int>(r.key.size()), SQLITE_STATIC);
      sqlite3_bind_text(s, 2, r.stream_id.data(), static_cast<int>(r.stream_id.size()), SQLITE_STATIC);
      sqlite3_bind_text(s, 3, r.kind.data(), static_cast<int>(r.kind.size()), SQLITE_STATIC);
      sqlite3_bind_int64(s, 4, r.track_id);
      sqlite3_bind_text(s, 5, r.exercise.data(), static_cast<int>(r.exercise.size()), SQLITE_STATIC);
      sqlite3_bind_int64(s, 6, r.timestamp_us);
      sqlite3_bind_text(s, 7, r.payload.data(), static_cast<int>(r.payload.size()), SQLITE_STATIC);
      rc = sqlite3_step(s);
      rc = rc == SQLITE_DONE ? sqlite3_reset(s) : rc;
    }
    if (rc == SQLITE_OK) rc = exec("COMMIT");
    if (rc != SQLITE_OK) {
      const core::Error failed = error(rc, "writing " + std::to_string(records.size()) + " records").error();
      exec("ROLLBACK");
      return failed;
    }
    return {};
  }

  core::Result<Page> query(const Query& q) override {
    if (q.limit < 1 || q.limit > 1000) {
      return core::make_error(core::ErrorCode::kInvalidArgument, "limit must be between 1 and 1000");
    }
    std::string sql =
        "SELECT id, key, stream_id, kind, track_id, exercise, timestamp_us, payload FROM events "
        "WHERE id > ?1 AND timestamp_us >= ?2 AND timestamp_us < ?3";
    if (!q.stream_id.empty()) sql += " AND stream_id = ?4";
    if (!q.kind.empty()) sql += " AND kind = ?5";
    if (!q.exercise.empty()) sql += " AND exercise = ?6";
    if (q.track_id) sql += " AND track_id = ?7";
    sql += " ORDER BY id LIMIT ?8";
    Statement select(db_, sql.c_str());
    if (select.prepared() != SQLITE_OK) return error(select.prepared(), "preparing a query").error();
    sqlite3_stmt* s = select.get();
    sqlite3_bind_int64(s, 1, q.after_id);
    sqlite3_bind_int64(s, 2, q.from_us);
    sqlite3_bind_int64(s, 3, q.to_us);
    sqlite3_bind_text(s, 4, q.stream_id.data(), static_cast<int>(q.stream_id.size()), SQLITE_STATIC);
    sqlite3_bind_text(s, 5, q.kind.data(), static_cast<int>(q.kind.size()), SQLITE_STATIC);
    sqlite3_bind_text(s, 6, q.exercise.data(), static_cast<int>(q.exercise.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, q.track_id.value_or(0));
    sqlite3_bind_int(s, 8, q.limit + 1);  // one more says whether another page follows
    Page page;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      if (static_cast<int>(page.records.size()) == q.limit) {
        page.next_after_id = page.records.back().id;
        break;
      }
      const auto text = [&](int column) {
        const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(s, column));
        return data ? std::string(data, static_cast<size_t>(sqlite3_column_bytes(s, column))) : std::string();
      };
      StoredRecord stored;
      stored.id = sqlite3_column_int64(s, 0);
      stored.record = {text(1), text(2), text(3), sqlite3_column_int64(s, 4), text(5), sqlite3_column_int64(s, 6),
                       text(7)};
      page.records.push_back(std::move(stored));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return error(rc, "reading records").error();
    return page;
  }

  core::Result<int64_t> count() override {
    Statement select(db_, "SELECT COUNT(*) FROM events");
    if (select.prepared() != SQLITE_OK) return error(select.prepared(), "counting records").error();
    if (const int rc = sqlite3_step(select.get()); rc != SQLITE_ROW) return error(rc, "counting records").error();
    return sqlite3_column_int64(select.get(), 0);
  }

  std::string describe() const override { return "sqlite:" + path_.string(); }

  int exec(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  core::Status error(int rc, const std::string& what) const {
    return core::make_error(code_for(rc), describe() + ": " + what + " failed: " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  std::filesystem::path path_;
};

}  // namespace

int schema_version() { return static_cast<int>(kMigrations.size()); }

core::Result<std::unique_ptr<Store>> open_sqlite(const SqliteOptions& options) {
  if (options.path.empty()) return core::make_error(core::ErrorCode::kInvalidArgument, "the database needs a path");
  std::error_code ec;
  if (options.path.has_parent_path()) std::filesystem::create_directories(options.path.parent_path(), ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kUnavailable,
                            "cannot create " + options.path.parent_path().string() + ": " + ec.message());
  }
  sqlite3* db = nullptr;
  const int opened = sqlite3_open_v2(options.path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  auto store = std::make_unique<SqliteStore>(db, options.path);  // owns db from here, even when opening failed
  if (opened != SQLITE_OK) return store->error(opened, "opening").error();
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // WAL: readers (the API) never block the writer; FULL: every commit is on disk before append() returns.
  if (int rc = store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"); rc != SQLITE_OK) {
    return store->error(rc, "opening (is it a SQLite database?)").error();
  }
  int current = 0;
  {
    Statement version(db, "PRAGMA user_version");  // finalized before the migrations change the schema
    if (version.prepared() != SQLITE_OK || sqlite3_step(version.get()) != SQLITE_ROW) {
      return store->error(sqlite3_errcode(db), "reading the schema version").error();
    }
    current = sqlite3_column_int(version.get(), 0);
  }
  if (current > schema_version()) {
    return core::make_error(core::ErrorCode::kUnsupported, store->describe() + " has schema version " +
                                                               std::to_string(current) + ", newer than this build's " +
                                                               std::to_string(schema_version()) +
                                                               "; use a newer build or another database file");
  }
  for (int next = current; next < schema_version(); ++next) {
    const std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[static_cast<size_t>(next)] +
                            "PRAGMA user_version = " + std::to_string(next + 1) + "; COMMIT;";
    if (int rc = store->exec(sql.c_str()); rc != SQLITE_OK) {
      const core::Error failed = store->error(rc, "migrating to version " + std::to_string(next + 1)).error();
      store->exec("ROLLBACK");
      return failed;
    }
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace store
