// The SQLite store and the Writer against a real database file: idempotent appends, filtered and paged queries,
// migrations, bad files; batching, the spool while the store is down and its replay in order (also across a
// restart), and a process killed with SIGKILL mid-stream losing nothing it had flushed and duplicating nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "core/test_support/temp_dir.h"
#include "store/store.h"

namespace store {
namespace {

using Clock = std::chrono::steady_clock;
using core::test_support::TempDir;

Record rep(const std::string& stream, int64_t track, int index, int64_t timestamp_us) {
  Record r;
  r.key = stream + "/rep/" + std::to_string(track) + "/" + std::to_string(index);
  r.stream_id = stream;
  r.kind = "rep";
  r.track_id = track;
  r.exercise = "squat";
  r.timestamp_us = timestamp_us;
  r.payload = R"({"rep_index": )" + std::to_string(index) + "}";
  return r;
}

std::unique_ptr<Store> open(const std::filesystem::path& path) {
  auto store = open_sqlite({path});
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::move(store.value()) : nullptr;
}

std::vector<std::string> all_keys(Store& store) {
  std::vector<std::string> keys;
  Query q;
  q.limit = 1000;
  while (true) {
    auto page = store.query(q);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) break;
    for (const auto& r : page->records) keys.push_back(r.record.key);
    if (page->next_after_id == 0) break;
    q.after_id = page->next_after_id;
  }
  return keys;
}

TEST(SqliteStore, AppendsOnceByKeyAndQueriesByFilterAndPage) {
  TempDir dir("store_test");
  auto store = open(dir.path() / "data" / "events.db");
  ASSERT_TRUE(store);
  std::vector<Record> records;
  for (int i = 1; i <= 25; ++i) records.push_back(rep(i % 2 ? "s1" : "s2", i % 3, i, int64_t{1000} * i));
  ASSERT_TRUE(store->append(records).ok());
  ASSERT_TRUE(store->append(records).ok());  // the same events again: no-ops
  EXPECT_EQ(store->count().value(), 25);

  Query q;
  q.stream_id = "s1";
  q.track_id = 1;
  q.from_us = 5000;
  q.to_us = 20000;
  const auto page = store->query(q).value();
  // s1 is odd i, track 1 is i % 3 == 1: i in {7, 13, 19} within [5000, 20000).
  ASSERT_EQ(page.records.size(), 3u);
  EXPECT_EQ(page.records[0].record.key, "s1/rep/1/7");
  EXPECT_EQ(page.records[2].record.payload, R"({"rep_index": 19})");
  EXPECT_EQ(page.next_after_id, 0);

  Query paged;
  paged.limit = 10;
  std::vector<int64_t> ids;
  while (true) {
    const auto p = store->query(paged).value();
    for (const auto& r : p.records) ids.push_back(r.id);
    if (p.next_after_id == 0) break;
    paged.after_id = p.next_after_id;
  }
  ASSERT_EQ(ids.size(), 25u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());

  Query bad;
  bad.limit = 0;
  EXPECT_EQ(store->query(bad).error().code, core::ErrorCode::kInvalidArgument);
  Record keyless = rep("s1", 1, 99, 1);
  keyless.key.clear();
  EXPECT_EQ(store->append(std::span<const Record>(&keyless, 1)).error().code, core::ErrorCode::kInvalidArgument);
}

TEST(SqliteStore, ReopensMigratedAndRefusesWhatItCannotUse) {
  TempDir dir("store_test");
  const auto path = dir.path() / "events.db";
  {
    auto store = open(path);
    ASSERT_TRUE(store);
    const Record r = rep("s1", 1, 1, 1);
    ASSERT_TRUE(store->append(std::span<const Record>(&r, 1)).ok());
  }
  auto reopened = open(path);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->count().value(), 1);
  reopened.reset();

  // A schema from a newer build.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  const auto newer = open_sqlite({path});
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, core::ErrorCode::kUnsupported);
  EXPECT_NE(newer.error().message.find("99"), std::string::npos) << newer.error().message;

  // Not a database at all.
  const auto junk = dir.path() / "junk.db";
  std::ofstream(junk) << std::string(4096, 'x');
  const auto corrupt = open_sqlite({junk});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().code, core::ErrorCode::kCorrupt) << corrupt.error().message;
}

// The real store behind a switch: while down, every write fails as a database that cannot be reached does.
class Switchable final : public Store {
 public:
  explicit Switchable(std::unique_ptr<Store> real) : real_(std::move(real)) {}
  std::atomic<bool> down{false};
  core::Status append(std::span<const Record> records) override {
    if (down) return core::make_error(core::ErrorCode::kUnavailable, "the database is down (test)");
    return real_->append(records);
  }
  core::Result<Page> query(const Query& q) override { return real_->query(q); }
  core::Result<int64_t> count() override { return real_->count(); }
  std::string describe() const override { return real_->describe(); }

 private:
  std::unique_ptr<Store> real_;
};

WriterOptions fast(const std::filesystem::path& spool) {
  WriterOptions options;
  options.spool_dir = spool;
  options.max_batch = 64;
  options.flush_interval_us = 10'000;
  options.retry_interval_us = 20'000;
  return options;
}

// Polls a condition the writer's own thread brings about, up to a deadline (the writer offers no event for it).
template <typename Condition>
bool eventually(Condition condition) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(Writer, BatchesIntoTheStore) {
  TempDir dir("store_test");
  auto store = open(dir.path() / "events.db");
  ASSERT_TRUE(store);
  auto writer = Writer::create(*store, fast(dir.path() / "spool")).value();
  for (int i = 0; i < 1000; ++i) writer->submit(rep("s1", 1, i, i));
  writer->flush();
  EXPECT_EQ(store->count().value(), 1000);
  const auto stats = writer->stats();
  EXPECT_EQ(stats.submitted, 1000);
  EXPECT_EQ(stats.written, 1000);
  EXPECT_EQ(stats.spooled, 0);
  EXPECT_EQ(stats.write_lag_us, 0);
}

TEST(Writer, SpoolsWhileTheStoreIsDownAndReplaysInOrder) {
  TempDir dir("store_test");
  Switchable store(open(dir.path() / "events.db"));
  auto writer = Writer::create(store, fast(dir.path() / "spool")).value();
  for (int i = 0; i < 100; ++i) writer->submit(rep("s1", 1, i, i));
  writer->flush();
  store.down = true;
  for (int i = 100; i < 400; ++i) writer->submit(rep("s1", 1, i, i));
  writer->flush();  // everything is in the store or on disk now
  auto stats = writer->stats();
  EXPECT_FALSE(stats.store_up);
  EXPECT_EQ(stats.spool_records, 300);
  EXPECT_GT(stats.write_lag_us, 0);
  EXPECT_EQ(store.count().value(), 100);

  store.down = false;
  ASSERT_TRUE(eventually([&] { return writer->stats().spool_records == 0; }));
  for (int i = 400; i < 450; ++i) writer->submit(rep("s1", 1, i, i));
  writer->flush();
  const auto keys = all_keys(store);
  ASSERT_EQ(keys.size(), 450u);
  for (int i = 0; i < 450; ++i) ASSERT_EQ(keys[static_cast<size_t>(i)], "s1/rep/1/" + std::to_string(i));
  stats = writer->stats();
  EXPECT_TRUE(stats.store_up);
  EXPECT_EQ(stats.replayed, 300);
  EXPECT_GE(stats.failures, 1);
}

TEST(Writer, TheSpoolOutlivesTheProcessAndReplaysWithoutDuplicates) {
  TempDir dir("store_test");
  Switchable store(open(dir.path() / "events.db"));
  store.down = true;
  {
    auto writer = Writer::create(store, fast(dir.path() / "spool")).value();
    for (int i = 0; i < 200; ++i) writer->submit(rep("s1", 1, i, i));
  }  // stopped while the store is down: all 200 wait on disk
  EXPECT_EQ(store.count().value(), 0);
  // Half of them reached the store some other way (a replay interrupted before the spool was cleared).
  store.down = false;
  std::vector<Record> half;
  half.reserve(100);
  for (int i = 0; i < 100; ++i) half.push_back(rep("s1", 1, i, i));
  ASSERT_TRUE(store.append(half).ok());
  auto writer = Writer::create(store, fast(dir.path() / "spool")).value();
  ASSERT_TRUE(eventually([&] { return writer->stats().spool_records == 0; }));
  EXPECT_EQ(store.count().value(), 200);
  EXPECT_EQ(writer->stats().replayed, 200);
}

// A process writing events is killed with SIGKILL after its third flush. Everything it flushed is stored, once;
// analysing the stream again after the restart (the same events, the same keys) stores each event exactly once.
TEST(Writer, KillDashNineLosesNothingFlushedAndTheRestartDuplicatesNothing) {
  TempDir dir("store_test");
  const auto db = dir.path() / "events.db";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = open_sqlite({db});
    if (!store.ok()) _exit(3);
    auto writer = Writer::create(**store, fast(dir.path() / "spool"));
    if (!writer.ok()) _exit(4);
    for (int i = 0; i < 500; ++i) {
      (*writer)->submit(rep("s1", 1, i, i));
      if (i % 100 == 99) (*writer)->flush();
      if (i == 349) raise(SIGKILL);  // mid-stream: 300 flushed, 50 more submitted
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

  auto store = open(db);
  ASSERT_TRUE(store);
  auto keys = all_keys(*store);
  ASSERT_GE(keys.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(keys[static_cast<size_t>(i)], "s1/rep/1/" + std::to_string(i));
  // The restart: the stream is analysed again and every event submitted again.
  {
    auto writer = Writer::create(*store, fast(dir.path() / "spool")).value();
    for (int i = 0; i < 500; ++i) writer->submit(rep("s1", 1, i, i));
  }
  keys = all_keys(*store);
  ASSERT_EQ(keys.size(), 500u);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

}  // namespace
}  // namespace store
