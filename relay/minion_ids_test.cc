#include "relay/minion_ids.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster::relay {
namespace {

TEST(MinionIdsTest, NumbersInOrderOfFirstUseAndFoundAgain) {
  MinionIds ids;
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_FALSE(ids.Find("a").has_value());
  EXPECT_EQ(ids.Intern("web-1"), 0u);
  EXPECT_EQ(ids.Intern("web-2"), 1u);
  EXPECT_EQ(ids.Intern("web-1"), 0u);
  EXPECT_EQ(ids.Intern(""), 2u) << "any bytes, even none";
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.Find("web-2"), 1u);
  EXPECT_EQ(ids.Find(""), 2u);
  EXPECT_FALSE(ids.Find("web-3").has_value());
  EXPECT_FALSE(ids.Find("web-").has_value()) << "a prefix is another id";
  EXPECT_EQ(ids.id(0), "web-1");
  EXPECT_EQ(ids.id(2), "");
}

// Through many growths every id keeps its number, and ids that differ in
// one byte or in length are told apart.
TEST(MinionIdsTest, HundredThousandIdsKeepTheirNumbersThroughGrowth) {
  MinionIds ids;
  std::vector<std::string> names;
  for (int n = 0; n < 100000; ++n) {
    names.push_back(absl::StrCat("sim-", n, ".dc1.example.com"));
    ASSERT_EQ(ids.Intern(names.back()), static_cast<uint32_t>(n));
  }
  for (int n = 0; n < 100000; n += 7) {
    ASSERT_EQ(ids.Find(names[n]), static_cast<uint32_t>(n));
    ASSERT_EQ(ids.id(n), names[n]);
  }
  EXPECT_FALSE(ids.Find("sim-100000.dc1.example.com").has_value());
  EXPECT_FALSE(ids.Find("sim-1.dc1.example.co").has_value());
  EXPECT_EQ(ids.Intern("sim-5.dc1.example.com"), 5u);
  EXPECT_EQ(ids.size(), 100000u);
}

}  // namespace
}  // namespace muster::relay
