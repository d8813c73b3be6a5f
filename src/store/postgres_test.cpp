// The PostgreSQL store against a real server that the test starts in a temporary folder (Debian's postgresql-15;
// as root it runs as the postgres user, which PostgreSQL requires): idempotent appends, filtered pages, the
// password kept out of messages, and the server stopped and started again under a running Writer — nothing lost,
// nothing duplicated.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "store/store.h"
#include "store/test_support/postgres_server.h"

namespace store {
namespace {

using Clock = std::chrono::steady_clock;
using Server = test_support::PostgresServer;
using test_support::kPostgresBin;

Record rep(int index) {
  Record r;
  r.key = "s1/rep/1/" + std::to_string(index);
  r.stream_id = "s1";
  r.kind = "rep";
  r.track_id = 1;
  r.exercise = index % 2 ? "squat" : "pushup";
  r.timestamp_us = 1000 * int64_t{index};
  r.payload = R"({"rep_index": )" + std::to_string(index) + "}";
  return r;
}

int64_t count_of(Store& store) {
  auto n = store.count();
  return n.ok() ? *n : -1;
}

TEST(PostgresStore, AppendsOnceQueriesAndKeepsThePasswordOut) {
  Server server;
  if (!std::filesystem::exists(kPostgresBin / "initdb"))
    GTEST_SKIP() << "PostgreSQL 15 is not installed (postgresql-15)";
  ASSERT_TRUE(server.ok()) << "the test server did not start";
  auto store = open_postgres({server.uri()});
  ASSERT_TRUE(store.ok()) << store.error().message;
  std::vector<Record> records;
  records.reserve(30);
  for (int i = 0; i < 30; ++i) records.push_back(rep(i));
  ASSERT_TRUE((*store)->append(records).ok());
  ASSERT_TRUE((*store)->append(records).ok());
  EXPECT_EQ(count_of(**store), 30);
  Query q;
  q.exercise = "squat";
  q.limit = 10;
  const auto first = (*store)->query(q).value();
  ASSERT_EQ(first.records.size(), 10u);
  EXPECT_EQ(first.records[0].record.key, "s1/rep/1/1");
  EXPECT_EQ(first.records[0].record.payload, R"({"rep_index": 1})");
  q.after_id = first.next_after_id;
  const auto second = (*store)->query(q).value();
  EXPECT_EQ(second.records.size(), 5u);
  EXPECT_EQ(second.next_after_id, 0);
  // Reopening finds the schema current.
  EXPECT_TRUE(open_postgres({server.uri()}).ok());

  // The right user with a password, at a server that is not there: the message must not show the password.
  const std::string with_password = server.uri("hunter2");
  const auto refused = open_postgres({with_password.substr(0, with_password.find('?')) + "?host=/nonexistent&port=1"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, core::ErrorCode::kUnavailable);
  EXPECT_EQ(refused.error().message.find("hunter2"), std::string::npos) << refused.error().message;
}

TEST(PostgresStore, ServerRestartedUnderARunningWriterLosesAndDuplicatesNothing) {
  Server server;
  if (!std::filesystem::exists(kPostgresBin / "initdb"))
    GTEST_SKIP() << "PostgreSQL 15 is not installed (postgresql-15)";
  ASSERT_TRUE(server.ok()) << "the test server did not start";
  auto store = open_postgres({server.uri()});
  ASSERT_TRUE(store.ok()) << store.error().message;
  const auto spool = std::filesystem::temp_directory_path() / ("pg_spool_" + std::to_string(getpid()));
  std::filesystem::remove_all(spool);
  WriterOptions options;
  options.spool_dir = spool;
  options.flush_interval_us = 10'000;
  options.retry_interval_us = 50'000;
  auto writer = Writer::create(**store, options).value();
  for (int i = 0; i < 200; ++i) writer->submit(rep(i));
  writer->flush();
  server.stop();
  for (int i = 200; i < 500; ++i) writer->submit(rep(i));
  writer->flush();  // into the spool: the server is down
  EXPECT_FALSE(writer->stats().store_up);
  EXPECT_GT(writer->stats().spool_records, 0);
  ASSERT_TRUE(server.start());
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (writer->stats().spool_records > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling the writer's progress, not a sync
  }
  ASSERT_EQ(writer->stats().spool_records, 0);
  for (int i = 500; i < 520; ++i) writer->submit(rep(i));
  writer.reset();
  EXPECT_EQ(count_of(**store), 520);
  Query q;
  q.limit = 1000;
  const auto page = (*store)->query(q).value();
  ASSERT_EQ(page.records.size(), 520u);
  for (int i = 0; i < 520; ++i) EXPECT_EQ(page.records[static_cast<size_t>(i)].record.key, rep(i).key);
  std::filesystem::remove_all(spool);
}

// Microseconds since the epoch of a UTC date at noon.
int64_t noon_us(int year, unsigned month, unsigned day) {
  using namespace std::chrono;
  const sys_days date = std::chrono::year(year) / std::chrono::month(month) / std::chrono::day(day);
  return duration_cast<microseconds>((date + hours(12)).time_since_epoch()).count();
}

Record at(const std::string& key, int64_t timestamp_us) {
  Record r = rep(0);
  r.key = key;
  r.timestamp_us = timestamp_us;
  return r;
}

std::string partitions(const Server& server) {
  return server.sql(
      "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = "
      "i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'");
}

TEST(PostgresStore, PartitionsByMonthAndDropsMonthsPastTheRetention) {
  Server server;
  if (!std::filesystem::exists(kPostgresBin / "initdb")) GTEST_SKIP() << "PostgreSQL 15 is not installed";
  ASSERT_TRUE(server.ok()) << "the test server did not start";
  const int64_t now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const std::vector<Record> records = {at("old/1", noon_us(2020, 1, 15)), at("old/2", noon_us(2020, 2, 15)),
                                       at("old/3", noon_us(2020, 2, 16)), at("new/1", now_us)};
  {
    auto store = open_postgres({server.uri()}).value();
    ASSERT_TRUE(store->append(records).ok());
    ASSERT_TRUE(store->append(records).ok()) << "the same events again, across months";
    EXPECT_EQ(count_of(*store), 4);
    Query february;
    february.from_us = noon_us(2020, 2, 1);
    february.to_us = noon_us(2020, 3, 1);
    EXPECT_EQ(store->query(february).value().records.size(), 2u);
  }
  const std::string before = partitions(server);
  EXPECT_NE(before.find("events_p202001,events_p202002,events_p20"), std::string::npos) << before;

  // A year's retention: 2020 goes, with its keys, at the next write.
  auto store = open_postgres({server.uri(), 365}).value();
  ASSERT_TRUE(store->append(std::vector<Record>{at("new/2", now_us)}).ok());
  EXPECT_EQ(count_of(*store), 2);
  EXPECT_EQ(partitions(server).find("events_p2020"), std::string::npos) << partitions(server);
  EXPECT_EQ(server.sql("SELECT count(*) FROM event_keys WHERE key LIKE 'old/%'"), "0");
}

// A database written by the first schema (one unpartitioned table) is brought up to date: events, their ids and
// keys kept, and new ids carry on after the old ones.
TEST(PostgresStore, MigratesAFirstSchemaDatabaseKeepingIdsAndKeys) {
  Server server;
  if (!std::filesystem::exists(kPostgresBin / "initdb")) GTEST_SKIP() << "PostgreSQL 15 is not installed";
  ASSERT_TRUE(server.ok()) << "the test server did not start";
  const std::string first_schema =
      "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
      "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE, stream_id TEXT NOT NULL,"
      " kind TEXT NOT NULL, track_id BIGINT NOT NULL, exercise TEXT NOT NULL, timestamp_us BIGINT NOT NULL,"
      " payload JSONB NOT NULL);"
      "CREATE INDEX events_by_stream_time ON events (stream_id, timestamp_us);"
      "CREATE INDEX events_by_time ON events (timestamp_us);"
      "INSERT INTO events (key, stream_id, kind, track_id, exercise, timestamp_us, payload) VALUES"
      " ('a', 's1', 'rep', 1, 'squat', " +
      std::to_string(noon_us(2026, 10, 1)) + ", '{}'), ('b', 's1', 'rep', 1, 'squat', " +
      std::to_string(noon_us(2026, 11, 1)) + ", '{}'), ('c', 's1', 'rep', 1, 'squat', " +
      std::to_string(noon_us(2026, 11, 2)) + ", '{}');";
  ASSERT_EQ(server.sql(first_schema), "");
  ASSERT_EQ(server.sql("SELECT count(*) FROM events"), "3");

  auto store = open_postgres({server.uri()});
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(server.sql("SELECT version FROM schema_version"), std::to_string(schema_version()));
  EXPECT_EQ(partitions(server), "events_p202610,events_p202611");
  ASSERT_TRUE(
      (*store)->append(std::vector<Record>{at("b", noon_us(2026, 11, 27)), at("d", noon_us(2026, 11, 27))}).ok());
  Query all;
  const auto page = (*store)->query(all).value();
  ASSERT_EQ(page.records.size(), 4u) << "b was stored before the migration: not again";
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(page.records[static_cast<size_t>(i)].id, i + 1);
    EXPECT_EQ(page.records[static_cast<size_t>(i)].record.key, std::string(1, static_cast<char>('a' + i)));
  }
}

}  // namespace
}  // namespace store
