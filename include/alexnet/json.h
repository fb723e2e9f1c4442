// A strict JSON reader for the safetensors header, on nlohmann-json (src/io/json.cpp). Only
// objects, arrays, strings and integers are accepted; true/false/null, fractions and exponents
// are refused, as are duplicate object keys and invalid UTF-8, so that a foreign or damaged
// header is reported instead of being half-understood. What the binaries write goes through
// nlohmann::json directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alexnet {

struct JsonValue {
  enum class Kind { kObject, kArray, kString, kInteger };
  Kind kind = Kind::kObject;
  std::string string;                                     // kString
  int64_t integer = 0;                                    // kInteger
  std::vector<JsonValue> array;                           // kArray
  std::vector<std::pair<std::string, JsonValue>> object;  // kObject, in document order
};

// "object", "array", ...: for messages.
const char* json_kind_name(JsonValue::Kind kind);

// Parses one value surrounded by optional whitespace. Throws alexnet::Error with a message
// that says where ("at byte 7 (line 1, column 8): duplicate key \"a\""; syntax errors in
// nlohmann's words: "at byte 3 (line 1, column 4): syntax error while parsing array - ...").
JsonValue parse_json(std::string_view text);

// `s` as a JSON string literal, quotes included. Escapes '"', '\\' and control characters
// the way serde_json does (\n, \t, ..., else \u00xx); other UTF-8 passes through unchanged.
// Throws alexnet::Error when `s` is not valid UTF-8.
std::string json_quote(std::string_view s);

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);

}  // namespace alexnet
