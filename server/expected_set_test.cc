#include "server/expected_set.h"

#include <vector>

#include "common/codec/varint.h"
#include "gtest/gtest.h"

namespace muster::server {
namespace {

TEST(ExpectedSetTest, RoundTripsEmptyAndDenseAndSparseSets) {
  for (const std::vector<uint32_t>& numbers :
       {std::vector<uint32_t>{}, std::vector<uint32_t>{0}, std::vector<uint32_t>{0, 1, 2, 3},
        std::vector<uint32_t>{5, 300, 70000, 4000000000u}}) {
    std::string blob = EncodeExpectedSet(numbers);
    absl::StatusOr<std::vector<uint32_t>> decoded = DecodeExpectedSet(blob);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, numbers);
  }
}

// The blobs stored by earlier versions stay readable and identical: the
// count, then each delta, as AppendVarint writes them.
TEST(ExpectedSetTest, BytesAreTheVarintsOfTheCountAndDeltas) {
  const std::vector<uint32_t> numbers = {0, 1, 127, 128, 16511, 16512, 2097279, 4000000000u};
  std::string expected;
  AppendVarint(numbers.size(), &expected);
  uint32_t previous = 0;
  for (size_t i = 0; i < numbers.size(); ++i) {
    AppendVarint(i == 0 ? numbers[i] : numbers[i] - previous, &expected);
    previous = numbers[i];
  }
  EXPECT_EQ(EncodeExpectedSet(numbers), expected);
}

TEST(ExpectedSetTest, HundredThousandDenseMinionsCostAboutOneByteEach) {
  std::vector<uint32_t> numbers;
  for (uint32_t i = 0; i < 100000; ++i) numbers.push_back(i * 3);
  std::string blob = EncodeExpectedSet(numbers);
  EXPECT_LT(blob.size(), 100010u);
  EXPECT_EQ(*DecodeExpectedSet(blob), numbers);
}

TEST(ExpectedSetTest, CorruptBlobsAreRejectedNotCrashing) {
  std::string blob = EncodeExpectedSet({1, 2, 300});
  EXPECT_FALSE(DecodeExpectedSet(blob.substr(0, blob.size() - 1)).ok());
  EXPECT_FALSE(DecodeExpectedSet(blob + "x").ok());
  EXPECT_FALSE(DecodeExpectedSet("\xff").ok());
  std::string zero_delta;
  AppendVarint(2, &zero_delta);
  AppendVarint(7, &zero_delta);
  AppendVarint(0, &zero_delta);
  EXPECT_FALSE(DecodeExpectedSet(zero_delta).ok());
}

}  // namespace
}  // namespace muster::server
