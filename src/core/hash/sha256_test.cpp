#include "core/hash/sha256.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string_view>

namespace core::hash {
namespace {

std::span<const uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};  // NOLINT
}

// Vectors from FIPS 180-4's examples and NIST's SHA-256 test set.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(bytes_of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(bytes_of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(bytes_of(million)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, ChunkedUpdatesEqualOneShot) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>(i * 7);
  Sha256 chunked;
  for (size_t offset = 0; offset < text.size(); offset += 37) {
    chunked.update(bytes_of(std::string_view(text).substr(offset, 37)));
  }
  EXPECT_EQ(chunked.hex_digest(), sha256_hex(bytes_of(text)));
}

TEST(Sha256, Files) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "sha256_test.txt";
  std::ofstream(path) << "abc";
  EXPECT_EQ(sha256_file(path).value(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_file(path.string() + ".missing").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace core::hash
