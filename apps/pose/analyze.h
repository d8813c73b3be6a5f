#pragma once
// The pose CLI's commands that run the analysis pipeline, and what they share with the rest of the CLI.

#include "core/config/config.h"
#include "pose/engine/engine.h"
#include "pose/runtime/runtime.h"

namespace pose_cli {

// --model, --device, --precision, --max-people, --min-score, --models-dir.
pose::engine::EstimatorOptions estimator_options(const core::config::Config& config);

// The pipeline's options from --model, --device, --max-batch, --threads, --exercises-dir... (also loads the exercises).
core::Result<pose::runtime::PipelineOptions> pipeline_options(const core::config::Config& config);

// pose serve: the service until SIGINT or SIGTERM (serve.cpp).
int serve(const core::config::Config& config);

// pose analyze SOURCE... : every source through the pipeline; summary, events, annotated video.
int analyze(const core::config::Config& config);
// pose bench-streams --streams N --source FILE : N paced copies of a file at once; fps, drops, latency as JSON.
int bench_streams(const core::config::Config& config);
// pose events --db DB [--stream ID] [--kind rep|form|anomaly|status] [--exercise NAME]: stored events as JSON lines.
int events(const core::config::Config& config);

}  // namespace pose_cli
