#pragma once
// The pipeline's events and summaries as JSON: the stable, documented schema (docs/api.md) that `pose analyze`
// writes (--events JSONL, --json summary) and that the service streams. One place, so every consumer agrees.

#include <string>
#include <vector>

#include "pose/runtime/runtime.h"

namespace pose::runtime {

struct JsonOptions {
  bool keypoints = true;  // frame events carry every person's keypoints
  int64_t event_id = 0;   // > 0: written as "id" (the service numbers rep, form, anomaly and status events)
};

// One line of JSON (no newline) with "type": "frame" | "rep" | "form" | "anomaly" | "status" and "stream".
std::string event_json(const Event& event, const JsonOptions& options = {});

struct StreamSummary {
  std::string stream_id;
  std::string source;  // redacted uri
  std::string exercise;
  StreamStats stats;
  std::string error;  // why the stream failed, "" otherwise
  double media_duration_s = 0;
  std::vector<analysis::PersonSummary> people;
};

// {"schema": "pose-analyze/1", "model": ..., "streams": [...]}, pretty-printed.
std::string summary_json(const std::string& model, const std::vector<StreamSummary>& streams);

}  // namespace pose::runtime
