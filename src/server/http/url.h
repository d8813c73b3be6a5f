#pragma once
// Private to server::http: splitting and decoding request targets (RFC 3986).

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace server::http {

// "%41b+c" -> "Ab+c" ("Ab c" when plus_is_space, as in query strings); nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// "/a/b" -> {"a", "b"}; "/" -> {}; "/a/" -> {"a", ""}. Segments stay encoded.
std::vector<std::string_view> split_path(std::string_view path);

struct Target {
  std::string path;  // still encoded
  std::map<std::string, std::string, std::less<>> query;
};
// "/x?a=1&b=%20" -> path "/x", query {a: "1", b: " "}. Fails (kInvalidArgument) for a target that is not an
// absolute path or has a malformed escape in its query.
core::Result<Target> parse_target(std::string_view target);

}  // namespace server::http
