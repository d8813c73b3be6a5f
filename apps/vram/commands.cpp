#include "commands.h"

#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "vram/batch/batch.h"
#include "vram/estimate/estimate.h"
#include "vram/memory/memory.h"
#include "vram/plan/plan.h"
#include "vram/profile/profile.h"
#include "vram/zoo/spec.h"

namespace vram_cli {
namespace {

using core::config::Option;
using core::config::OptionKind;

// One workload request, from flags or from JSON.
struct Request {
  vram::zoo::Workload workload;
  std::string device;        // resolved: "cuda", "cuda:N" or "cpu"
  int64_t budget_bytes = 0;  // batch: 0 is the whole device
};

struct Fields {
  std::string model = "llama-tiny";
  std::string mode = "train";
  std::string dtype = "bf16";
  std::string optimizer = "adamw";
  std::string lora;
  int64_t batch = 1;
  int64_t seq = 512;
  std::string device = "auto";
  std::string budget;
  std::string plan;
  int64_t loss_chunk = 0;
  bool stream_weights = false;
  int64_t weight_buffers = 2;
  int64_t micro_batches = 1;
};

core::Result<Request> to_request(const Fields& f) {
  Request request;
  auto model = vram::zoo::find_model(f.model);
  if (!model) return model.error();
  auto dtype = vram::zoo::parse_dtype(f.dtype);
  if (!dtype) return dtype.error();
  auto optimizer = vram::zoo::parse_optimizer(f.optimizer);
  if (!optimizer) return optimizer.error();
  auto lora = vram::zoo::parse_lora(f.lora);
  if (!lora) return lora.error();
  if (f.mode != "train" && f.mode != "inference") {
    return core::make_error(core::ErrorCode::kInvalidArgument, "mode must be train or inference, not '" + f.mode + "'");
  }
  if (f.batch < 1 || f.seq < 1) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "batch and seq must be at least 1");
  }
  request.workload.model = *model;
  request.workload.mode = f.mode == "train" ? vram::zoo::Mode::kTrain : vram::zoo::Mode::kInference;
  request.workload.dtype = *dtype;
  request.workload.optimizer = *optimizer;
  request.workload.lora = *lora;
  request.workload.batch = f.batch;
  request.workload.seq = f.seq;
  auto plan = vram::zoo::parse_plan(f.plan, *model);
  if (!plan) return plan.error();
  request.workload.plan = *plan;
  if (f.loss_chunk < 0) return core::make_error(core::ErrorCode::kInvalidArgument, "loss_chunk cannot be negative");
  request.workload.plan.loss_chunk_tokens = f.loss_chunk;
  if (f.weight_buffers < 2 || f.micro_batches < 1) {
    return core::make_error(core::ErrorCode::kInvalidArgument,
                            "weight_buffers must be at least 2 and micro_batches at least 1");
  }
  request.workload.plan.stream_weights = f.stream_weights;
  request.workload.plan.weight_buffers = f.weight_buffers;
  request.workload.plan.micro_batches = f.micro_batches;
  // "auto": the GPU when this build's LibTorch sees one, else the CPU.
  request.device = f.device != "auto"                                        ? f.device
                   : vram::memory::runtime("cuda").cuda_capability_major > 0 ? "cuda"
                                                                             : "cpu";
  if (!f.budget.empty()) {
    auto budget = core::config::parse_bytes(f.budget);
    if (!budget) return budget.error();
    request.budget_bytes = static_cast<int64_t>(*budget);
  }
  return request;
}

core::Result<Request> from_config(const core::config::Config& config) {
  Fields f;
  f.model = config.text("vram.model");
  f.mode = config.text("vram.mode");
  f.dtype = config.text("vram.dtype");
  f.optimizer = config.text("vram.optimizer");
  f.lora = config.text("vram.lora");
  f.batch = config.integer("vram.batch");
  f.seq = config.integer("vram.seq");
  f.device = config.text("vram.device");
  f.budget = config.text("vram.budget");
  f.plan = config.text("vram.plan");
  f.loss_chunk = config.integer("vram.loss_chunk");
  f.stream_weights = config.boolean("vram.stream_weights");
  f.weight_buffers = config.integer("vram.weight_buffers");
  f.micro_batches = config.integer("vram.micro_batches");
  return to_request(f);
}

core::Result<Request> from_json(const nlohmann::json& json) {
  if (!json.is_object()) return core::make_error(core::ErrorCode::kInvalidArgument, "the body must be a JSON object");
  Fields f;
  static const std::set<std::string> known = {
      "model",  "mode",   "dtype", "optimizer",  "lora",           "batch",          "seq",
      "device", "budget", "plan",  "loss_chunk", "stream_weights", "weight_buffers", "micro_batches"};
  static const std::set<std::string> numbers = {"batch", "seq", "loss_chunk", "weight_buffers", "micro_batches"};
  for (const auto& [key, value] : json.items()) {
    if (!known.count(key)) return core::make_error(core::ErrorCode::kInvalidArgument, "unknown field '" + key + "'");
    const bool number = numbers.count(key) > 0;
    const bool flag = key == "stream_weights";
    const bool right = flag ? value.is_boolean() : number ? value.is_number_integer() : value.is_string();
    if (!right) {
      return core::make_error(core::ErrorCode::kInvalidArgument, "field '" + key + "' must be " +
                                                                     (flag     ? "true or false"
                                                                      : number ? "an integer"
                                                                               : "a string"));
    }
  }
  const auto text = [&](const char* key, std::string& out) {
    if (json.contains(key)) out = json[key].get<std::string>();
  };
  text("model", f.model);
  text("mode", f.mode);
  text("dtype", f.dtype);
  text("optimizer", f.optimizer);
  text("lora", f.lora);
  text("device", f.device);
  text("budget", f.budget);
  text("plan", f.plan);
  if (json.contains("batch")) f.batch = json["batch"].get<int64_t>();
  if (json.contains("seq")) f.seq = json["seq"].get<int64_t>();
  if (json.contains("loss_chunk")) f.loss_chunk = json["loss_chunk"].get<int64_t>();
  if (json.contains("stream_weights")) f.stream_weights = json["stream_weights"].get<bool>();
  if (json.contains("weight_buffers")) f.weight_buffers = json["weight_buffers"].get<int64_t>();
  if (json.contains("micro_batches")) f.micro_batches = json["micro_batches"].get<int64_t>();
  return to_request(f);
}

double gib(int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30); }

vram::estimate::Backend backend_for(const std::string& device) {
  // Without the GPU here, a CUDA estimate is for the machines we target: LibTorch 2 on Hopper.
  const auto runtime = vram::memory::runtime(device);
  if (device == "cpu") return vram::estimate::backend_for(false, runtime.libtorch_major, 0);
  return runtime.cuda_capability_major > 0
             ? vram::estimate::backend_for(true, runtime.libtorch_major, runtime.cuda_capability_major)
             : vram::estimate::backend_for(true, 2, 9);
}

nlohmann::json estimate_json(const vram::estimate::Estimate& e) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : e.stages) {
    stages.push_back({{"name", s.name},
                      {"kind", s.kind},
                      {"parameter_bytes", s.parameter_bytes},
                      {"trainable_bytes", s.trainable_bytes},
                      {"activation_bytes", s.activation_bytes},
                      {"forward_transient_bytes", s.forward_transient_bytes},
                      {"backward_transient_bytes", s.backward_transient_bytes}});
  }
  return {{"peak_bytes", e.peak_bytes},
          {"peak_phase", e.peak_phase},
          {"peak_stage", e.peak_stage},
          {"parameter_bytes", e.parameter_bytes},
          {"trainable_bytes", e.trainable_bytes},
          {"streamed_bytes", e.streamed_bytes},
          {"weight_buffer_bytes", e.weight_buffer_bytes},
          {"gradient_bytes", e.gradient_bytes},
          {"optimizer_bytes", e.optimizer_bytes},
          {"input_bytes", e.input_bytes},
          {"activation_bytes", e.activation_bytes},
          {"workspace_bytes", e.workspace_bytes},
          {"stages", stages}};
}

nlohmann::json batch_json(const vram::batch::DeviceSearchResult& r) {
  nlohmann::json trials = nlohmann::json::array();
  for (const auto& t : r.search.trials) {
    trials.push_back({{"batch", t.batch},
                      {"fits", t.fits},
                      {"predicted_bytes", t.predicted_bytes},
                      {"measured_bytes", t.measured_bytes}});
  }
  return {{"batch", r.search.batch},
          {"tokens_per_step", r.tokens_per_step},
          {"measured_bytes", r.search.measured_bytes},
          {"predicted_bytes", r.search.predicted_bytes},
          {"budget_bytes", r.budget_bytes},
          {"capacity_bytes", r.capacity_bytes},
          {"exact", r.search.exact},
          {"device", r.device},
          {"trials", trials}};
}

// Progress on stderr for people at a terminal; stdout stays the result.
void print_progress(const std::string& what, double fraction) {
  std::cerr << "[" << static_cast<int>(fraction * 100.0) << "%] " << what << "\n";
}

int fail(const char* command, const core::Error& error) {
  std::cerr << "vram " << command << ": " << error.message << "\n";
  return error.code == core::ErrorCode::kInvalidArgument || error.code == core::ErrorCode::kNotFound ? 2 : 1;
}

std::string plan_text(const vram::zoo::Plan& plan, const vram::zoo::Workload& workload) {
  return vram::zoo::describe(plan, workload.model);
}

nlohmann::json costs_json(const vram::plan::Costs& costs) {
  return {{"flops_per_second", costs.flops_per_second},
          {"backward_flops_per_second", costs.backward_flops_per_second},
          {"host_to_device_bytes_per_second", costs.host_to_device_bytes_per_second},
          {"device_to_host_bytes_per_second", costs.device_to_host_bytes_per_second}};
}

nlohmann::json candidates_json(const vram::plan::Choice& choice, const vram::zoo::Workload& workload, size_t count) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < choice.candidates.size() && i < count; ++i) {
    const auto& c = choice.candidates[i];
    list.push_back({{"plan", plan_text(c.plan, workload)},
                    {"fits", c.fits},
                    {"predicted_peak_bytes", c.predicted_peak_bytes},
                    {"predicted_items_per_second", c.predicted_items_per_second}});
  }
  return list;
}

nlohmann::json fit_json(const vram::plan::FitResult& r, const Request& request) {
  nlohmann::json attempts = nlohmann::json::array();
  for (const auto& a : r.attempts)
    attempts.push_back({{"plan", plan_text(a.plan, request.workload)}, {"outcome", a.outcome}});
  return {{"model", request.workload.model.name},
          {"batch", request.workload.batch},
          {"seq", request.workload.seq},
          {"device", request.device},
          {"budget_bytes", request.budget_bytes},
          {"plan", plan_text(r.plan, request.workload)},
          {"predicted_peak_bytes", r.predicted_peak_bytes},
          {"measured_peak_bytes", r.measured_peak_bytes},
          {"predicted_items_per_second", r.predicted_items_per_second},
          {"measured_items_per_second", r.measured_items_per_second},
          {"measured_step_seconds", r.measured_step_seconds},
          {"items_per_step", r.items_per_step},
          {"host_bytes", r.host_bytes},
          {"costs", costs_json(r.costs)},
          {"attempts", attempts},
          {"candidates", candidates_json(r.choice, request.workload, 8)}};
}

void print_fit(const vram::plan::FitResult& r, const Request& request) {
  char line[200];
  std::snprintf(line, sizeof line, "plan: %s\n", plan_text(r.plan, request.workload).c_str());
  std::cout << line;
  std::snprintf(line, sizeof line,
                "peak %.2f GiB measured, %.2f GiB predicted, budget %.2f GiB; host memory %.2f GiB\n",
                gib(r.measured_peak_bytes), gib(r.predicted_peak_bytes), gib(request.budget_bytes), gib(r.host_bytes));
  std::cout << line;
  std::snprintf(line, sizeof line, "%.0f %s/s measured (%.0f predicted), %.3f s per step of %lld\n",
                r.measured_items_per_second, request.workload.model.is_language_model() ? "tokens" : "samples",
                r.predicted_items_per_second, r.measured_step_seconds, static_cast<long long>(r.items_per_step));
  std::cout << line;
  for (const auto& a : r.attempts) {
    if (a.outcome != "ok")
      std::cout << "  gave way: " << plan_text(a.plan, request.workload) << ": " << a.outcome << "\n";
  }
}

}  // namespace

int fit_command(const core::config::Config& config) {
  auto request = from_config(config);
  if (!request) return fail("fit", request.error());
  if (request->budget_bytes <= 0) {
    return fail("fit", core::make_error(core::ErrorCode::kInvalidArgument, "give a budget, e.g. --budget 8GB"));
  }
  const double headroom = config.number("vram.headroom");
  if (headroom < 0.0 || headroom >= 1.0) {
    return fail("fit", core::make_error(core::ErrorCode::kInvalidArgument, "headroom is a fraction in [0, 1)"));
  }
  if (config.boolean("vram.dry_run")) {
    // The plan alone, from assumed costs: no device needed.
    vram::plan::PlannerOptions planner;
    planner.budget_bytes = request->budget_bytes;
    planner.headroom = headroom;
    planner.backend = backend_for(request->device);
    planner.costs = vram::plan::assumed_costs(request->device != "cpu");
    auto choice = vram::plan::choose(request->workload, planner);
    if (!choice) return fail("fit", choice.error());
    if (config.boolean("vram.json")) {
      std::cout << nlohmann::json{{"plan", plan_text(choice->best.plan, request->workload)},
                                  {"predicted_peak_bytes", choice->best.predicted_peak_bytes},
                                  {"predicted_items_per_second", choice->best.predicted_items_per_second},
                                  {"floor_bytes", choice->floor_bytes},
                                  {"costs", costs_json(planner.costs)},
                                  {"candidates", candidates_json(*choice, request->workload, 8)}}
                       .dump(2)
                << "\n";
      return 0;
    }
    std::cout << "plan: " << plan_text(choice->best.plan, request->workload) << "\npredicted peak "
              << gib(choice->best.predicted_peak_bytes) << " GiB, " << choice->best.predicted_items_per_second
              << " items/s at assumed costs\n";
    return 0;
  }
  vram::plan::FitOptions options;
  options.workload = request->workload;
  options.device = request->device;
  options.budget_bytes = request->budget_bytes;
  options.headroom = headroom;
  options.timed_steps = static_cast<int>(config.integer("vram.steps"));
  options.progress = print_progress;
  auto result = vram::plan::fit(options);
  if (!result) return fail("fit", result.error());
  if (config.boolean("vram.json")) {
    std::cout << fit_json(*result, *request).dump(2) << "\n";
  } else {
    print_fit(*result, *request);
  }
  return 0;
}

int bench_command(const core::config::Config& config) {
  auto request = from_config(config);
  if (!request) return fail("bench", request.error());
  std::vector<int64_t> budgets;
  std::stringstream list(config.text("vram.budgets"));
  for (std::string item; std::getline(list, item, ',');) {
    auto bytes = core::config::parse_bytes(item);
    if (!bytes) return fail("bench", bytes.error());
    budgets.push_back(static_cast<int64_t>(*bytes));
  }
  if (budgets.empty()) return fail("bench", core::make_error(core::ErrorCode::kInvalidArgument, "give --budgets"));
  // One measurement of the device's costs serves every budget.
  print_progress("measuring the device's costs", 0.0);
  auto costs = vram::plan::measure_costs(request->workload, request->device);
  if (!costs) return fail("bench", costs.error());
  double first_rate = 0.0;
  for (size_t i = 0; i < budgets.size(); ++i) {
    Request at_budget = *request;
    at_budget.budget_bytes = budgets[i];
    vram::plan::FitOptions options;
    options.workload = request->workload;
    options.device = request->device;
    options.budget_bytes = budgets[i];
    options.headroom = config.number("vram.headroom");
    options.timed_steps = static_cast<int>(config.integer("vram.steps"));
    options.costs = &*costs;
    options.progress = [&](const std::string& what, double fraction) {
      print_progress(std::to_string(budgets[i] / 1000000000) + " GB: " + what,
                     (static_cast<double>(i) + fraction) / static_cast<double>(budgets.size()));
    };
    auto result = vram::plan::fit(options);
    nlohmann::json line;
    if (result) {
      line = fit_json(*result, at_budget);
      line.erase("candidates");
      if (first_rate == 0.0) first_rate = result->measured_items_per_second;
      line["ratio_to_first"] = result->measured_items_per_second / first_rate;
    } else {
      line = {{"budget_bytes", budgets[i]}, {"error", result.error().message}};
    }
    std::cout << line.dump() << std::endl;  // one JSON line per budget, as each finishes
  }
  return 0;
}

std::vector<Option> workload_options() {
  std::string models;
  for (const auto& name : vram::zoo::model_names()) models += (models.empty() ? "" : ", ") + name;
  return {
      {"vram.model", "model", "", "llama-tiny", "profile, estimate, batch: model (" + models + ")",
       OptionKind::kString},
      {"vram.mode",
       "mode",
       "",
       "train",
       "train (forward, backward, optimizer) or inference",
       OptionKind::kString,
       {"train", "inference"}},
      {"vram.dtype", "dtype", "", "bf16", "bf16, fp16 or fp32", OptionKind::kString},
      {"vram.optimizer", "optimizer", "", "adamw", "adamw, sgd or sgd-momentum", OptionKind::kString},
      {"vram.lora", "lora", "", "", "LoRA adapters, e.g. r16:q,k,v,o (empty: full fine-tune)", OptionKind::kString},
      {"vram.batch", "batch", "", "1", "samples per step", OptionKind::kInt},
      {"vram.plan", "plan", "", "keep",
       "keep; checkpoint (a segment per transformer layer or ResNet block); checkpoint-stages; offload (as "
       "checkpoint, segment inputs in host memory); or one letter per stage: k, c, o, j (join)",
       OptionKind::kString},
      {"vram.seq", "seq", "", "512", "tokens per sample (language models)", OptionKind::kInt},
      {"vram.device", "device", "VRAM_DEVICE", "auto", "cuda, cuda:N, cpu, or auto (cuda when there is a GPU)",
       OptionKind::kString},
      {"vram.budget", "budget", "", "", "batch, fit: memory budget, e.g. 16GB (batch: empty is the whole device)",
       OptionKind::kString},
      {"vram.loss_chunk", "loss-chunk", "", "0",
       "language models: head and loss over this many tokens at a time, checkpointed (0: all at once)",
       OptionKind::kInt},
      {"vram.stream_weights", "stream-weights", "", "false",
       "frozen weights of checkpoint segments live in host memory and stream in one segment ahead", OptionKind::kBool},
      {"vram.weight_buffers", "weight-buffers", "", "2", "device buffers weights stream through (at least 2)",
       OptionKind::kInt},
      {"vram.micro_batches", "micro-batches", "", "1",
       "train: split the batch into this many micro-batches (gradient accumulation, one optimizer step)",
       OptionKind::kInt},
      {"vram.headroom", "headroom", "", "0.05",
       "fit, bench: fraction of the budget kept free for what the estimator does not see", OptionKind::kFloat},
      {"vram.dry_run", "dry-run", "", "false", "fit: choose the plan from assumed costs, run nothing",
       OptionKind::kBool},
      {"vram.steps", "steps", "", "3", "fit, bench: timed steps after the warm-up (median)", OptionKind::kInt},
      {"vram.budgets", "budgets", "", "40GB,24GB,16GB,12GB,8GB,6GB,4GB", "bench: the budgets of the curve",
       OptionKind::kString},
      {"vram.confirm", "confirm", "", "false", "batch: also run batch + 1 to see it fail (one more step)",
       OptionKind::kBool},
      {"vram.html", "html", "", "", "profile: also write the timeline as a self-contained HTML page here",
       OptionKind::kPath},
  };
}

core::Result<AllocatorMetrics> AllocatorMetrics::create(core::metrics::Registry& registry) {
  AllocatorMetrics metrics;
  const std::vector<std::string> labels = {"device", "task"};  // not "job": Prometheus owns that label
  auto allocated = registry.gauge("vram_allocator_allocated_bytes",
                                  "Bytes in live tensors at the end of the last job, per device", labels);
  auto reserved = registry.gauge("vram_allocator_reserved_bytes",
                                 "Bytes the caching allocator held from the driver at the end of the last job", labels);
  auto peak =
      registry.gauge("vram_allocator_peak_allocated_bytes", "Peak bytes in live tensors during the last job", labels);
  if (!allocated) return allocated.error();
  if (!reserved) return reserved.error();
  if (!peak) return peak.error();
  metrics.allocated_ = *allocated;
  metrics.reserved_ = *reserved;
  metrics.peak_ = *peak;
  return metrics;
}

void AllocatorMetrics::record(const std::string& device, const std::string& task, int64_t allocated_bytes,
                              int64_t reserved_bytes, int64_t peak_allocated_bytes) {
  allocated_->with({device, task}).set(static_cast<double>(allocated_bytes));
  reserved_->with({device, task}).set(static_cast<double>(reserved_bytes));
  peak_->with({device, task}).set(static_cast<double>(peak_allocated_bytes));
}

core::Result<nlohmann::json> estimate_request(const nlohmann::json& json) {
  auto request = from_json(json);
  if (!request) return request.error();
  auto estimate = vram::estimate::estimate(request->workload, backend_for(request->device));
  if (!estimate) return estimate.error();
  return estimate_json(*estimate);
}

core::Result<nlohmann::json> profile_request(const nlohmann::json& json, AllocatorMetrics* metrics,
                                             const std::function<void(double)>& progress) {
  auto request = from_json(json);
  if (!request) return request.error();
  vram::profile::ProfileOptions options;
  options.workload = request->workload;
  options.device = request->device;
  options.progress = [&](const std::string&, double fraction) {
    if (progress) progress(fraction);
  };
  auto profile = vram::profile::profile_step(options);
  if (!profile) return profile.error();
  if (metrics) {
    metrics->record(request->device, "profile", profile->allocator.allocated_bytes, profile->allocator.reserved_bytes,
                    profile->peak.peak_bytes);
  }
  auto result = nlohmann::json::parse(vram::profile::to_json(*profile));
  auto estimate = vram::estimate::estimate(request->workload, backend_for(request->device));
  if (estimate) result["predicted_peak_bytes"] = estimate->peak_bytes;
  return result;
}

core::Result<nlohmann::json> batch_request(const nlohmann::json& json, AllocatorMetrics* metrics,
                                           const std::function<void(double)>& progress) {
  auto request = from_json(json);
  if (!request) return request.error();
  vram::batch::DeviceSearchOptions options;
  options.workload = request->workload;
  options.device = request->device;
  options.budget_bytes = request->budget_bytes;
  options.progress = [&](const std::string&, double fraction) {
    if (progress) progress(fraction);
  };
  auto result = vram::batch::find_max_batch_on_device(options);
  if (!result) return result.error();
  if (metrics) metrics->record(request->device, "batch", 0, 0, result->search.measured_bytes);
  return batch_json(*result);
}

core::Result<nlohmann::json> fit_request(const nlohmann::json& json, AllocatorMetrics* metrics,
                                         const std::function<void(double)>& progress) {
  auto request = from_json(json);
  if (!request) return request.error();
  if (request->budget_bytes <= 0) {
    return core::make_error(core::ErrorCode::kInvalidArgument, "a fit needs \"budget\", e.g. \"8GB\"");
  }
  vram::plan::FitOptions options;
  options.workload = request->workload;
  options.device = request->device;
  options.budget_bytes = request->budget_bytes;
  options.progress = [&](const std::string&, double fraction) {
    if (progress) progress(fraction);
  };
  auto result = vram::plan::fit(options);
  if (!result) return result.error();
  if (metrics) metrics->record(request->device, "fit", 0, 0, result->measured_peak_bytes);
  return fit_json(*result, *request);
}

int estimate_command(const core::config::Config& config) {
  auto request = from_config(config);
  if (!request) return fail("estimate", request.error());
  auto e = vram::estimate::estimate(request->workload, backend_for(request->device));
  if (!e) return fail("estimate", e.error());
  if (config.boolean("vram.json")) {
    std::cout << estimate_json(*e).dump(2) << "\n";
    return 0;
  }
  char line[160];
  std::snprintf(line, sizeof line, "predicted peak %.2f GiB (%s of %s)\n", gib(e->peak_bytes), e->peak_phase.c_str(),
                e->peak_stage.c_str());
  std::cout << line;
  const std::pair<const char*, int64_t> parts[] = {
      {"parameters", e->parameter_bytes - e->streamed_bytes},  // on the device
      {"weights on the host", e->streamed_bytes},
      {"weight buffers", e->weight_buffer_bytes},
      {"gradients", e->gradient_bytes},
      {"optimizer state", e->optimizer_bytes},
      {"activations kept", e->activation_bytes},
      {"inputs", e->input_bytes},
      {"runtime workspaces", e->workspace_bytes}};
  for (const auto& [name, bytes] : parts) {
    std::snprintf(line, sizeof line, "  %-20s %9.3f GiB\n", name, gib(bytes));
    std::cout << line;
  }
  return 0;
}

int profile_command(const core::config::Config& config) {
  auto request = from_config(config);
  if (!request) return fail("profile", request.error());
  vram::profile::ProfileOptions options;
  options.workload = request->workload;
  options.device = request->device;
  options.progress = print_progress;
  auto profile = vram::profile::profile_step(options);
  if (!profile) return fail("profile", profile.error());
  if (config.boolean("vram.json")) {
    auto json = nlohmann::json::parse(vram::profile::to_json(*profile));
    if (auto e = vram::estimate::estimate(request->workload, backend_for(request->device))) {
      json["predicted_peak_bytes"] = e->peak_bytes;
    }
    std::cout << json.dump(2) << "\n";
  } else {
    std::cout << vram::profile::to_table(*profile);
    if (auto e = vram::estimate::estimate(request->workload, backend_for(request->device))) {
      std::cout << "estimator predicted " << gib(e->peak_bytes) << " GiB ("
                << 100.0 * static_cast<double>(e->peak_bytes - profile->peak.peak_bytes) /
                       static_cast<double>(profile->peak.peak_bytes)
                << "% off)\n";
    }
  }
  const std::string html = config.path("vram.html").string();
  if (!html.empty()) {
    std::ofstream out(html);
    out << vram::profile::to_html(*profile);
    if (!out) return fail("profile", core::make_error(core::ErrorCode::kIo, "cannot write " + html));
    std::cerr << "timeline written to " << html << "\n";
  }
  return 0;
}

int batch_command(const core::config::Config& config) {
  auto request = from_config(config);
  if (!request) return fail("batch", request.error());
  vram::batch::DeviceSearchOptions options;
  options.workload = request->workload;
  options.device = request->device;
  options.budget_bytes = request->budget_bytes;
  options.confirm = config.boolean("vram.confirm");
  options.progress = print_progress;
  auto result = vram::batch::find_max_batch_on_device(options);
  if (!result) return fail("batch", result.error());
  if (config.boolean("vram.json")) {
    std::cout << batch_json(*result).dump(2) << "\n";
    return 0;
  }
  if (result->search.batch == 0) {
    std::cout << "not even batch 1 fits in " << gib(result->budget_bytes) << " GiB\n";
    return 1;
  }
  std::cout << "largest batch: " << result->search.batch << " (" << result->tokens_per_step
            << " tokens per step), peak " << gib(result->search.measured_bytes) << " GiB of "
            << gib(result->budget_bytes) << " GiB budget, " << result->search.trials.size() << " trial steps\n";
  for (const auto& t : result->search.trials) {
    std::cout << "  batch " << t.batch << ": " << (t.fits ? "fits" : "out of memory") << ", predicted "
              << gib(t.predicted_bytes) << " GiB";
    if (t.fits) std::cout << ", measured " << gib(t.measured_bytes) << " GiB";
    std::cout << "\n";
  }
  return 0;
}

}  // namespace vram_cli
