#include "pose/service/text.h"

#include <gtest/gtest.h>

#include <vector>

namespace pose::service {
namespace {

TEST(Text, Rfc3339RoundTripsAndReadsOffsetsAndMicroseconds) {
  const int64_t t = 1'795'766'400'123'000;  // 2026-11-27T08:00:00.123Z
  EXPECT_EQ(rfc3339(t), "2026-11-27T08:00:00.123Z");
  EXPECT_EQ(parse_time_us("2026-11-27T08:00:00.123Z"), t);
  EXPECT_EQ(parse_time_us("2026-11-27T09:00:00.123+01:00"), t);
  EXPECT_EQ(parse_time_us("2026-11-27T07:30:00.123-00:30"), t);
  EXPECT_EQ(parse_time_us("1795766400123000"), t);
  EXPECT_EQ(parse_time_us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(rfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Text, RejectsWhatIsNotATime) {
  for (const char* bad : {"", "yesterday", "2026-11-27", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-11-27T08:00:00", "2026-11-27T08:00:00Zjunk", "12abc", "2026-11-27T25:00:00Z"}) {
    EXPECT_FALSE(parse_time_us(bad).has_value()) << bad;
  }
}

TEST(Text, Base64MatchesRfc4648Vectors) {
  const auto encode = [](std::string_view text) {
    const std::vector<uint8_t> bytes(text.begin(), text.end());
    return base64(bytes);
  };
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("f"), "Zg==");
  EXPECT_EQ(encode("fo"), "Zm8=");
  EXPECT_EQ(encode("foo"), "Zm9v");
  EXPECT_EQ(encode("foob"), "Zm9vYg==");
  EXPECT_EQ(encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encode("foobar"), "Zm9vYmFy");
  const std::vector<uint8_t> high = {0xff, 0xfe, 0x00};
  EXPECT_EQ(base64(high), "//4A");
}

}  // namespace
}  // namespace pose::service
