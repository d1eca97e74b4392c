#include "common/text/terminal_safe.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/text/utf8.h"

namespace muster {
namespace {

// C0, DEL and C1: the characters that are controls in ISO 6429 (ECMA-48).
bool IsControl(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// Characters that change how the text around them is laid out: the bidi
// embeddings, overrides, isolates and marks (Unicode UAX #9), and the line
// and paragraph separators.
bool IsLayoutControl(char32_t c) {
  return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
         (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

std::string Escape(absl::string_view bytes, bool keep_newlines_and_tabs) {
  std::string shown;
  shown.reserve(bytes.size());
  while (!bytes.empty()) {
    char32_t c = 0;
    int length = DecodeUtf8Char(bytes, &c);
    if (length == 0) {
      // Not well-formed UTF-8: this one byte; the next may start a character.
      absl::StrAppendFormat(&shown, "\\x%02x", static_cast<unsigned char>(bytes[0]));
      length = 1;
    } else if (IsControl(c) && !(keep_newlines_and_tabs && (c == '\n' || c == '\t'))) {
      for (int i = 0; i < length; ++i) {
        absl::StrAppendFormat(&shown, "\\x%02x", static_cast<unsigned char>(bytes[i]));
      }
    } else if (IsLayoutControl(c)) {
      absl::StrAppendFormat(&shown, "\\u%04x", static_cast<uint32_t>(c));
    } else {
      shown.append(bytes.data(), length);
    }
    bytes.remove_prefix(length);
  }
  return shown;
}

}  // namespace

std::string TerminalSafe(absl::string_view bytes) { return Escape(bytes, false); }

std::string TerminalSafeBlock(absl::string_view bytes) { return Escape(bytes, true); }

std::string TerminalSafeJson(absl::string_view json) {
  std::string shown;
  shown.reserve(json.size());
  while (!json.empty()) {
    char32_t c = 0;
    int length = DecodeUtf8Char(json, &c);
    // C0 controls are left alone: inside a string an encoder has escaped
    // them already, and outside one they are whitespace between tokens.
    if (length > 0 && ((c >= 0x7F && IsControl(c)) || IsLayoutControl(c))) {
      absl::StrAppendFormat(&shown, "\\u%04x", static_cast<uint32_t>(c));
    } else {
      shown.append(json.data(), std::max(length, 1));
    }
    json.remove_prefix(std::max(length, 1));
  }
  return shown;
}

}  // namespace muster
