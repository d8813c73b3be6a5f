// The Writer: batches on its own thread, a durable spool while the store is down, replay in order when it is back.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/store.h"

namespace store {
namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

nlohmann::json to_json(const Record& r) {
  return {{"key", r.key},           {"stream_id", r.stream_id},       {"kind", r.kind},      {"track_id", r.track_id},
          {"exercise", r.exercise}, {"timestamp_us", r.timestamp_us}, {"payload", r.payload}};
}

Record from_json(const nlohmann::json& j) {
  return {j.at("key").get<std::string>(),    j.at("stream_id").get<std::string>(), j.at("kind").get<std::string>(),
          j.at("track_id").get<int64_t>(),   j.at("exercise").get<std::string>(),  j.at("timestamp_us").get<int64_t>(),
          j.at("payload").get<std::string>()};
}

// Records waiting on local disk: one JSON document per line, appended and fsynced a batch at a time. A crash
// mid-append leaves at most a torn last line, which reading skips (its batch was never acknowledged as spooled).
class Spool {
 public:
  explicit Spool(std::filesystem::path path) : path_(std::move(path)) {}

  core::Result<std::vector<Record>> read_all() const {
    std::vector<Record> records;
    std::ifstream in(path_);
    if (!in) return records;  // no spool: nothing waits
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // no newline: a torn last line
      const auto json = nlohmann::json::parse(line, nullptr, false);
      if (json.is_discarded()) {
        return core::make_error(core::ErrorCode::kCorrupt, path_.string() +
                                                               ": a line is not JSON; move the file "
                                                               "aside to start without it");
      }
      try {
        records.push_back(from_json(json));
      } catch (const nlohmann::json::exception& e) {
        return core::make_error(core::ErrorCode::kCorrupt, path_.string() + ": " + e.what());
      }
    }
    return records;
  }

  core::Status append(std::span<const Record> records) {
    std::string text;
    for (const auto& r : records) text += to_json(r).dump() + "\n";
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return io_error("opening");
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0) {
        ::close(fd);
        return io_error("writing");
      }
      done += static_cast<size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) return io_error("syncing");
    return {};
  }

  core::Status clear() {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? core::Status{} : io_error("truncating");
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    return synced ? core::Status{} : io_error("syncing");
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  core::Status io_error(const char* what) const {
    return core::make_error(core::ErrorCode::kIo,
                            std::string(what) + " the spool " + path_.string() + " failed: " + std::strerror(errno));
  }
  std::filesystem::path path_;
};

struct Pending {
  Record record;
  int64_t submitted_us = 0;
};

std::vector<Record> take_records(std::vector<Pending>& batch) {
  std::vector<Record> records;
  records.reserve(batch.size());
  for (auto& p : batch) records.push_back(std::move(p.record));
  return records;
}

}  // namespace

struct Writer::Impl {
  Store& store;
  WriterOptions options;
  Spool spool;

  mutable std::mutex mutex;
  std::condition_variable wake;     // the writer thread: records, a flush or the stop
  std::condition_variable settled;  // flush(): records reached the store or the spool
  std::deque<Pending> queue;
  int64_t spool_records = 0;
  int64_t spool_since_us = 0;  // when the oldest spooled record was submitted
  int64_t settled_count = 0;   // submitted records now in the store or in the spool
  bool flush_requested = false;
  bool stopping = false;
  WriterStats stats;
  std::thread thread;

  Impl(Store& s, WriterOptions o) : store(s), options(std::move(o)), spool(options.spool_dir / "spool.jsonl") {}

  // With the lock released: write a batch, or spool it when the store is down. Returns whether the store took it.
  bool write_or_spool(std::vector<Pending>& batch) {
    std::vector<Record> records = take_records(batch);
    const auto written = store.append(records);
    std::unique_lock<std::mutex> lock(mutex);
    if (written.ok()) {
      stats.written += static_cast<int64_t>(records.size());
      stats.store_up = true;
    } else {
      ++stats.failures;
      stats.store_up = false;
      lock.unlock();
      options.logger.warn("store ", store.describe(), " refused ", records.size(), " records (",
                          written.error().message, "); spooling to ", spool.path().string());
      const auto spooled = spool.append(records);
      lock.lock();
      if (!spooled.ok()) {
        // Neither the store nor the disk takes them: keep them in memory, at the front, and try again later.
        options.logger.error(spooled.error().message);
        for (size_t i = batch.size(); i-- > 0;) {
          batch[i].record = std::move(records[i]);
          queue.push_front(std::move(batch[i]));
        }
        return false;
      }
      if (spool_records == 0) spool_since_us = batch.front().submitted_us;
      spool_records += static_cast<int64_t>(records.size());
      stats.spooled += static_cast<int64_t>(records.size());
    }
    settled_count += static_cast<int64_t>(records.size());
    settled.notify_all();
    return written.ok();
  }

  // With the lock released: the spool into the store, in order, a batch per transaction; cleared when all of it
  // is in. A failure leaves the spool whole (what went in already is skipped by key next time).
  bool replay() {
    auto records = spool.read_all();
    if (!records) {
      options.logger.error(records.error().message);
      return false;
    }
    for (size_t begin = 0; begin < records->size(); begin += options.max_batch) {
      const size_t end = std::min(records->size(), begin + options.max_batch);
      if (!store.append(std::span<const Record>(records->data() + begin, end - begin)).ok()) {
        std::lock_guard<std::mutex> lock(mutex);
        ++stats.failures;
        stats.store_up = false;
        return false;
      }
    }
    if (auto cleared = spool.clear(); !cleared.ok()) {
      options.logger.error(cleared.error().message);
      return false;
    }
    std::lock_guard<std::mutex> lock(mutex);
    stats.replayed += static_cast<int64_t>(records->size());
    stats.store_up = true;
    spool_records = 0;
    options.logger.info("replayed ", records->size(), " spooled records into ", store.describe());
    return true;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    int64_t next_retry_us = 0;
    while (true) {
      const auto interval = std::chrono::microseconds(options.flush_interval_us);
      wake.wait_for(lock, interval, [&] {
        return stopping || flush_requested || queue.size() >= options.max_batch || spool_records > 0;
      });
      if (spool_records > 0) {
        // Order: nothing new goes to the store before the spool is in it.
        if (now_us() >= next_retry_us) {
          lock.unlock();
          const bool back = replay();
          lock.lock();
          if (!back) next_retry_us = now_us() + options.retry_interval_us;
        }
        if (spool_records > 0) {
          // Still down: what waits in memory joins the spool, behind it.
          if (!queue.empty()) {
            std::vector<Pending> batch(std::make_move_iterator(queue.begin()), std::make_move_iterator(queue.end()));
            queue.clear();
            lock.unlock();
            const std::vector<Record> records = take_records(batch);
            const auto spooled = std::make_pair(spool.append(records), records.size());
            lock.lock();
            if (spooled.first.ok()) {
              spool_records += static_cast<int64_t>(spooled.second);
              stats.spooled += static_cast<int64_t>(spooled.second);
              settled_count += static_cast<int64_t>(spooled.second);
              settled.notify_all();
            } else {
              options.logger.error(spooled.first.error().message);
            }
          }
          flush_requested = false;
          if (stopping) break;
          wake.wait_for(lock, std::chrono::microseconds(options.retry_interval_us), [&] { return stopping; });
          continue;
        }
      }
      if (queue.empty()) {
        flush_requested = false;
        if (stopping) break;
        continue;
      }
      std::vector<Pending> batch;
      while (!queue.empty() && batch.size() < options.max_batch) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      lock.unlock();
      const bool written = write_or_spool(batch);
      lock.lock();
      if (!written && spool_records == 0 && !stopping) {
        // Neither the store nor the spool took the batch: it waits in memory; try again later.
        wake.wait_for(lock, std::chrono::microseconds(options.retry_interval_us), [&] { return stopping; });
      }
    }
  }
};

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Writer::~Writer() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
}

core::Result<std::unique_ptr<Writer>> Writer::create(Store& store, const WriterOptions& options) {
  if (options.spool_dir.empty())
    return core::make_error(core::ErrorCode::kInvalidArgument, "the writer needs a spool folder");
  if (options.max_batch == 0) return core::make_error(core::ErrorCode::kInvalidArgument, "max_batch must be positive");
  std::error_code ec;
  std::filesystem::create_directories(options.spool_dir, ec);
  if (ec) {
    return core::make_error(core::ErrorCode::kIo,
                            "cannot create the spool folder " + options.spool_dir.string() + ": " + ec.message());
  }
  auto impl = std::make_unique<Impl>(store, options);
  auto waiting = impl->spool.read_all();
  if (!waiting) return waiting.error();
  impl->spool_records = static_cast<int64_t>(waiting->size());
  impl->spool_since_us = now_us();
  impl->thread = std::thread([raw = impl.get()] { raw->run(); });
  return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

void Writer::submit(Record record) {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  ++impl_->stats.submitted;
  if (impl_->queue.size() >= impl_->options.queue_records) {
    // Memory is full (the store has been down a long time): straight to disk, in the caller's thread.
    const Record one[] = {std::move(record)};
    const auto spooled = impl_->spool.append(one);
    if (spooled.ok()) {
      if (impl_->spool_records == 0) impl_->spool_since_us = now_us();
      ++impl_->spool_records;
      ++impl_->stats.spooled;
      ++impl_->settled_count;
      impl_->settled.notify_all();
    } else {
      impl_->options.logger.error("record ", one[0].key, " lost: ", spooled.error().message);
    }
    return;
  }
  impl_->queue.push_back({std::move(record), now_us()});
  if (impl_->queue.size() >= impl_->options.max_batch) impl_->wake.notify_all();
}

void Writer::flush() {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  const int64_t target = impl_->stats.submitted;
  impl_->flush_requested = true;
  impl_->wake.notify_all();
  impl_->settled.wait(lock, [&] { return impl_->settled_count >= target; });
}

WriterStats Writer::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  WriterStats stats = impl_->stats;
  stats.queued = static_cast<int64_t>(impl_->queue.size());
  stats.spool_records = impl_->spool_records;
  const int64_t oldest = impl_->spool_records > 0 ? impl_->spool_since_us
                         : impl_->queue.empty()   ? 0
                                                  : impl_->queue.front().submitted_us;
  stats.write_lag_us = oldest > 0 ? now_us() - oldest : 0;
  return stats;
}

}  // namespace store
