#include "common/compress/zlib_codec.h"

#include <string>

#include "gtest/gtest.h"

namespace muster::compress {
namespace {

TEST(ZlibCodecTest, RoundTripsAndShrinksRepetitiveIds) {
  std::string ids;
  for (int n = 0; n < 10000; ++n) ids += "sim-" + std::to_string(n) + ".dc1.example.com\n";
  std::string packed = ZlibCompress(ids);
  EXPECT_LT(packed.size() * 5, ids.size());
  absl::StatusOr<std::string> back = ZlibDecompress(packed, 1 << 20);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, ids);
  EXPECT_EQ(*ZlibDecompress(ZlibCompress(""), 10), "");
}

TEST(ZlibCodecTest, RejectsGarbageTruncationTrailingBytesAndBombs) {
  std::string packed = ZlibCompress(std::string(100000, 'a'));
  EXPECT_FALSE(ZlibDecompress("not zlib", 1 << 20).ok());
  EXPECT_FALSE(ZlibDecompress(packed.substr(0, packed.size() - 3), 1 << 20).ok());
  EXPECT_FALSE(ZlibDecompress(packed + "x", 1 << 20).ok());
  EXPECT_FALSE(ZlibDecompress(packed, 1000).ok());
}

}  // namespace
}  // namespace muster::compress
