#include "common/text/terminal_safe.h"

#include <nlohmann/json.hpp>

#include <string>

#include "gtest/gtest.h"

namespace muster {
namespace {

// True when `text` holds no byte a terminal acts on: no C0 control but
// those in `allowed`, no DEL, no byte >= 0x80 that is not part of
// well-formed UTF-8 text without C1 controls.
void ExpectNothingATerminalActsOn(const std::string& text, const std::string& allowed) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(text[i]);
    if (u < 0x20) {
      EXPECT_NE(allowed.find(static_cast<char>(u)), std::string::npos)
          << "control byte " << static_cast<int>(u) << " at " << i << " in " << text;
    }
    EXPECT_NE(u, 0x7f) << "DEL at " << i;
    // A UTF-8 encoded C1 control is C2 80..C2 9F.
    if (u == 0xC2 && i + 1 < text.size()) {
      unsigned char next = static_cast<unsigned char>(text[i + 1]);
      EXPECT_FALSE(next >= 0x80 && next <= 0x9F) << "C1 control at " << i << " in " << text;
    }
  }
}

TEST(TerminalSafeTest, PrintableUtf8IsKeptAsItIs) {
  EXPECT_EQ(TerminalSafe("web-01.dc1.example.com"), "web-01.dc1.example.com");
  EXPECT_EQ(TerminalSafe("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 a\\b \"q\""),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 a\\b \"q\"");
  EXPECT_EQ(TerminalSafe(""), "");
}

TEST(TerminalSafeTest, ClearScreenSequenceIsShownNotSent) {
  EXPECT_EQ(TerminalSafe("\x1b[2J\x1b[H" "all good"), "\\x1b[2J\\x1b[H" "all good");
  EXPECT_EQ(TerminalSafeBlock("\x1b[31mred\x1b[0m\n"), "\\x1b[31mred\\x1b[0m\n");
}

TEST(TerminalSafeTest, Osc8HyperlinkAndOsc52ClipboardAreShownNotSent) {
  // ESC ] 8 ; ; URL ST text ESC ] 8 ; ; ST, with ST as ESC \ and as BEL.
  EXPECT_EQ(TerminalSafe("\x1b]8;;https://evil.example/\x1b\\docs\x1b]8;;\x1b\\"),
            "\\x1b]8;;https://evil.example/\\x1b\\docs\\x1b]8;;\\x1b\\");
  EXPECT_EQ(TerminalSafe("\x1b]8;;https://evil.example/\x07" "docs\x1b]8;;\x07"),
            "\\x1b]8;;https://evil.example/\\x07docs\\x1b]8;;\\x07");
  EXPECT_EQ(TerminalSafe("\x1b]52;c;cm0gLXJmIH4K\x07"), "\\x1b]52;c;cm0gLXJmIH4K\\x07");
}

TEST(TerminalSafeTest, CarriageReturnCannotOverwriteWhatWasPrinted) {
  // On a terminal "rm -rf /\rls -l    " would show only "ls -l    ".
  EXPECT_EQ(TerminalSafe("rm -rf /\rls -l    "), "rm -rf /\\x0dls -l    ");
  EXPECT_EQ(TerminalSafeBlock("50%\r100%\r\n"), "50%\\x0d100%\\x0d\n");
  EXPECT_EQ(TerminalSafe("abc\b\b\bxyz"), "abc\\x08\\x08\\x08xyz");
}

TEST(TerminalSafeTest, C1ControlsAreShownRawAndUtf8Encoded) {
  // 0x9B is CSI: "\x9b" "2J" clears the screen on a terminal that takes
  // 8-bit controls, U+009B (C2 9B) on one that decodes UTF-8 first.
  EXPECT_EQ(TerminalSafe("\x9b" "2J"), "\\x9b2J");
  EXPECT_EQ(TerminalSafe("\xC2\x9b" "2J"), "\\xc2\\x9b2J");
  EXPECT_EQ(TerminalSafe("\xC2\x85"), "\\xc2\\x85");  // NEL
  EXPECT_EQ(TerminalSafe("\xC2\xA0"), "\xC2\xA0");    // U+00A0 is printable
  EXPECT_EQ(TerminalSafe("\x7f"), "\\x7f");
}

TEST(TerminalSafeTest, InvalidUtf8IsShownByteByByte) {
  EXPECT_EQ(TerminalSafe("a\xff" "b"), "a\\xffb");
  EXPECT_EQ(TerminalSafe("\xC3(x"), "\\xc3(x");                // truncated, then ASCII
  EXPECT_EQ(TerminalSafe("\xC0\xAF"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(TerminalSafe("\xED\xA0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(TerminalSafe("\xE2\x82"), "\\xe2\\x82");           // cut at the end
}

TEST(TerminalSafeTest, NewlinesAndTabsBreakAFieldButNotABlock) {
  EXPECT_EQ(TerminalSafe("line1\nline2\tx"), "line1\\x0aline2\\x09x");
  EXPECT_EQ(TerminalSafeBlock("line1\nline2\tx"), "line1\nline2\tx");
  EXPECT_EQ(TerminalSafe(std::string("a\0b", 3)), "a\\x00b");
}

TEST(TerminalSafeTest, BidiControlsCannotReorderWhatIsShown) {
  // "Trojan Source": U+202E makes "user\u202Egnp.exe" show as "userexe.png".
  EXPECT_EQ(TerminalSafe("user\xE2\x80\xAEgnp.exe"), "user\\u202egnp.exe");
  EXPECT_EQ(TerminalSafe("\xE2\x81\xA6x\xE2\x81\xA9"), "\\u2066x\\u2069");
  EXPECT_EQ(TerminalSafeBlock("a\xE2\x80\xA8" "b"), "a\\u2028b");
}

TEST(TerminalSafeTest, NoByteValueReachesATerminal) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  std::string every_c1;
  for (int c = 0x80; c <= 0x9F; ++c) every_c1 += {'\xC2', static_cast<char>(c)};
  for (const std::string& input : {every_byte, every_c1}) {
    std::string field = TerminalSafe(input);
    ExpectNothingATerminalActsOn(field, "");
    for (char c : field) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
    ExpectNothingATerminalActsOn(TerminalSafeBlock(input), "\n\t");
  }
}

TEST(TerminalSafeTest, JsonKeepsItsValueAndLosesTheControls) {
  nlohmann::json value = {{"stdout", "\x1b[2J \xC2\x9b" "2J \x7f \xE2\x80\xAE caf\xC3\xA9\n"}};
  std::string encoded = value.dump();  // nlohmann escapes only what JSON requires
  ASSERT_NE(encoded.find("\xC2\x9b"), std::string::npos);
  std::string safe = TerminalSafeJson(encoded);
  ExpectNothingATerminalActsOn(safe, "");
  EXPECT_NE(safe.find("\\u009b2J"), std::string::npos) << safe;
  EXPECT_NE(safe.find("\\u007f"), std::string::npos) << safe;
  EXPECT_NE(safe.find("\\u202e"), std::string::npos) << safe;
  EXPECT_NE(safe.find("caf\xC3\xA9"), std::string::npos) << safe;
  EXPECT_EQ(nlohmann::json::parse(safe), value);
}

}  // namespace
}  // namespace muster
