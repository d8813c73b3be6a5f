#pragma once
// SHA-256 (FIPS 180-4), for verifying model files against the digests pinned in models/models.sha256.
//
// Thread-safety: a Sha256 object is not shared; the free function is safe to call from any thread.

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "core/result.h"

namespace core::hash {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const uint8_t> bytes);
  // Lowercase hex of the digest; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::span<const uint8_t> bytes);
Result<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace core::hash
