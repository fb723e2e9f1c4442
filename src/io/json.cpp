#include "alexnet/json.h"

#include <cstdio>
#include <limits>

#include "alexnet/error.h"

namespace alexnet {

namespace {

// Headers come from files we did not necessarily write; a deep "[[[[..." must not overflow the
// stack. Real safetensors headers nest three levels.
constexpr int kMaxDepth = 64;

// Length of the UTF-8 sequence starting at s[i], or 0 when it is malformed.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint32_t min_code = 0;
  uint32_t code = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, min_code = 0x80, code = b0 & 0x1Fu;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, min_code = 0x800, code = b0 & 0x0Fu;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, min_code = 0x10000, code = b0 & 0x07u;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    code = (code << 6) | (b & 0x3Fu);
  }
  if (code < min_code || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return len;
}

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

struct Parser {
  std::string_view text;
  size_t pos = 0;

  [[noreturn]] void fail(const std::string& what) const { fail_at(pos, what); }

  [[noreturn]] void fail_at(size_t at, const std::string& what) const {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < at && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    throw Error("at byte " + std::to_string(at) + " (line " + std::to_string(line) + ", column " +
                std::to_string(column) + "): " + what);
  }

  // The character at pos, quoted for a message.
  std::string describe_current() const {
    if (pos >= text.size()) return "end of input";
    const auto c = static_cast<unsigned char>(text[pos]);
    char buf[32];
    if (c >= 0x20 && c < 0x7F) {
      std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
      std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
    }
    return buf;
  }

  void skip_whitespace() {
    while (pos < text.size() &&
           (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r')) {
      ++pos;
    }
  }

  void expect(char c, const char* context) {
    if (pos >= text.size() || text[pos] != c) {
      fail(std::string("expected '") + c + "' " + context + ", found " + describe_current());
    }
    ++pos;
  }

  JsonValue parse_value(int depth) {
    skip_whitespace();
    if (pos >= text.size()) fail("unexpected end of input, expected a value");
    const char c = text[pos];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') {
      JsonValue v;
      v.kind = JsonValue::Kind::kString;
      v.string = parse_string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_integer();
    if (c == 't' || c == 'f' || c == 'n') {
      fail(
          "true, false and null are not supported here (only objects, arrays, strings and "
          "integers)");
    }
    fail("expected a value, found " + describe_current());
  }

  JsonValue parse_object(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    JsonValue v;
    v.kind = JsonValue::Kind::kObject;
    ++pos;  // '{'
    skip_whitespace();
    if (pos < text.size() && text[pos] == '}') {
      ++pos;
      return v;
    }
    for (;;) {
      skip_whitespace();
      if (pos >= text.size() || text[pos] != '"') {
        fail("expected a string key in an object, found " + describe_current());
      }
      const size_t key_pos = pos;
      std::string key = parse_string();
      for (const auto& member : v.object) {
        if (member.first == key) fail_at(key_pos, "duplicate key " + json_quote(key));
      }
      skip_whitespace();
      expect(':', "after an object key");
      JsonValue value = parse_value(depth + 1);
      v.object.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      expect('}', "or ',' in an object");
      return v;
    }
  }

  JsonValue parse_array(int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    JsonValue v;
    v.kind = JsonValue::Kind::kArray;
    ++pos;  // '['
    skip_whitespace();
    if (pos < text.size() && text[pos] == ']') {
      ++pos;
      return v;
    }
    for (;;) {
      v.array.push_back(parse_value(depth + 1));
      skip_whitespace();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      expect(']', "or ',' in an array");
      return v;
    }
  }

  JsonValue parse_integer() {
    const size_t start = pos;
    const bool negative = text[pos] == '-';
    if (negative) ++pos;
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') {
      fail("expected a digit after '-', found " + describe_current());
    }
    if (text[pos] == '0' && pos + 1 < text.size() && text[pos + 1] >= '0' && text[pos + 1] <= '9') {
      fail("leading zeros are not allowed in numbers");
    }
    // Accumulate the magnitude as unsigned so that INT64_MIN is representable.
    const uint64_t limit =
        negative ? uint64_t{1} << 63 : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    uint64_t magnitude = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      const auto digit = static_cast<uint64_t>(text[pos] - '0');
      if (magnitude > (limit - digit) / 10) fail_at(start, "integer out of the 64-bit range");
      magnitude = magnitude * 10 + digit;
      ++pos;
    }
    if (pos < text.size() && (text[pos] == '.' || text[pos] == 'e' || text[pos] == 'E')) {
      fail_at(start, "only integers are supported here, not fractions or exponents");
    }
    JsonValue v;
    v.kind = JsonValue::Kind::kInteger;
    v.integer = negative ? static_cast<int64_t>(~magnitude + 1) : static_cast<int64_t>(magnitude);
    return v;
  }

  uint32_t parse_hex4() {
    if (text.size() - pos < 4) fail("truncated \\u escape");
    uint32_t code = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[pos];
      uint32_t digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("expected a hex digit in a \\u escape, found " + describe_current());
      }
      code = code * 16 + digit;
      ++pos;
    }
    return code;
  }

  std::string parse_string() {
    ++pos;  // '"'
    std::string out;
    for (;;) {
      if (pos >= text.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(text[pos]);
      if (c == '"') {
        ++pos;
        return out;
      }
      if (c < 0x20) fail("unescaped control character in a string");
      if (c == '\\') {
        const size_t escape_pos = pos;
        ++pos;
        if (pos >= text.size()) fail("unterminated string");
        const char e = text[pos++];
        switch (e) {
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            uint32_t code = parse_hex4();
            if (code >= 0xDC00 && code <= 0xDFFF) {
              fail_at(escape_pos, "lone low surrogate in a \\u escape");
            }
            if (code >= 0xD800 && code <= 0xDBFF) {
              if (text.size() - pos < 2 || text[pos] != '\\' || text[pos + 1] != 'u') {
                fail_at(escape_pos, "high surrogate in a \\u escape not followed by a low one");
              }
              pos += 2;
              const uint32_t low = parse_hex4();
              if (low < 0xDC00 || low > 0xDFFF) {
                fail_at(escape_pos, "high surrogate in a \\u escape not followed by a low one");
              }
              code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            }
            append_utf8(out, code);
            break;
          }
          default:
            pos = escape_pos + 1;
            fail("invalid escape in a string: '\\' followed by " + describe_current());
        }
        continue;
      }
      const size_t len = utf8_sequence_length(text, pos);
      if (len == 0) fail("invalid UTF-8 in a string");
      out.append(text.substr(pos, len));
      pos += len;
    }
  }
};

}  // namespace

const char* json_kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kObject:
      return "object";
    case JsonValue::Kind::kArray:
      return "array";
    case JsonValue::Kind::kString:
      return "string";
    case JsonValue::Kind::kInteger:
      return "integer";
  }
  return "?";
}

JsonValue parse_json(std::string_view text) {
  Parser parser{text};
  JsonValue value = parser.parse_value(0);
  parser.skip_whitespace();
  if (parser.pos != text.size()) {
    parser.fail("unexpected " + parser.describe_current() + " after the end of the value");
  }
  return value;
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_sequence_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace alexnet
