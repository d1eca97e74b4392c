// GlobPattern: a shell glob compiled once and matched against whole strings.
//
// Syntax (bytes, not UTF-8 characters; case-sensitive; the contract is the
// "Target grammar" section of docs/PROTOCOL.md):
//   *        any sequence of bytes, including none and including '.'
//   ?        exactly one byte
//   [abc]    one byte from the set; [a-z] ranges; [!x] or [^x] negates;
//            a ']' right after '[' (or after '[!' / '[^') is a member;
//            '-' first or last is a member; '\' escapes the next byte;
//            POSIX forms such as [[:digit:]] (an unescaped '[' followed by
//            ':', '.' or '=' inside a class) are an error (use [0-9])
//   \c       the byte c, literally (any c)
// Anything else matches itself. The whole text must match (no substring
// search). Errors: an unterminated class, a reversed range such as [z-a],
// a POSIX form, a trailing '\'. Invalid patterns are rejected at Compile
// time, so Matches never fails and never allocates.

#ifndef MUSTER_COMMON_TARGET_GLOB_H_
#define MUSTER_COMMON_TARGET_GLOB_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster {

class GlobPattern {
 public:
  // Compiles `pattern`. On a syntax error returns InvalidArgument whose
  // message names the problem and its byte position, e.g.
  // "unterminated character class at position 3". Positions are
  // `position_offset` + the offset inside `pattern`, so a caller embedding
  // the glob in a larger expression can report positions in that expression.
  static absl::StatusOr<GlobPattern> Compile(absl::string_view pattern,
                                             size_t position_offset = 0);

  // True if the whole of `text` matches. Thread-safe; does not allocate.
  // Worst case O(|pattern| * |text|), linear for patterns with one '*'.
  bool Matches(absl::string_view text) const;

  // The pattern as given to Compile.
  const std::string& pattern() const { return pattern_; }

  // True if the pattern has no wildcard, i.e. it matches exactly one string.
  bool is_literal() const { return is_literal_; }

 private:
  enum class OpKind : uint8_t { kLiteral, kAnyByte, kStar, kClass };
  struct Op {
    OpKind kind;
    uint8_t byte;          // kLiteral: the byte to match.
    uint16_t class_index;  // kClass: index into classes_.
  };
  // A set of bytes, one bit each.
  struct ByteSet {
    uint64_t bits[4] = {0, 0, 0, 0};
    void Add(uint8_t b) { bits[b >> 6] |= uint64_t{1} << (b & 63); }
    bool Contains(uint8_t b) const {
      return (bits[b >> 6] >> (b & 63)) & 1;
    }
  };

  GlobPattern() = default;

  // Matches text against ops_[0, num_ops).
  bool MatchOps(absl::string_view text, size_t num_ops) const;

  std::string pattern_;
  std::vector<Op> ops_;
  std::vector<ByteSet> classes_;
  // Literal text every match starts with; checked first as a quick reject.
  std::string literal_prefix_;
  // If the pattern has a star and only literals after its last star: those
  // literals, and the index of the first of their ops. Matching then checks
  // the suffix with one comparison and runs the ops loop on the rest.
  std::string literal_suffix_;
  size_t suffix_op_begin_ = 0;
  // Minimum length of a matching text (number of non-star ops).
  size_t min_length_ = 0;
  bool has_star_ = false;
  // The pattern is its literal prefix, stars, and its literal suffix
  // ("*", "web-*", "*.dc1.example.com"): the length, prefix and suffix
  // checks decide a match alone.
  bool only_stars_between_ = false;
  bool is_literal_ = false;
  // The decoded string for a literal pattern (escapes removed).
  std::string literal_;
};

}  // namespace muster

#endif  // MUSTER_COMMON_TARGET_GLOB_H_
