#include "common/target/glob.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muster {
namespace {

using ::testing::HasSubstr;

bool GlobMatches(absl::string_view pattern, absl::string_view text) {
  absl::StatusOr<GlobPattern> glob = GlobPattern::Compile(pattern);
  EXPECT_TRUE(glob.ok()) << pattern << ": " << glob.status();
  return glob.ok() && glob->Matches(text);
}

std::string CompileError(absl::string_view pattern, size_t offset = 0) {
  absl::StatusOr<GlobPattern> glob = GlobPattern::Compile(pattern, offset);
  EXPECT_FALSE(glob.ok()) << pattern << " compiled";
  if (glob.ok()) return "";
  EXPECT_EQ(glob.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(glob.status().message());
}

TEST(GlobTest, LiteralMatchesOnlyItself) {
  EXPECT_TRUE(GlobMatches("web-1", "web-1"));
  EXPECT_FALSE(GlobMatches("web-1", "web-10"));
  EXPECT_FALSE(GlobMatches("web-1", "web-"));
  EXPECT_FALSE(GlobMatches("web-1", "xweb-1"));
  EXPECT_FALSE(GlobMatches("web-1", ""));
  EXPECT_TRUE(GlobPattern::Compile("web-1")->is_literal());
  EXPECT_FALSE(GlobPattern::Compile("web-*")->is_literal());
}

TEST(GlobTest, EmptyPatternMatchesOnlyEmptyText) {
  EXPECT_TRUE(GlobMatches("", ""));
  EXPECT_FALSE(GlobMatches("", "a"));
}

TEST(GlobTest, StarAloneMatchesEverythingIncludingEmptyAndDots) {
  EXPECT_TRUE(GlobMatches("*", ""));
  EXPECT_TRUE(GlobMatches("*", "web-1.dc1.example.com"));
  EXPECT_TRUE(GlobMatches("**", "x"));
  EXPECT_TRUE(GlobMatches("***", ""));
}

TEST(GlobTest, TrailingStarIsPrefixMatch) {
  EXPECT_TRUE(GlobMatches("web-0*", "web-0"));
  EXPECT_TRUE(GlobMatches("web-0*", "web-00042.dc2.example.com"));
  EXPECT_FALSE(GlobMatches("web-0*", "web-1"));
  EXPECT_FALSE(GlobMatches("web-0*", "web-"));
}

TEST(GlobTest, LeadingStarIsSuffixMatch) {
  EXPECT_TRUE(GlobMatches("*.dc2.example.com", "web-1.dc2.example.com"));
  EXPECT_TRUE(GlobMatches("*.dc2.example.com", ".dc2.example.com"));
  EXPECT_FALSE(GlobMatches("*.dc2.example.com", "web-1.dc3.example.com"));
  EXPECT_FALSE(GlobMatches("*.dc2.example.com", "dc2.example.com"));
}

TEST(GlobTest, MultipleStarsBacktrack) {
  EXPECT_TRUE(GlobMatches("*web*dc2*", "a-web-1.dc2.x"));
  EXPECT_TRUE(GlobMatches("*web*dc2*", "webdc2"));
  EXPECT_FALSE(GlobMatches("*web*dc2*", "dc2-web"));
  EXPECT_TRUE(GlobMatches("a*b*c", "abbbbc"));
  EXPECT_TRUE(GlobMatches("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(GlobMatches("a*b*c", "aXbYbZcd"));
  EXPECT_TRUE(GlobMatches("*aab", "aaaab"));
  EXPECT_TRUE(GlobMatches("*ab*ab", "xabyabab"));
  EXPECT_FALSE(GlobMatches("*ab*ab", "xabyaba"));
}

TEST(GlobTest, LiteralSuffixAfterLastStar) {
  EXPECT_FALSE(GlobMatches("a*a", "a"));
  EXPECT_TRUE(GlobMatches("a*a", "aa"));
  EXPECT_FALSE(GlobMatches("ab*b", "ab"));
  EXPECT_TRUE(GlobMatches("ab*b", "abb"));
  EXPECT_TRUE(GlobMatches("*ab", "ab"));
  EXPECT_TRUE(GlobMatches("x*[0-9]*.com", "x-12.dc1.com"));
  EXPECT_FALSE(GlobMatches("x*[0-9]*.com", "x-ab.dc.com"));
  EXPECT_TRUE(GlobMatches("*?.com", "a.com"));
  EXPECT_FALSE(GlobMatches("*?.com", ".com"));
  EXPECT_TRUE(GlobMatches("*\\*", "a*"));
  EXPECT_FALSE(GlobMatches("*\\*", "a"));
}

TEST(GlobTest, OnlyStarsBetweenLiteralPrefixAndSuffix) {
  EXPECT_TRUE(GlobMatches("web-*.com", "web-.com"));
  EXPECT_TRUE(GlobMatches("web-**.com", "web-1.dc1.example.com"));
  EXPECT_FALSE(GlobMatches("web-*.com", "web-1.org"));
  EXPECT_FALSE(GlobMatches("web-*.com", "db-1.com"));
  EXPECT_FALSE(GlobMatches("web-*.com", "web-.co"));
  // Prefix and suffix may not share bytes of the text.
  EXPECT_FALSE(GlobMatches("aba*aba", "ababa"));
  EXPECT_TRUE(GlobMatches("aba*aba", "abaaba"));
  EXPECT_TRUE(GlobMatches("\\**\\*", "**"));
  EXPECT_FALSE(GlobMatches("\\**\\*", "*"));
  EXPECT_TRUE(GlobMatches("*", std::string(100, 'x')));
}

TEST(GlobTest, PathologicalStarsStayFast) {
  const std::string text(2000, 'a');
  EXPECT_FALSE(GlobMatches("*a*a*a*a*a*a*a*a*a*a*b", text));
  EXPECT_TRUE(GlobMatches("*a*a*a*a*a*a*a*a*a*a*", text));
}

TEST(GlobTest, QuestionMarkMatchesExactlyOneByte) {
  EXPECT_TRUE(GlobMatches("web-?", "web-1"));
  EXPECT_FALSE(GlobMatches("web-?", "web-"));
  EXPECT_FALSE(GlobMatches("web-?", "web-12"));
  EXPECT_TRUE(GlobMatches("??", ".."));
  EXPECT_TRUE(GlobMatches("?*", "x"));
  EXPECT_FALSE(GlobMatches("?*", ""));
  EXPECT_TRUE(GlobMatches("*?", "xy"));
}

TEST(GlobTest, CharacterClassesAndRanges) {
  EXPECT_TRUE(GlobMatches("web-[abc]", "web-b"));
  EXPECT_FALSE(GlobMatches("web-[abc]", "web-d"));
  EXPECT_TRUE(GlobMatches("web-[0-9][0-9]", "web-42"));
  EXPECT_FALSE(GlobMatches("web-[0-9][0-9]", "web-4x"));
  EXPECT_TRUE(GlobMatches("[a-cx-z]", "y"));
  EXPECT_FALSE(GlobMatches("[a-cx-z]", "m"));
  EXPECT_TRUE(GlobMatches("[a-a]", "a"));
  EXPECT_FALSE(GlobMatches("[abc]", ""));
}

TEST(GlobTest, NegatedClassesWithBangOrCaret) {
  EXPECT_TRUE(GlobMatches("web-[!0-4]", "web-7"));
  EXPECT_FALSE(GlobMatches("web-[!0-4]", "web-3"));
  EXPECT_TRUE(GlobMatches("web-[^0-4]", "web-7"));
  EXPECT_FALSE(GlobMatches("web-[^0-4]", "web-3"));
  EXPECT_FALSE(GlobMatches("[!a]", ""));
  EXPECT_TRUE(GlobMatches("[!a]", "\xff"));
}

TEST(GlobTest, ClassSpecialMembers) {
  // ']' first is a member, '-' first or last is a member.
  EXPECT_TRUE(GlobMatches("[]]", "]"));
  EXPECT_TRUE(GlobMatches("[]a]", "a"));
  EXPECT_TRUE(GlobMatches("[!]]", "x"));
  EXPECT_FALSE(GlobMatches("[!]]", "]"));
  EXPECT_TRUE(GlobMatches("[-a]", "-"));
  EXPECT_TRUE(GlobMatches("[a-]", "-"));
  EXPECT_FALSE(GlobMatches("[a-]", "b"));
  // Wildcards are literal inside a class.
  EXPECT_TRUE(GlobMatches("[*?]", "*"));
  EXPECT_FALSE(GlobMatches("[*?]", "x"));
  EXPECT_TRUE(GlobMatches("[!!]", "x"));
  EXPECT_TRUE(GlobMatches("[a!]", "!"));
}

TEST(GlobTest, BackslashEscapes) {
  EXPECT_TRUE(GlobMatches("web\\*", "web*"));
  EXPECT_FALSE(GlobMatches("web\\*", "web-1"));
  EXPECT_TRUE(GlobMatches("\\?", "?"));
  EXPECT_FALSE(GlobMatches("\\?", "x"));
  EXPECT_TRUE(GlobMatches("\\[a]", "[a]"));
  EXPECT_TRUE(GlobMatches("\\\\", "\\"));
  EXPECT_TRUE(GlobMatches("\\a", "a"));
  EXPECT_TRUE(GlobMatches("[\\]]", "]"));
  EXPECT_TRUE(GlobMatches("[a\\-z]", "-"));
  EXPECT_FALSE(GlobMatches("[a\\-z]", "m"));
  EXPECT_TRUE(GlobPattern::Compile("web\\*")->is_literal());
}

TEST(GlobTest, EmptySegmentsBetweenDots) {
  EXPECT_TRUE(GlobMatches("web..com", "web..com"));
  EXPECT_TRUE(GlobMatches("*..*", "a..b"));
  EXPECT_FALSE(GlobMatches("*..*", "a.b"));
  EXPECT_TRUE(GlobMatches("*.*", "."));
}

TEST(GlobTest, UnterminatedClassReportsPositionOfBracket) {
  EXPECT_EQ(CompileError("web["), "unterminated character class at position 3");
  EXPECT_EQ(CompileError("[]"), "unterminated character class at position 0");
  EXPECT_EQ(CompileError("a[!]"), "unterminated character class at position 1");
  EXPECT_EQ(CompileError("a[b\\]"),
            "unterminated character class at position 1");
  EXPECT_EQ(CompileError("[a-"), "unterminated character class at position 0");
}

TEST(GlobTest, PositionOffsetIsAdded) {
  EXPECT_EQ(CompileError("web[", 10),
            "unterminated character class at position 13");
}

TEST(GlobTest, TrailingBackslashIsAnError) {
  EXPECT_EQ(CompileError("web\\"), "trailing backslash at position 3");
}

TEST(GlobTest, PosixBracketFormsAreAnError) {
  EXPECT_EQ(CompileError("[[:digit:]]"),
            "POSIX bracket form inside a character class at position 1 is "
            "not supported (use e.g. [0-9]; write '\\[' for a literal '[')");
  EXPECT_THAT(CompileError("x[a[.a.]]"), HasSubstr("at position 3"));
  EXPECT_THAT(CompileError("[a-[=a=]]"), HasSubstr("at position 3"));
  // Escaped, or outside a class, '[' followed by ':' is ordinary.
  EXPECT_TRUE(GlobMatches("[\\[:]", ":"));
  EXPECT_TRUE(GlobMatches("\\[:x", "[:x"));
  EXPECT_TRUE(GlobMatches("[:]", ":"));
}

TEST(GlobTest, ReversedRangeIsAnError) {
  EXPECT_THAT(CompileError("x[z-a]"),
              HasSubstr("invalid range 'z-a' in character class at position 2"));
}

}  // namespace
}  // namespace muster
