#include "pose/service/records.h"

#include "pose/runtime/json.h"

namespace pose::service {

std::optional<store::Record> RecordMaker::operator()(const pose::runtime::Event& event, int64_t wall_us,
                                                     const pose::runtime::JsonOptions& json) {
  using pose::runtime::AnalysisEvent;
  using pose::runtime::StreamStatusEvent;
  store::Record record;
  record.timestamp_us = wall_us;
  const std::string session = session_.empty() ? "" : "@" + session_;
  if (const auto* status = std::get_if<StreamStatusEvent>(&event)) {
    // A status change happens once per run: its own time keeps runs apart.
    record.stream_id = status->stream_id;
    record.kind = "status";
    record.key = status->stream_id + "/status/" + pose::runtime::to_string(status->state) + "/" +
                 std::to_string(status->timestamp_us);
  } else if (const auto* analysis = std::get_if<AnalysisEvent>(&event)) {
    const std::string stream = analysis->stream_id + session;
    record.stream_id = analysis->stream_id;
    std::visit(
        [&](const auto& e) {
          using T = std::decay_t<decltype(e)>;
          record.track_id = e.track_id;
          record.exercise = e.exercise;
          const std::string person = std::to_string(e.track_id);
          if constexpr (std::is_same_v<T, pose::analysis::RepEvent>) {
            record.kind = "rep";
            record.key = stream + "/rep/" + person + "/" + e.exercise + "/" + std::to_string(e.rep_index);
          } else if constexpr (std::is_same_v<T, pose::analysis::FormEvent>) {
            record.kind = "form";
            const int firing = ++form_firings_[{analysis->stream_id, e.track_id, e.rule, e.rep_index}];
            record.key = stream + "/form/" + person + "/" + e.rule + "/" + std::to_string(e.rep_index) + "/" +
                         std::to_string(firing);
          } else {
            record.kind = "anomaly";
            record.key = stream + "/anomaly/" + person + "/" + e.exercise + "/" + std::to_string(e.rep_index);
          }
        },
        analysis->event);
  } else {
    return std::nullopt;  // frames
  }
  record.payload = pose::runtime::event_json(event, json);
  return record;
}

bool is_live_source(const std::string& uri) {
  const bool digits = !uri.empty() && uri.find_first_not_of("0123456789") == std::string::npos;
  return digits || uri.rfind("/dev/video", 0) == 0 || uri.rfind("camera:", 0) == 0 ||
         uri.find("://") != std::string::npos;
}

core::Result<std::unique_ptr<store::Store>> open_store(const std::string& db, int retention_days) {
  const bool postgres =
      db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0 || db.find("dbname=") != std::string::npos;
  if (postgres) {
#ifdef WB_HAVE_POSTGRES
    return store::open_postgres({db, retention_days});
#else
    (void)retention_days;
    return core::make_error(core::ErrorCode::kUnsupported, "this build has no PostgreSQL client (libpq-dev)");
#endif
  }
  return store::open_sqlite({db});
}

}  // namespace pose::service
