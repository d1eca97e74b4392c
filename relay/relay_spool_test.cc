#include "relay/relay_spool.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::relay {
namespace {

TEST(RelaySpoolTest, RowsComeBackInOrderAcrossReopenUntilDeleted) {
  std::string path = absl::StrCat(testing::MakeTempDir("spool"), "/spool.db");
  ReturnChunk a{"aaa", 2, 10}, b{"bbb", 3, 20}, c{"ccc", 1, 30};
  {
    auto spool = RelaySpool::Open(path);
    ASSERT_TRUE(spool.ok()) << spool.status();
    EXPECT_TRUE((*spool)->empty());
    std::vector<const ReturnChunk*> first = {&a, &b};
    ASSERT_TRUE((*spool)->Append(first).ok());
    std::vector<const ReturnChunk*> second = {&c};
    ASSERT_TRUE((*spool)->Append(second).ok());
    EXPECT_EQ((*spool)->depth_returns(), 6);
  }
  auto spool = RelaySpool::Open(path);
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ((*spool)->depth_returns(), 6);
  auto rows = (*spool)->Oldest(5);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);  // a + b = 5 returns; c would exceed
  EXPECT_EQ((*rows)[0].chunk.batch, "aaa");
  EXPECT_EQ((*rows)[1].chunk.received_at_ms, 20);
  ASSERT_TRUE((*spool)->DeleteThrough((*rows)[0].seq).ok());
  EXPECT_EQ((*spool)->depth_returns(), 4);
  rows = (*spool)->Oldest(1);  // always at least one row
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].chunk.batch, "bbb");
  // New rows go after the old ones even when the newest were deleted.
  ASSERT_TRUE((*spool)->DeleteThrough(1000).ok());
  EXPECT_TRUE((*spool)->empty());
  std::vector<const ReturnChunk*> again = {&a};
  ASSERT_TRUE((*spool)->Append(again).ok());
  EXPECT_GT((*(*spool)->Oldest(10))[0].seq, (*rows)[0].seq);
}

}  // namespace
}  // namespace muster::relay
