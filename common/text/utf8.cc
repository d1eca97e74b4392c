#include "common/text/utf8.h"

namespace muster {

int DecodeUtf8Char(absl::string_view bytes, char32_t* code_point) {
  if (bytes.empty()) return 0;
  auto byte = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) {
    *code_point = lead;
    return 1;
  }
  int length;
  char32_t value;
  char32_t min;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, min = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, min = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, min = 0x10000;
  } else {
    return 0;  // a continuation byte or 0xF8..0xFF
  }
  if (bytes.size() < static_cast<size_t>(length)) return 0;
  for (int i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(i) & 0x3F);
  }
  if (value < min || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  *code_point = value;
  return length;
}

bool IsValidUtf8(absl::string_view bytes) {
  char32_t code_point;
  while (!bytes.empty()) {
    int length = DecodeUtf8Char(bytes, &code_point);
    if (length == 0) return false;
    bytes.remove_prefix(length);
  }
  return true;
}

std::string ReplaceInvalidUtf8(absl::string_view bytes) {
  static constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string text;
  text.reserve(bytes.size());
  char32_t code_point;
  while (!bytes.empty()) {
    int length = DecodeUtf8Char(bytes, &code_point);
    if (length == 0) {
      text.append(kReplacement.data(), kReplacement.size());
      length = 1;
    } else {
      text.append(bytes.data(), length);
    }
    bytes.remove_prefix(length);
  }
  return text;
}

}  // namespace muster
