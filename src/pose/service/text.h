#pragma once
// Small text conversions the service's JSON needs: times as RFC 3339, bytes as base64.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pose::service {

// Microseconds since the Unix epoch, now.
int64_t wall_clock_us();
// "2026-11-27T09:00:00.120Z" (UTC, milliseconds).
std::string rfc3339(int64_t unix_us);
// RFC 3339 ("2026-11-27T09:00:00Z", fractions and offsets allowed) or plain microseconds since the epoch.
std::optional<int64_t> parse_time_us(std::string_view text);
// Standard base64 with padding (RFC 4648).
std::string base64(std::span<const uint8_t> bytes);

}  // namespace pose::service
