// Glob compilation and matching.
//
// The pattern is compiled once into a flat list of ops (literal byte, any
// byte, star, byte-set class). Classes become 256-bit sets, so matching a
// class is one shift and mask. Matching is the classic iterative algorithm:
// walk text and ops together; on a mismatch, return to the most recent '*'
// and let it swallow one more byte. Only the last star ever needs to be
// revisited (an earlier star can absorb whatever a later one would), so
// there is no recursion, no allocation, and the cost is linear for the
// common one-star patterns ("web-0*", "*.dc2.example.com").
//
// Shortcuts keep the hot path short for inventory scans: a literal pattern
// is a string comparison; a pattern's literal prefix, and the literal suffix
// after its last star, are compared with memcmp, and the op loop only runs
// on what lies between.

#include "common/target/glob.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace muster {
namespace {

// Renders a byte for an error message: printable bytes as themselves.
std::string ByteForMessage(uint8_t b) {
  if (b >= 0x20 && b < 0x7f) return std::string(1, static_cast<char>(b));
  return absl::StrCat("\\x", absl::Hex(b, absl::kZeroPad2));
}

// True if pattern[i] is an unescaped '[' that starts a POSIX bracket form
// ("[:digit:]", "[.x.]", "[=e=]"). These are rejected rather than read as
// plain members, so "[[:digit:]]" is an error, not the set {[,:,d,i,g,t}
// followed by a literal ']'.
bool IsPosixBracketStart(absl::string_view pattern, size_t i) {
  return pattern[i] == '[' && i + 1 < pattern.size() &&
         (pattern[i + 1] == ':' || pattern[i + 1] == '.' ||
          pattern[i + 1] == '=');
}

absl::Status PosixBracketError(size_t position) {
  return absl::InvalidArgumentError(absl::StrCat(
      "POSIX bracket form inside a character class at position ", position,
      " is not supported (use e.g. [0-9]; write '\\[' for a literal '[')"));
}

}  // namespace

absl::StatusOr<GlobPattern> GlobPattern::Compile(absl::string_view pattern,
                                                 size_t position_offset) {
  GlobPattern glob;
  glob.pattern_ = std::string(pattern);
  const size_t n = pattern.size();
  bool in_prefix = true;
  size_t i = 0;
  while (i < n) {
    const uint8_t c = static_cast<uint8_t>(pattern[i]);
    if (c == '*') {
      // Consecutive stars are one star.
      if (glob.ops_.empty() || glob.ops_.back().kind != OpKind::kStar) {
        glob.ops_.push_back({OpKind::kStar, 0, 0});
      }
      glob.has_star_ = true;
      in_prefix = false;
      ++i;
    } else if (c == '?') {
      glob.ops_.push_back({OpKind::kAnyByte, 0, 0});
      in_prefix = false;
      ++i;
    } else if (c == '[') {
      const size_t open = i;
      ByteSet set;
      ++i;
      bool negate = false;
      if (i < n && (pattern[i] == '!' || pattern[i] == '^')) {
        negate = true;
        ++i;
      }
      bool closed = false;
      bool first = true;
      while (i < n) {
        uint8_t lo = static_cast<uint8_t>(pattern[i]);
        if (lo == ']' && !first) {
          closed = true;
          ++i;
          break;
        }
        first = false;
        const size_t lo_pos = i;
        if (IsPosixBracketStart(pattern, i)) {
          return PosixBracketError(position_offset + i);
        }
        if (lo == '\\') {
          if (i + 1 >= n) break;  // Unterminated; reported below.
          lo = static_cast<uint8_t>(pattern[++i]);
        }
        ++i;
        // A range needs a '-' followed by something other than the ']'.
        if (i + 1 < n && pattern[i] == '-' && pattern[i + 1] != ']') {
          ++i;
          if (IsPosixBracketStart(pattern, i)) {
            return PosixBracketError(position_offset + i);
          }
          uint8_t hi = static_cast<uint8_t>(pattern[i]);
          if (hi == '\\') {
            if (i + 1 >= n) break;
            hi = static_cast<uint8_t>(pattern[++i]);
          }
          ++i;
          if (hi < lo) {
            return absl::InvalidArgumentError(absl::StrCat(
                "invalid range '", ByteForMessage(lo), "-", ByteForMessage(hi),
                "' in character class at position ", position_offset + lo_pos));
          }
          for (unsigned b = lo; b <= hi; ++b) set.Add(static_cast<uint8_t>(b));
        } else {
          set.Add(lo);
        }
      }
      if (!closed) {
        return absl::InvalidArgumentError(
            absl::StrCat("unterminated character class at position ",
                         position_offset + open));
      }
      if (negate) {
        for (uint64_t& word : set.bits) word = ~word;
      }
      if (glob.classes_.size() >= UINT16_MAX) {
        return absl::InvalidArgumentError(absl::StrCat(
            "too many character classes at position ", position_offset + open));
      }
      glob.ops_.push_back({OpKind::kClass, 0,
                           static_cast<uint16_t>(glob.classes_.size())});
      glob.classes_.push_back(set);
      in_prefix = false;
    } else {
      uint8_t literal = c;
      if (c == '\\') {
        if (i + 1 >= n) {
          return absl::InvalidArgumentError(absl::StrCat(
              "trailing backslash at position ", position_offset + i));
        }
        literal = static_cast<uint8_t>(pattern[++i]);
      }
      ++i;
      glob.ops_.push_back({OpKind::kLiteral, literal, 0});
      if (in_prefix) glob.literal_prefix_.push_back(static_cast<char>(literal));
    }
  }
  for (const Op& op : glob.ops_) {
    if (op.kind != OpKind::kStar) ++glob.min_length_;
  }
  if (glob.has_star_) {
    size_t begin = glob.ops_.size();
    while (begin > 0 && glob.ops_[begin - 1].kind == OpKind::kLiteral) --begin;
    glob.suffix_op_begin_ = begin;
    for (size_t i = begin; i < glob.ops_.size(); ++i) {
      glob.literal_suffix_.push_back(static_cast<char>(glob.ops_[i].byte));
    }
  }
  if (glob.has_star_) {
    glob.only_stars_between_ = true;
    for (size_t i = glob.literal_prefix_.size(); i < glob.suffix_op_begin_; ++i) {
      if (glob.ops_[i].kind != OpKind::kStar) glob.only_stars_between_ = false;
    }
  }
  glob.is_literal_ = in_prefix;  // Never left the literal prefix.
  if (glob.is_literal_) glob.literal_ = glob.literal_prefix_;
  return glob;
}

bool GlobPattern::Matches(absl::string_view text) const {
  if (is_literal_) return text == literal_;
  if (text.size() < min_length_) return false;
  if (!has_star_ && text.size() != min_length_) return false;
  if (!literal_prefix_.empty() &&
      std::memcmp(text.data(), literal_prefix_.data(),
                  literal_prefix_.size()) != 0) {
    return false;
  }
  if (!literal_suffix_.empty()) {
    // Pattern is P*S with S literal: text must end with S, and the rest must
    // match P* (the star absorbs whatever lies between).
    const size_t rest = text.size() - literal_suffix_.size();
    if (std::memcmp(text.data() + rest, literal_suffix_.data(),
                    literal_suffix_.size()) != 0) {
      return false;
    }
    if (only_stars_between_) return true;
    return MatchOps(text.substr(0, rest), suffix_op_begin_);
  }
  // The length check keeps prefix and suffix apart; stars take the rest.
  if (only_stars_between_) return true;
  return MatchOps(text, ops_.size());
}

bool GlobPattern::MatchOps(absl::string_view text, size_t num_ops) const {
  const size_t n = text.size();
  constexpr size_t kNoStar = static_cast<size_t>(-1);
  size_t p = 0;
  size_t t = 0;
  size_t star_p = kNoStar;  // Op index just after the last star seen.
  size_t star_t = 0;        // Text index that star is currently matched up to.
  while (t < n) {
    if (p < num_ops) {
      const Op& op = ops_[p];
      const uint8_t b = static_cast<uint8_t>(text[t]);
      bool ok = false;
      switch (op.kind) {
        case OpKind::kStar:
          star_p = ++p;
          star_t = t;
          continue;
        case OpKind::kLiteral:
          ok = (b == op.byte);
          break;
        case OpKind::kAnyByte:
          ok = true;
          break;
        case OpKind::kClass:
          ok = classes_[op.class_index].Contains(b);
          break;
      }
      if (ok) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == kNoStar) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < num_ops && ops_[p].kind == OpKind::kStar) ++p;
  return p == num_ops;
}

}  // namespace muster
