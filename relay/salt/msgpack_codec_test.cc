#include "relay/salt/msgpack_codec.h"
#include "relay/salt/test_files.h"

#include <fstream>
#include <random>
#include <sstream>

#include "gtest/gtest.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

// The master's event stream captured from a real salt-master 3006.1: nine
// {head, body} frames back to back.
TEST(MsgpackObjectSizeTest, SplitsTheCapturedEventStreamIntoItsFrames) {
  const std::string stream = ReadFile("relay/salt/testdata/master_event_pub.bin");
  ASSERT_FALSE(stream.empty());
  size_t offset = 0;
  int frames = 0;
  while (offset < stream.size()) {
    auto size = MsgpackObjectSize(absl::string_view(stream).substr(offset));
    ASSERT_TRUE(size.ok()) << size.status();
    ASSERT_TRUE(size->has_value()) << "incomplete at " << offset;
    auto frame = DecodeMsgpack(absl::string_view(stream).substr(offset, **size));
    ASSERT_TRUE(frame.ok()) << frame.status();
    EXPECT_TRUE(frame->contains("head"));
    EXPECT_TRUE(frame->contains("body"));
    offset += **size;
    ++frames;
  }
  EXPECT_EQ(frames, 9);
}

TEST(MsgpackObjectSizeTest, EveryPrefixOfAFrameIsIncomplete) {
  const std::string stream = ReadFile("relay/salt/testdata/master_event_pub.bin");
  auto size = MsgpackObjectSize(stream);
  ASSERT_TRUE(size.ok() && size->has_value());
  for (size_t n = 0; n < **size; ++n) {
    auto prefix = MsgpackObjectSize(absl::string_view(stream).substr(0, n));
    ASSERT_TRUE(prefix.ok()) << n;
    EXPECT_FALSE(prefix->has_value()) << n;
    EXPECT_FALSE(DecodeMsgpack(absl::string_view(stream).substr(0, n)).ok()) << n;
  }
}

TEST(MsgpackObjectSizeTest, NeverUsedTypeByteIsAnError) {
  EXPECT_FALSE(MsgpackObjectSize("\xc1").ok());
  EXPECT_FALSE(MsgpackObjectSize(std::string("\x92\x01\xc1", 3)).ok());
}

TEST(MsgpackObjectSizeTest, HugeDeclaredLengthsAreIncompleteNotAllocated) {
  // str32, bin32, ext32 of 4 GiB; array32 and map32 of 4 G elements.
  for (const std::string& header :
       {std::string("\xdb\xff\xff\xff\xff", 5), std::string("\xc6\xff\xff\xff\xff", 5),
        std::string("\xc9\xff\xff\xff\xff\x01", 6), std::string("\xdd\xff\xff\xff\xff", 5),
        std::string("\xdf\xff\xff\xff\xff", 5)}) {
    std::string bytes = header + std::string(1000, '\x01');
    auto size = MsgpackObjectSize(bytes);
    ASSERT_TRUE(size.ok()) << size.status();
    EXPECT_FALSE(size->has_value());
    EXPECT_FALSE(DecodeMsgpack(bytes).ok());
  }
}

TEST(MsgpackObjectSizeTest, DeepNestingIsAnErrorNotAStackOverflow) {
  const std::string deep(100000, '\x91');  // [[[[...
  auto size = MsgpackObjectSize(deep);
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.status().message().find("nested deeper"), std::string::npos);
  EXPECT_FALSE(DecodeMsgpack(deep + "\x01").ok());
  // Within the limit is fine.
  std::string ok(kMaxMsgpackDepth - 1, '\x91');
  ok += '\x01';
  EXPECT_TRUE(DecodeMsgpack(ok).ok());
}

TEST(DecodeMsgpackTest, RoundTripsSaltShapedValues) {
  json value = {{"cmd", "_return"}, {"id", "m1"},          {"retcode", 3},
                {"success", false}, {"return", "hi"},       {"fun_args", {"echo hi", 1.5}},
                {"nested", {{"a", {1, 2, {{"b", nullptr}}}}}}, {"big", 1ULL << 40},
                {"neg", -70000}};
  auto decoded = DecodeMsgpack(EncodeMsgpack(value));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, value);
}

TEST(DecodeMsgpackTest, ExtraBytesAfterTheObjectAreAnError) {
  EXPECT_FALSE(DecodeMsgpack(std::string("\x01\x02", 2)).ok());
}

TEST(DecodeMsgpackTest, NonStringMapKeyIsAnErrorNotACrash) {
  EXPECT_FALSE(DecodeMsgpack(std::string("\x81\x01\x02", 3)).ok());
}

TEST(DecodeMsgpackTest, Utf8BinBecomesAStringOtherBinStaysBinary) {
  // {"a": bin "hi", "b": bin ff fe}
  const std::string bytes("\x82\xa1" "a\xc4\x02hi\xa1" "b\xc4\x02\xff\xfe", 13);
  auto decoded = DecodeMsgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ((*decoded)["a"], "hi");
  EXPECT_TRUE((*decoded)["b"].is_binary());
  EXPECT_EQ(MsgpackValueToJsonText(*decoded), R"({"a":"hi","b":{"base64":"//4="}})");
}

TEST(DecodeMsgpackTest, SaltDatetimeExtIsItsText) {
  // salt.payload packs datetime as ext 78 with "%Y%m%dT%H:%M:%S.%f".
  const std::string text = "20261206T17:50:58.622403";
  std::string bytes("\xc7", 1);
  bytes += static_cast<char>(text.size());
  bytes += static_cast<char>(78);
  bytes += text;
  auto decoded = DecodeMsgpack(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, text);
}

TEST(DecodeMsgpackTest, RandomGarbageNeverCrashes) {
  std::mt19937 random(18);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 64);
  const std::string stream = ReadFile("relay/salt/testdata/master_event_pub.bin");
  for (int round = 0; round < 20000; ++round) {
    std::string bytes;
    if (round % 2 == 0) {
      for (int i = length(random); i > 0; --i) bytes += static_cast<char>(byte(random));
    } else {
      // A real frame with a few bytes flipped.
      bytes = stream.substr(0, 200);
      for (int i = 0; i < 3; ++i) bytes[byte(random) % bytes.size()] = byte(random);
    }
    (void)MsgpackObjectSize(bytes);
    auto decoded = DecodeMsgpack(bytes);
    if (decoded.ok()) (void)MsgpackValueToJsonText(*decoded);
  }
}

TEST(ReadMsgpackFileTest, ReadsACapturedCacheFile) {
  auto value = ReadMsgpackFile(
      "relay/salt/testdata/cache/jobs/6c/"
      "08e37dcd905ca9680833f4b20b1bc34bfea5601cfca73ce3ad3afbefceed90/m1/return.p");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, json({{"return", "hi"}, {"retcode", 3}, {"success", false}}));
}

TEST(ReadMsgpackFileTest, RefusesFilesOverTheCapAndMissingFiles) {
  const std::string path = "relay/salt/testdata/cache/minions/m1/data.p";
  auto capped = ReadMsgpackFile(path, 100);
  EXPECT_TRUE(absl::IsFailedPrecondition(capped.status())) << capped.status();
  EXPECT_TRUE(absl::IsNotFound(ReadMsgpackFile("relay/salt/testdata/nope.p").status()));
}

}  // namespace
}  // namespace muster::relay::salt
