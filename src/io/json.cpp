// JSON through nlohmann-json: its SAX parser tokenises and checks the syntax (strings, escapes,
// UTF-8, numbers); the handler below builds a JsonValue and adds our strictness on top, at the
// byte where it applies: only objects, arrays, strings and integers; no duplicate key; no
// nesting deeper than kMaxDepth.
#include "alexnet/json.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstddef>
#include <iterator>
#include <limits>

#include "alexnet/error.h"

namespace alexnet {

namespace {

// Headers come from files we did not necessarily write. nlohmann's parser does not recurse, but
// a deep "[[[[..." still says the file is not a safetensors header (they nest three levels).
constexpr int kMaxDepth = 64;

// A char iterator that records the offset of the last byte the parser read, so that the handler
// can say where a value it refuses stands (the SAX events carry no position).
class TrackedChars {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackedChars(const char* p, const char* base, size_t* last_read)
      : p_(p), base_(base), last_read_(last_read) {}
  reference operator*() const {
    *last_read_ = static_cast<size_t>(p_ - base_);
    return *p_;
  }
  TrackedChars& operator++() {
    ++p_;
    return *this;
  }
  TrackedChars operator++(int) {
    TrackedChars old = *this;
    ++p_;
    return old;
  }
  bool operator==(const TrackedChars& o) const { return p_ == o.p_; }
  bool operator!=(const TrackedChars& o) const { return p_ != o.p_; }

 private:
  const char* p_;
  const char* base_;
  size_t* last_read_;
};

// "at byte 17 (line 1, column 18)" for the byte at `offset` of `text`.
std::string where(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "at byte " + std::to_string(offset) + " (line " + std::to_string(line) + ", column " +
         std::to_string(column) + ")";
}

class Builder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  Builder(std::string_view text, const size_t* last_read) : text_(text), last_read_(last_read) {}

  JsonValue root;
  std::string error;  // set when a handler refused the document

  bool null() override { return refuse_literal(); }
  bool boolean(bool) override { return refuse_literal(); }
  bool number_integer(number_integer_t v) override { return add_integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return refuse(number_start(std::to_string(v)), "integer out of the 64-bit range");
    return add_integer(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t, const string_t& token) override {
    // nlohmann reads an integer past int64/uint64 as a float; say what it is.
    const bool integer_syntax = token.find_first_not_of("-0123456789") == std::string::npos;
    if (integer_syntax) return refuse(number_start(token), "integer out of the 64-bit range");
    return refuse(number_start(token), "only integers are supported, found " + token);
  }
  bool string(string_t& s) override {
    JsonValue v;
    v.kind = JsonValue::Kind::kString;
    v.string = std::move(s);
    return add(std::move(v));
  }
  bool binary(binary_t&) override { return refuse(*last_read_, "binary values"); }
  bool start_object(std::size_t) override { return open(JsonValue::Kind::kObject); }
  bool key(string_t& k) override {
    // The parser has just read the key's closing quote: its opening quote is the first quote
    // before that one that no backslash escapes.
    JsonValue& object = *stack_.back();
    for (const auto& [existing, value] : object.object) {
      (void)value;
      if (existing == k) return refuse(key_start(), "duplicate key \"" + k + "\"");
    }
    object.object.emplace_back(std::move(k), JsonValue{});
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(JsonValue::Kind::kArray); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 4: syntax error ..."
    // becomes "at byte 3 (line 1, column 4): syntax error ...": nlohmann counts from 1.
    std::string what = ex.what();
    if (const size_t colon = what.find(": "); colon != std::string::npos)
      what = what.substr(colon + 2);
    error = where(text_, position > 0 ? position - 1 : 0) + ": " + what;
    return false;
  }

 private:
  bool refuse(size_t offset, const std::string& what) {
    error = where(text_, offset) + ": " + what;
    return false;
  }
  bool refuse_literal() {
    // The parser has read the whole literal (4 or 5 bytes); point at its first letter.
    size_t at = *last_read_;
    while (at > 0 && std::isalpha(static_cast<unsigned char>(text_[at - 1]))) --at;
    return refuse(at, "true, false and null are not supported");
  }
  // Where a number token starts: the parser has read it and at most one byte after it.
  size_t number_start(const std::string& token) const {
    const size_t end = *last_read_ + 1;
    for (size_t lookahead : {size_t{1}, size_t{0}})
      if (end >= lookahead + token.size() &&
          text_.substr(end - lookahead - token.size(), token.size()) == token)
        return end - lookahead - token.size();
    return *last_read_;
  }
  size_t key_start() const {
    size_t at = *last_read_;  // the closing quote
    while (at > 0) {
      --at;
      if (text_[at] != '"') continue;
      size_t backslashes = 0;
      while (at > backslashes && text_[at - 1 - backslashes] == '\\') ++backslashes;
      if (backslashes % 2 == 0) return at;
    }
    return at;
  }
  bool add_integer(int64_t i) {
    JsonValue v;
    v.kind = JsonValue::Kind::kInteger;
    v.integer = i;
    return add(std::move(v));
  }
  // Places v where the document is: the root, the next array element, or the last key's value.
  JsonValue* place(JsonValue v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    JsonValue& parent = *stack_.back();
    if (parent.kind == JsonValue::Kind::kArray) {
      parent.array.push_back(std::move(v));
      return &parent.array.back();
    }
    parent.object.back().second = std::move(v);
    return &parent.object.back().second;
  }
  bool add(JsonValue v) {
    place(std::move(v));
    return true;
  }
  bool open(JsonValue::Kind kind) {
    if (static_cast<int>(stack_.size()) >= kMaxDepth)
      return refuse(*last_read_, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    JsonValue v;
    v.kind = kind;
    stack_.push_back(place(std::move(v)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::string_view text_;
  const size_t* last_read_;
  // The open objects and arrays, innermost last. Pointers stay valid: a container's elements
  // are only appended to while it is the innermost one, and it is left before its parent grows.
  std::vector<JsonValue*> stack_;
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
  size_t last_read = 0;
  Builder builder(text, &last_read);
  const TrackedChars begin(text.data(), text.data(), &last_read);
  const TrackedChars end(text.data() + text.size(), text.data(), &last_read);
  if (!nlohmann::json::sax_parse(begin, end, &builder) || !builder.error.empty())
    throw Error(builder.error.empty() ? "invalid JSON" : builder.error);
  return std::move(builder.root);
}

std::string json_quote(std::string_view s) {
  try {
    return nlohmann::json(std::string(s)).dump();
  } catch (const nlohmann::json::type_error&) {
    throw Error("a JSON string must be valid UTF-8");
  }
}

bool is_valid_utf8(std::string_view s) {
  try {
    (void)nlohmann::json(std::string(s)).dump();  // dump refuses ill-formed UTF-8
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

}  // namespace alexnet
