#include "common/codec/varint.h"

#include <string>

#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(VarintTest, RoundTripsAndSizesMatchTheBytesWritten) {
  for (uint64_t value : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128},
                         uint64_t{300}, uint64_t{16383}, uint64_t{16384},
                         uint64_t{1} << 35, UINT64_MAX}) {
    std::string out = "x";
    AppendVarint(value, &out);
    EXPECT_EQ(out.size() - 1, VarintSize(value)) << value;
    size_t pos = 1;
    uint64_t read = 0;
    ASSERT_TRUE(ReadVarint(out, &pos, &read)) << value;
    EXPECT_EQ(read, value);
    EXPECT_EQ(pos, out.size());
  }
  std::string protobuf_300 = "\xac\x02";  // protobuf's encoding of 300
  std::string out;
  AppendVarint(300, &out);
  EXPECT_EQ(out, protobuf_300);
}

TEST(VarintTest, ATruncatedOrOverlongVarintIsRefused) {
  std::string out;
  AppendVarint(1 << 20, &out);
  size_t pos = 0;
  uint64_t value = 7;
  EXPECT_FALSE(ReadVarint(out.substr(0, out.size() - 1), &pos, &value));
  EXPECT_EQ(value, 7u);
  pos = 0;
  EXPECT_FALSE(ReadVarint(std::string(11, '\x80'), &pos, &value));
  EXPECT_EQ(value, 7u);
}

}  // namespace
}  // namespace muster
