#include "server/expected_set.h"

#include <vector>

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
