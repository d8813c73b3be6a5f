#pragma once
// The pipeline's events as the store keeps them (store::Record), and the store a --db option names.
//
// Keys identify an event by what it is in its stream, never by when it was analysed: stream, person, exercise and
// rep number (and for form issues, which rule and its how-manieth firing in that rep). Frame timing is left out on
// purpose: a file paced in real time drops frames differently each run, which moves a rep's boundaries by a frame
// or two but not its number. So analysing the same file again after a crash stores each event once. A live
// source (camera, network) never shows the same events twice, so its keys also carry the session (when this
// analysis started), or the restarted session's rep 1 would collide with the crashed one's.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "core/result.h"
#include "pose/runtime/json.h"
#include "pose/runtime/runtime.h"
#include "store/store.h"

namespace pose::service {

// Not thread-safe: call it from the pipeline's subscriber (the analysis thread), in event order.
class RecordMaker {
 public:
  // `session`: "" for files (keys repeat across runs, by design), a start time for live sources.
  explicit RecordMaker(std::string session) : session_(std::move(session)) {}
  // Reps, form issues, anomalies and stream status changes; frames are not stored (nullopt). `wall_us`: now, in
  // microseconds since the Unix epoch (the record's time). `json`: how the payload is written (the service adds
  // its event id).
  std::optional<store::Record> operator()(const pose::runtime::Event& event, int64_t wall_us,
                                          const pose::runtime::JsonOptions& json = {});

 private:
  std::string session_;
  std::map<std::tuple<std::string, int64_t, std::string, int>, int> form_firings_;  // stream, person, rule, rep
};

// Cameras ("/dev/video0", "camera:0", "0") and network URLs: sources whose events never repeat.
bool is_live_source(const std::string& uri);

// "postgresql://..." or "postgres://..." (or a libpq "host=... dbname=..." string): PostgreSQL; anything else is
// a SQLite file path.
// `retention_days` (PostgreSQL): months of events wholly older than this are dropped; 0 keeps everything.
core::Result<std::unique_ptr<store::Store>> open_store(const std::string& db, int retention_days = 0);

}  // namespace pose::service
