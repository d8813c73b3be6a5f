// The PostgreSQL store, through libpq (the server's own C client; Debian 12's libpqxx is 6.4, and the few calls we
// make need no wrapper beyond the RAII below). The connection is re-established on the next call after it breaks,
// so a database restarted under a running service comes back without it.
//
// Events are partitioned by month of their time (events_pYYYYMM, created as records for a month arrive), so an old
// month goes with a DROP TABLE (PostgresOptions::retention_days) instead of a slow DELETE, and time-range queries
// read only the months they cover. A unique key must include the partitioning column in PostgreSQL, and the same
// event analysed again carries another time, so idempotency lives in a table of its own: event_keys, claimed in the
// same statement that inserts the event.
#include <libpq-fe.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "store/store.h"

namespace store {
namespace {

// Each migration takes the schema from its index to the next version, in one transaction. Never edit one that
// has shipped: add another.
constexpr std::array<const char*, 2> kMigrations = {
    // 1: events, unique by key; found by stream and time, or by time alone.
    "CREATE TABLE events ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE,"
    "  stream_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  track_id BIGINT NOT NULL,"
    "  exercise TEXT NOT NULL,"
    "  timestamp_us BIGINT NOT NULL,"
    "  payload JSONB NOT NULL);"
    "CREATE INDEX events_by_stream_time ON events (stream_id, timestamp_us);"
    "CREATE INDEX events_by_time ON events (timestamp_us);",
    // 2: events partitioned by month; the keys in a table of their own. Existing events keep their ids, and the id
    // sequence carries on.
    "CREATE TABLE event_keys (key TEXT PRIMARY KEY, timestamp_us BIGINT NOT NULL);"
    "INSERT INTO event_keys (key, timestamp_us) SELECT key, timestamp_us FROM events;"
    "CREATE INDEX event_keys_by_time ON event_keys (timestamp_us);"
    "ALTER TABLE events RENAME TO events_unpartitioned;"
    "ALTER SEQUENCE events_id_seq OWNED BY NONE;"
    "ALTER INDEX events_by_stream_time RENAME TO events_unpartitioned_by_stream_time;"
    "ALTER INDEX events_by_time RENAME TO events_unpartitioned_by_time;"
    "CREATE TABLE events ("
    "  id BIGINT NOT NULL DEFAULT nextval('events_id_seq'),"
    "  key TEXT NOT NULL,"
    "  stream_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  track_id BIGINT NOT NULL,"
    "  exercise TEXT NOT NULL,"
    "  timestamp_us BIGINT NOT NULL,"
    "  payload JSONB NOT NULL"
    ") PARTITION BY RANGE (timestamp_us);"
    "ALTER SEQUENCE events_id_seq OWNED BY events.id;"
    "CREATE INDEX events_by_id ON events (id);"
    "CREATE INDEX events_by_stream_time ON events (stream_id, timestamp_us);"
    "CREATE INDEX events_by_time ON events (timestamp_us);"
    "DO $$ DECLARE month TIMESTAMP; BEGIN"
    "  FOR month IN SELECT DISTINCT date_trunc('month', to_timestamp(timestamp_us / 1e6) AT TIME ZONE 'UTC')"
    "               FROM events_unpartitioned LOOP"
    "    EXECUTE format('CREATE TABLE events_p%s PARTITION OF events FOR VALUES FROM (%s) TO (%s)',"
    "                   to_char(month, 'YYYYMM'), (extract(epoch FROM month) * 1000000)::BIGINT,"
    "                   (extract(epoch FROM month + INTERVAL '1 month') * 1000000)::BIGINT);"
    "  END LOOP;"
    "END $$;"
    "INSERT INTO events SELECT * FROM events_unpartitioned;"
    "DROP TABLE events_unpartitioned;",
};

constexpr int64_t kMicrosecondsPerSecond = 1'000'000;

// The UTC month holding `timestamp_us`: its first microsecond, the next month's first, and its partition's name.
struct Month {
  int64_t begin_us = 0;
  int64_t end_us = 0;
  std::string partition;
};

Month month_of(int64_t timestamp_us) {
  using namespace std::chrono;
  const sys_days day = floor<days>(sys_time<microseconds>(microseconds(timestamp_us)));
  const year_month month = year_month_day(day).year() / year_month_day(day).month();
  const auto first_us = [](year_month m) {
    return duration_cast<microseconds>(sys_days(m / 1).time_since_epoch()).count();
  };
  char name[32];
  std::snprintf(name, sizeof name, "events_p%04d%02u", static_cast<int>(month.year()),
                static_cast<unsigned>(month.month()));
  return {first_us(month), first_us(month + months(1)), name};
}

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnectionDeleter {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};

// "postgresql://user:secret@host/db" -> "postgresql://user@host/db": what logs and errors may show.
std::string without_password(const std::string& uri) {
  const size_t scheme = uri.find("://");
  const size_t at = uri.find('@', scheme == std::string::npos ? 0 : scheme + 3);
  if (scheme == std::string::npos || at == std::string::npos) return uri;
  const size_t colon = uri.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return uri;
  return uri.substr(0, colon) + uri.substr(at);
}

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(PostgresOptions options) : options_(std::move(options)) {}

  core::Status connect() {
    connection_.reset(PQconnectdb(options_.uri.c_str()));
    if (!connection_ || PQstatus(connection_.get()) != CONNECTION_OK) {
      const std::string why = connection_ ? PQerrorMessage(connection_.get()) : "out of memory";
      connection_.reset();
      return core::make_error(core::ErrorCode::kUnavailable, describe() + ": cannot connect: " + trim(why));
    }
    PQsetNoticeProcessor(
        connection_.get(), [](void*, const char*) {}, nullptr);  // "relation exists" notices
    return {};
  }

  core::Status migrate() {
    if (auto r = exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                      "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)");
        !r.ok()) {
      return r.error();
    }
    auto version = exec("SELECT version FROM schema_version");
    if (!version) return version.error();
    const int current = std::stoi(PQgetvalue(version->get(), 0, 0));
    if (current > schema_version()) {
      return core::make_error(core::ErrorCode::kUnsupported,
                              describe() + " has schema version " + std::to_string(current) +
                                  ", newer than this build's " + std::to_string(schema_version()));
    }
    for (int next = current; next < schema_version(); ++next) {
      const std::string sql = std::string("BEGIN;") + kMigrations[static_cast<size_t>(next)] +
                              "UPDATE schema_version SET version = " + std::to_string(next + 1) + "; COMMIT;";
      if (auto r = exec(sql); !r.ok()) {
        (void)exec("ROLLBACK");
        return r.error();
      }
    }
    return {};
  }

  core::Status append(std::span<const Record> records) override {
    for (const auto& record : records) {
      if (record.key.empty()) return core::make_error(core::ErrorCode::kInvalidArgument, "a record needs a key");
    }
    if (auto ready = ensure_connected(); !ready.ok()) return ready;
    if (auto kept = apply_retention(); !kept.ok()) return kept;
    if (auto r = exec("BEGIN"); !r.ok()) return r.error();
    const auto fail = [&](const core::Error& error) {
      (void)exec("ROLLBACK");
      partitions_.clear();  // a partition created in the rolled-back transaction is gone again
      return error;
    };
    for (const Record& r : records) {
      if (auto partition = ensure_partition(r.timestamp_us); !partition.ok()) return fail(partition.error());
      const std::string track = std::to_string(r.track_id);
      const std::string time = std::to_string(r.timestamp_us);
      const std::array<const char*, 7> values = {r.key.c_str(),    r.stream_id.c_str(), r.kind.c_str(),
                                                 track.c_str(),    r.exercise.c_str(),  time.c_str(),
                                                 r.payload.c_str()};
      // The key is claimed first: the event goes in only when nobody stored it before.
      auto inserted = exec_params(
          "WITH claimed AS (INSERT INTO event_keys (key, timestamp_us) VALUES ($1, $6::BIGINT) "
          "                 ON CONFLICT (key) DO NOTHING RETURNING key) "
          "INSERT INTO events (key, stream_id, kind, track_id, exercise, timestamp_us, payload) "
          "SELECT $1, $2, $3, $4::BIGINT, $5, $6::BIGINT, $7::JSONB FROM claimed",
          values);
      if (!inserted) return fail(inserted.error());
    }
    if (auto r = exec("COMMIT"); !r.ok()) return fail(r.error());
    return {};
  }

  core::Result<Page> query(const Query& q) override {
    if (q.limit < 1 || q.limit > 1000) {
      return core::make_error(core::ErrorCode::kInvalidArgument, "limit must be between 1 and 1000");
    }
    if (auto ready = ensure_connected(); !ready.ok()) return ready.error();
    std::vector<std::string> values = {std::to_string(q.after_id), std::to_string(q.from_us), std::to_string(q.to_us)};
    std::string sql =
        "SELECT id, key, stream_id, kind, track_id, exercise, timestamp_us, payload::text FROM events "
        "WHERE id > $1 AND timestamp_us >= $2 AND timestamp_us < $3";
    const auto filter = [&](const char* column, const std::string& value) {
      values.push_back(value);
      sql += std::string(" AND ") + column + " = $" + std::to_string(values.size());
    };
    if (!q.stream_id.empty()) filter("stream_id", q.stream_id);
    if (!q.kind.empty()) filter("kind", q.kind);
    if (!q.exercise.empty()) filter("exercise", q.exercise);
    if (q.track_id) filter("track_id", std::to_string(*q.track_id));
    sql += " ORDER BY id LIMIT " + std::to_string(q.limit + 1);
    std::vector<const char*> pointers;
    pointers.reserve(values.size());
    for (const auto& value : values) pointers.push_back(value.c_str());
    auto rows = exec_params(sql.c_str(), pointers);
    if (!rows) return rows.error();
    Page page;
    const int count = PQntuples(rows->get());
    for (int row = 0; row < count; ++row) {
      if (row == q.limit) {
        page.next_after_id = page.records.back().id;
        break;
      }
      const auto text = [&](int column) { return std::string(PQgetvalue(rows->get(), row, column)); };
      StoredRecord stored;
      stored.id = std::stoll(text(0));
      stored.record = {text(1), text(2), text(3), std::stoll(text(4)), text(5), std::stoll(text(6)), text(7)};
      page.records.push_back(std::move(stored));
    }
    return page;
  }

  core::Result<int64_t> count() override {
    if (auto ready = ensure_connected(); !ready.ok()) return ready.error();
    auto rows = exec("SELECT COUNT(*) FROM events");
    if (!rows) return rows.error();
    return std::stoll(PQgetvalue(rows->get(), 0, 0));
  }

  std::string describe() const override { return without_password(options_.uri); }

 private:
  static std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  // A broken connection is replaced on the next call: the server may have restarted.
  core::Status ensure_connected() {
    if (connection_ && PQstatus(connection_.get()) == CONNECTION_OK) return {};
    return connect();
  }

  // The record's month has its partition (created here, in the caller's transaction, the first time).
  core::Status ensure_partition(int64_t timestamp_us) {
    const Month month = month_of(timestamp_us);
    if (partitions_.count(month.begin_us)) return {};
    auto created = exec("CREATE TABLE IF NOT EXISTS " + month.partition + " PARTITION OF events FOR VALUES FROM (" +
                        std::to_string(month.begin_us) + ") TO (" + std::to_string(month.end_us) + ")");
    if (!created) return created.error();
    partitions_.insert(month.begin_us);
    return {};
  }

  // Months wholly older than the retention go, with their keys; checked at most hourly.
  core::Status apply_retention() {
    if (options_.retention_days <= 0) return {};
    const int64_t now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    if (now_us - last_retention_us_ < 3600 * kMicrosecondsPerSecond) return {};
    const int64_t cutoff_us = now_us - int64_t{options_.retention_days} * 86'400 * kMicrosecondsPerSecond;
    auto partitions = exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'");
    if (!partitions) return partitions.error();
    for (int row = 0; row < PQntuples(partitions->get()); ++row) {
      const std::string name = PQgetvalue(partitions->get(), row, 0);
      int year = 0, month = 0;
      if (std::sscanf(name.c_str(), "events_p%4d%2d", &year, &month) != 2) continue;
      using namespace std::chrono;
      const Month partition =
          month_of(duration_cast<microseconds>(
                       sys_days(std::chrono::year(year) / std::chrono::month(static_cast<unsigned>(month)) / 1)
                           .time_since_epoch())
                       .count());
      if (partition.end_us > cutoff_us) continue;
      if (auto dropped = exec("DROP TABLE IF EXISTS " + partition.partition); !dropped) return dropped.error();
      partitions_.erase(partition.begin_us);
    }
    if (auto forgotten = exec("DELETE FROM event_keys WHERE timestamp_us < " + std::to_string(cutoff_us)); !forgotten) {
      return forgotten.error();
    }
    last_retention_us_ = now_us;
    return {};
  }

  core::Result<PgResult> check(PgResult result) {
    const auto status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
    const bool lost = PQstatus(connection_.get()) != CONNECTION_OK;
    const std::string why = trim(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(connection_.get()));
    return core::make_error(lost ? core::ErrorCode::kUnavailable : core::ErrorCode::kInternal,
                            describe() + ": " + (why.empty() ? std::string("the connection was lost") : why));
  }

  core::Result<PgResult> exec(const std::string& sql) {
    if (!connection_) return core::make_error(core::ErrorCode::kUnavailable, describe() + ": not connected");
    return check(PgResult(PQexec(connection_.get(), sql.c_str())));
  }

  core::Result<PgResult> exec_params(const char* sql, std::span<const char* const> values) {
    if (!connection_) return core::make_error(core::ErrorCode::kUnavailable, describe() + ": not connected");
    return check(PgResult(PQexecParams(connection_.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                                       nullptr, nullptr, 0)));
  }

  PostgresOptions options_;
  std::unique_ptr<PGconn, ConnectionDeleter> connection_;
  std::set<int64_t> partitions_;   // months whose partition exists (their first microsecond)
  int64_t last_retention_us_ = 0;  // when apply_retention last ran
};

}  // namespace

core::Result<std::unique_ptr<Store>> open_postgres(const PostgresOptions& options) {
  if (options.uri.empty()) return core::make_error(core::ErrorCode::kInvalidArgument, "the database needs a URI");
  auto store = std::make_unique<PostgresStore>(options);
  if (auto connected = store->connect(); !connected.ok()) return connected.error();
  if (auto migrated = store->migrate(); !migrated.ok()) return migrated.error();
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace store
