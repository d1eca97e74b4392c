#include "common/text/utf8.h"

#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(Utf8Test, WellFormedCharactersDecodeWithTheirLength) {
  char32_t c = 0;
  EXPECT_EQ(DecodeUtf8Char("a", &c), 1);
  EXPECT_EQ(c, U'a');
  EXPECT_EQ(DecodeUtf8Char("\xC3\xA9x", &c), 2);  // é
  EXPECT_EQ(c, 0xE9u);
  EXPECT_EQ(DecodeUtf8Char("\xE2\x82\xAC", &c), 3);  // €
  EXPECT_EQ(c, 0x20ACu);
  EXPECT_EQ(DecodeUtf8Char("\xF0\x9F\x98\x80", &c), 4);  // emoji
  EXPECT_EQ(c, 0x1F600u);
  EXPECT_EQ(DecodeUtf8Char(absl::string_view("\0", 1), &c), 1);
  EXPECT_EQ(c, 0u);
}

TEST(Utf8Test, IllFormedSequencesAreRejected) {
  char32_t c = 0;
  EXPECT_EQ(DecodeUtf8Char("", &c), 0);
  EXPECT_EQ(DecodeUtf8Char("\xFF", &c), 0);
  EXPECT_EQ(DecodeUtf8Char("\x80", &c), 0);              // lone continuation
  EXPECT_EQ(DecodeUtf8Char("\xC3", &c), 0);              // truncated
  EXPECT_EQ(DecodeUtf8Char("\xC0\xAF", &c), 0);          // overlong '/'
  EXPECT_EQ(DecodeUtf8Char("\xED\xA0\x80", &c), 0);      // surrogate
  EXPECT_EQ(DecodeUtf8Char("\xF4\x90\x80\x80", &c), 0);  // above U+10FFFF
  EXPECT_TRUE(IsValidUtf8("plain text \xC3\xA9"));
  EXPECT_FALSE(IsValidUtf8("a\xFF" "b"));
}

TEST(Utf8Test, ReplacementPutsOneReplacementCharacterPerInvalidByte) {
  EXPECT_EQ(ReplaceInvalidUtf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(ReplaceInvalidUtf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(ReplaceInvalidUtf8("\xC3(\xE2\x82"),
            "\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD");
  for (int b = 0; b < 256; ++b) {
    std::string one(1, static_cast<char>(b));
    EXPECT_TRUE(IsValidUtf8(ReplaceInvalidUtf8(one))) << b;
  }
}

}  // namespace
}  // namespace muster
