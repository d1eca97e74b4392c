// UTF-8 checks for output bytes. A return's stdout and stderr are raw bytes
// (docs/PROTOCOL.md 4); where they must become text (JSON, a terminal),
// these say which bytes are well-formed UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF) and which are not.
#ifndef MUSTER_COMMON_TEXT_UTF8_H_
#define MUSTER_COMMON_TEXT_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace muster {

// The length (1..4) of the well-formed UTF-8 character at the start of
// `bytes`, with its code point in *code_point; 0 when `bytes` is empty or
// does not start with one.
int DecodeUtf8Char(absl::string_view bytes, char32_t* code_point);

// True when all of `bytes` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view bytes);

// `bytes` with every byte that is not part of a well-formed character
// replaced by U+FFFD (one per byte); valid input comes back unchanged.
std::string ReplaceInvalidUtf8(absl::string_view bytes);

}  // namespace muster

#endif  // MUSTER_COMMON_TEXT_UTF8_H_
