#pragma once
// Where the pose service keeps what happened: every rep, form issue, anomaly and stream status change, as records
// with an idempotency key. Behind one interface (Store) sit SQLite, the embedded default (a file in the data
// directory, WAL), and PostgreSQL for deployments that share one database; versioned migrations bring an older
// schema up to date when it opens.
//
// Writes never happen on the frame path: a Writer batches records on its own thread. When the store cannot take
// them (database down, disk full) the batch goes to a spool on local disk, fsynced, and is replayed in order once
// the store takes writes again, also after a restart. Keys make every write idempotent, so a replay (or a stream
// analysed again after a crash) never duplicates a record.
//
// Thread-safety: a Store is used by one thread at a time (the Writer's, or a reader's own Store opened on the same
// file). Writer::submit, flush and stats may be called from any thread.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/result.h"

namespace store {

// One event as stored. The key identifies the event itself, not the write: the same rep analysed twice gets the
// same key ("s1/rep/3/7": stream s1, track 3, rep 7), and a second write of it is a no-op.
struct Record {
  std::string key;
  std::string stream_id;
  std::string kind;       // "rep", "form", "anomaly", "status"
  int64_t track_id = -1;  // the person; -1 when none (a stream's status)
  std::string exercise;
  int64_t timestamp_us = 0;  // when it happened, microseconds since the Unix epoch
  std::string payload;       // the event as a JSON document
};

struct StoredRecord {
  int64_t id = 0;  // the store's own sequence: increasing in the order records were first written
  Record record;
};

// Filters combine with AND; empty strings and absent values match everything. Pages follow `id` upwards.
struct Query {
  std::string stream_id;
  std::string kind;
  std::string exercise;
  std::optional<int64_t> track_id;
  int64_t from_us = std::numeric_limits<int64_t>::min();  // timestamp_us >= from_us
  int64_t to_us = std::numeric_limits<int64_t>::max();    // timestamp_us < to_us
  int64_t after_id = 0;                                   // the previous page's next_after_id
  int limit = 100;                                        // 1..1000
};

struct Page {
  std::vector<StoredRecord> records;
  int64_t next_after_id = 0;  // 0: this was the last page
};

class Store {
 public:
  virtual ~Store() = default;
  // All or nothing, in one transaction; records whose key is stored already are skipped. kUnavailable when the
  // store cannot take writes now (the Writer spools and retries), kInvalidArgument for a record without a key.
  [[nodiscard]] virtual core::Status append(std::span<const Record> records) = 0;
  [[nodiscard]] virtual core::Result<Page> query(const Query& query) = 0;
  [[nodiscard]] virtual core::Result<int64_t> count() = 0;
  virtual std::string describe() const = 0;  // "sqlite:/var/lib/pose/pose.db", never a password
};

struct SqliteOptions {
  std::filesystem::path path;  // created with its folder when missing
  int busy_timeout_ms = 5000;  // how long a write waits for another connection's lock
};

// Opens (or creates) the database and applies the migrations it lacks. kCorrupt for a file that is not a
// database; kUnavailable when it cannot be opened or written; kUnsupported for a schema newer than this build's.
core::Result<std::unique_ptr<Store>> open_sqlite(const SqliteOptions& options);

struct PostgresOptions {
  // libpq's connection string or URI: "postgresql://pose@db.local/pose", "host=/run/postgresql dbname=pose". A
  // password in it is never logged or returned (describe() drops it).
  std::string uri;
  // Events are kept in one partition per month; a month wholly older than this many days is dropped, with its
  // keys (0: keep everything). Checked when writing, at most hourly.
  int retention_days = 0;
};

// Connects and applies the migrations the database lacks. kUnavailable when the server cannot be reached (the
// message says why, without the password); kUnsupported for a schema newer than this build's. A connection lost
// later is re-established by the next call, so the Writer's retries bring a restarted server back.
core::Result<std::unique_ptr<Store>> open_postgres(const PostgresOptions& options);

// The schema version this build writes (the number of migrations), the same for every store.
int schema_version();

struct WriterOptions {
  std::filesystem::path spool_dir;        // where batches wait while the store is down; created when missing
  size_t max_batch = 256;                 // records per transaction
  int64_t flush_interval_us = 200'000;    // a partial batch waits at most this long
  size_t queue_records = 100'000;         // in memory; beyond it submit() spools directly (slower, still durable)
  int64_t retry_interval_us = 1'000'000;  // how often a down store is tried again
  core::Logger logger;
};

struct WriterStats {
  int64_t submitted = 0;
  int64_t written = 0;        // accepted by the store (duplicates included: they are no-ops there)
  int64_t spooled = 0;        // went to the spool at least once
  int64_t replayed = 0;       // came back from the spool into the store
  int64_t spool_records = 0;  // waiting in the spool now
  int64_t queued = 0;         // waiting in memory now
  int64_t failures = 0;       // store writes that failed
  int64_t write_lag_us = 0;   // age of the oldest record not yet in the store (0 when none)
  bool store_up = true;
};

class Writer {
 public:
  // Replays a spool left by an earlier run (in order) before anything new. Fails when the spool folder cannot be
  // created or its file is unreadable.
  static core::Result<std::unique_ptr<Writer>> create(Store& store, const WriterOptions& options);
  ~Writer();  // writes or spools everything submitted, then stops
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Never blocks on the store: the record joins the queue (or, when the queue is full, the spool).
  void submit(Record record);
  // Returns once everything submitted before the call is in the store or durably in the spool.
  void flush();
  WriterStats stats() const;

 private:
  struct Impl;
  explicit Writer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace store
