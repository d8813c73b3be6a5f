// Renderings of a Profile: text table, JSON, and a self-contained HTML page with an SVG timeline.
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vram/profile/profile.h"

namespace vram::profile {
namespace {

std::string gib(int64_t bytes) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(bytes != 0 && std::llabs(bytes) < (int64_t{100} << 20) ? 3 : 2);
  out << static_cast<double>(bytes) / static_cast<double>(int64_t{1} << 30);
  return out.str();
}

std::string fixed(double value, int decimals = 2) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(decimals);
  out << value;
  return out.str();
}

std::string describe(const zoo::Workload& workload) {
  std::ostringstream out;
  out << workload.model.name << ", " << zoo::to_string(workload.mode) << ", " << zoo::to_string(workload.dtype)
      << ", batch " << workload.batch;
  if (workload.model.is_language_model()) out << ", seq " << workload.seq;
  if (workload.mode == zoo::Mode::kTrain) {
    out << ", " << zoo::to_string(workload.optimizer);
    if (workload.lora.enabled()) out << ", LoRA r" << workload.lora.rank;
  }
  return out.str();
}

std::string escape_html(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

nlohmann::json workload_json(const zoo::Workload& workload) {
  return {{"model", workload.model.name},
          {"mode", zoo::to_string(workload.mode)},
          {"dtype", zoo::to_string(workload.dtype)},
          {"optimizer", zoo::to_string(workload.optimizer)},
          {"lora_rank", workload.lora.rank},
          {"lora_targets", workload.lora.targets},
          {"batch", workload.batch},
          {"seq", workload.seq}};
}

}  // namespace

std::string to_table(const Profile& profile) {
  std::ostringstream out;
  out << describe(profile.workload) << " on " << profile.device << "\n\n";
  // Stages with the most activation memory first: that is where checkpointing or offload would pay.
  std::vector<const StageMemory*> order;
  for (const auto& stage : profile.stages) order.push_back(&stage);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto* a, const auto* b) { return a->activation_bytes > b->activation_bytes; });
  const size_t shown = std::min<size_t>(order.size(), 12);
  char line[256];
  std::snprintf(line, sizeof line, "%-26s %10s %10s %10s %10s %10s %10s %9s %9s\n", "stage (GiB)", "params", "grads",
                "optimizer", "activation", "fwd peak", "bwd peak", "fwd ms", "bwd ms");
  out << line;
  for (size_t i = 0; i < shown; ++i) {
    const auto& s = *order[i];
    std::snprintf(line, sizeof line, "%-26s %10s %10s %10s %10s %10s %10s %9.2f %9.2f\n", s.name.c_str(),
                  gib(s.parameter_bytes).c_str(), gib(s.gradient_bytes).c_str(), gib(s.optimizer_bytes).c_str(),
                  gib(s.activation_bytes).c_str(), gib(s.forward_peak_bytes).c_str(),
                  gib(s.backward_peak_bytes).c_str(), s.forward_ms, s.backward_ms);
    out << line;
  }
  if (shown < order.size()) out << "... " << order.size() - shown << " more stages (--json lists all)\n";
  int64_t parameters = 0, gradients = 0, optimizer = 0, activations = 0;
  for (const auto& s : profile.stages) {
    parameters += s.parameter_bytes;
    gradients += s.gradient_bytes;
    optimizer += s.optimizer_bytes;
    activations += s.activation_bytes;
  }
  std::snprintf(line, sizeof line, "%-26s %10s %10s %10s %10s\n", "total", gib(parameters).c_str(),
                gib(gradients).c_str(), gib(optimizer).c_str(), gib(activations).c_str());
  out << line << "\n";
  const auto& peak = profile.peak;
  out << "peak allocated " << gib(peak.peak_bytes) << " GiB during " << peak.phase << " of " << peak.stage
      << "; reserved peak " << gib(profile.allocator.peak_reserved_bytes) << " GiB\n"
      << "  parameters " << gib(peak.parameter_bytes) << ", optimizer " << gib(peak.optimizer_bytes) << ", gradients "
      << gib(peak.gradient_bytes) << ", inputs " << gib(peak.input_bytes) << ", activations "
      << gib(peak.activation_bytes) << ", transient " << gib(peak.transient_bytes) << ", unattributed "
      << gib(peak.unattributed_bytes) << " (" << std::lround(peak.attributed_fraction * 100.0) << "% attributed)\n";
  if (profile.step_ms > 0) {
    out << "step " << fixed(profile.step_ms, 1) << " ms, " << std::lround(profile.items_per_s) << " " << profile.items
        << "/s\n";
  }
  return out.str();
}

std::string to_json(const Profile& profile) {
  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : profile.stages) {
    stages.push_back({{"name", s.name},
                      {"kind", s.kind},
                      {"parameter_bytes", s.parameter_bytes},
                      {"trainable_bytes", s.trainable_bytes},
                      {"gradient_bytes", s.gradient_bytes},
                      {"optimizer_bytes", s.optimizer_bytes},
                      {"activation_bytes", s.activation_bytes},
                      {"forward_peak_bytes", s.forward_peak_bytes},
                      {"backward_peak_bytes", s.backward_peak_bytes},
                      {"forward_ms", s.forward_ms},
                      {"backward_ms", s.backward_ms}});
  }
  nlohmann::json timeline = nlohmann::json::array();
  for (const auto& t : profile.timeline) {
    timeline.push_back({{"phase", t.phase},
                        {"stage", t.stage},
                        {"begin_ms", t.begin_ms},
                        {"end_ms", t.end_ms},
                        {"begin_bytes", t.begin_bytes},
                        {"peak_bytes", t.peak_bytes},
                        {"end_bytes", t.end_bytes}});
  }
  const auto& p = profile.peak;
  nlohmann::json largest = nlohmann::json::array();
  for (const auto& [name, bytes] : p.largest_activations) largest.push_back({{"stage", name}, {"bytes", bytes}});
  const auto& a = profile.allocator;
  nlohmann::json json = {{"workload", workload_json(profile.workload)},
                         {"device", profile.device},
                         {"capacity_bytes", profile.capacity_bytes},
                         {"baseline_bytes", profile.baseline_bytes},
                         {"peak",
                          {{"phase", p.phase},
                           {"stage", p.stage},
                           {"peak_bytes", p.peak_bytes},
                           {"parameter_bytes", p.parameter_bytes},
                           {"optimizer_bytes", p.optimizer_bytes},
                           {"gradient_bytes", p.gradient_bytes},
                           {"input_bytes", p.input_bytes},
                           {"activation_bytes", p.activation_bytes},
                           {"transient_bytes", p.transient_bytes},
                           {"unattributed_bytes", p.unattributed_bytes},
                           {"attributed_fraction", p.attributed_fraction},
                           {"largest_activations", largest}}},
                         {"allocator",
                          {{"allocated_bytes", a.allocated_bytes},
                           {"reserved_bytes", a.reserved_bytes},
                           {"peak_reserved_bytes", a.peak_reserved_bytes},
                           {"alloc_retries", a.alloc_retries},
                           {"ooms", a.ooms},
                           {"fragmentation", a.reserved_bytes > 0 ? 1.0 - static_cast<double>(a.allocated_bytes) /
                                                                              static_cast<double>(a.reserved_bytes)
                                                                  : 0.0}}},
                         {"step_ms", profile.step_ms},
                         {"items_per_s", profile.items_per_s},
                         {"items", profile.items},
                         {"stages", stages},
                         {"timeline", timeline}};
  return json.dump(2);
}

std::string to_html(const Profile& profile) {
  // Allocation over the step: each interval is drawn from its start allocation up to its peak, so the
  // transient spikes show, coloured by phase. Hovering names the stage.
  constexpr double kWidth = 1100.0, kHeight = 360.0, kLeft = 70.0, kBottom = 30.0;
  double end_ms = 0.0;
  int64_t top_bytes = 1;
  for (const auto& t : profile.timeline) {
    end_ms = std::max(end_ms, t.end_ms);
    top_bytes = std::max(top_bytes, t.peak_bytes);
  }
  end_ms = std::max(end_ms, 1e-3);
  const auto x = [&](double ms) { return kLeft + ms / end_ms * (kWidth - kLeft - 10.0); };
  const auto y = [&](int64_t bytes) {
    return kHeight - kBottom - static_cast<double>(bytes) / static_cast<double>(top_bytes) * (kHeight - kBottom - 20);
  };
  const auto colour = [](const std::string& phase) {
    if (phase == "forward") return "#4c78a8";
    if (phase == "backward") return "#f58518";
    if (phase == "loss") return "#54a24b";
    return "#b279a2";
  };
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << kWidth << "' height='" << kHeight << "'>";
  for (int tick = 0; tick <= 4; ++tick) {
    const auto bytes = top_bytes * tick / 4;
    svg << "<line x1='" << kLeft << "' x2='" << kWidth - 10 << "' y1='" << y(bytes) << "' y2='" << y(bytes)
        << "' stroke='#ddd'/><text x='4' y='" << y(bytes) + 4 << "' font-size='11'>" << gib(bytes) << " GiB</text>";
  }
  for (const auto& t : profile.timeline) {
    const double left = x(t.begin_ms);
    const double width = std::max(1.0, x(t.end_ms) - left);
    svg << "<rect x='" << left << "' y='" << y(t.peak_bytes) << "' width='" << width << "' height='"
        << std::max(1.0, y(t.begin_bytes) - y(t.peak_bytes)) << "' fill='" << colour(t.phase)
        << "' opacity='0.45'><title>" << escape_html(t.phase + " " + t.stage) << ": start " << gib(t.begin_bytes)
        << " GiB, peak " << gib(t.peak_bytes) << " GiB</title></rect>";
    svg << "<line x1='" << left << "' x2='" << left + width << "' y1='" << y(t.begin_bytes) << "' y2='"
        << y(t.end_bytes) << "' stroke='" << colour(t.phase) << "' stroke-width='2'/>";
  }
  svg << "<text x='" << kLeft << "' y='" << kHeight - 8 << "' font-size='11'>0 ms</text><text x='" << kWidth - 80
      << "' y='" << kHeight - 8 << "' font-size='11'>" << std::lround(end_ms) << " ms</text>";
  svg << "</svg>";

  std::ostringstream html;
  html << "<!doctype html><html><head><meta charset='utf-8'><title>vram profile: "
       << escape_html(describe(profile.workload)) << "</title><style>body{font-family:sans-serif;margin:24px}"
       << "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:right}"
       << "td:first-child,th:first-child{text-align:left}tr:nth-child(even){background:#f4f4f4}"
       << ".key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}</style></head><body>"
       << "<h1>" << escape_html(describe(profile.workload)) << " on " << escape_html(profile.device) << "</h1>"
       << "<p>Peak allocated <b>" << gib(profile.peak.peak_bytes) << " GiB</b> during "
       << escape_html(profile.peak.phase + " of " + profile.peak.stage) << " ("
       << std::lround(profile.peak.attributed_fraction * 100.0) << "% attributed); step " << fixed(profile.step_ms, 1)
       << " ms.</p><div class='key'>"
       << "<span style='background:#4c78a8'></span>forward<span style='background:#54a24b'></span>loss"
       << "<span style='background:#f58518'></span>backward<span style='background:#b279a2'></span>optimizer"
       << "</div>" << svg.str() << "<h2>At the peak</h2><table><tr><th>part</th><th>GiB</th></tr>";
  const auto& p = profile.peak;
  const std::pair<const char*, int64_t> parts[] = {
      {"parameters", p.parameter_bytes},     {"optimizer state", p.optimizer_bytes},
      {"gradients", p.gradient_bytes},       {"inputs", p.input_bytes},
      {"activations", p.activation_bytes},   {"transient", p.transient_bytes},
      {"unattributed", p.unattributed_bytes}};
  for (const auto& [name, bytes] : parts) html << "<tr><td>" << name << "</td><td>" << gib(bytes) << "</td></tr>";
  html << "</table><h2>Stages</h2><table><tr><th>stage</th><th>params</th><th>grads</th><th>optimizer</th>"
       << "<th>activation</th><th>fwd peak</th><th>bwd peak</th><th>fwd ms</th><th>bwd ms</th></tr>";
  for (const auto& s : profile.stages) {
    html << "<tr><td>" << escape_html(s.name) << "</td><td>" << gib(s.parameter_bytes) << "</td><td>"
         << gib(s.gradient_bytes) << "</td><td>" << gib(s.optimizer_bytes) << "</td><td>" << gib(s.activation_bytes)
         << "</td><td>" << gib(s.forward_peak_bytes) << "</td><td>" << gib(s.backward_peak_bytes) << "</td><td>"
         << s.forward_ms << "</td><td>" << s.backward_ms << "</td></tr>";
  }
  html << "</table></body></html>\n";
  return html.str();
}

}  // namespace vram::profile
