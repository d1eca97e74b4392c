#include "minion/fleet_pattern.h"

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

std::string ExpandId(absl::string_view pattern, uint64_t n, absl::string_view dc = "dc1") {
  absl::StatusOr<FleetTemplate> parsed = FleetTemplate::Parse(pattern);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->Expand(n, dc) : "";
}

TEST(FleetTemplateTest, ExpandsNumberWidthModulusAndDatacenter) {
  EXPECT_EQ(ExpandId("web-{n:05}.{dc}.example.com", 42), "web-00042.dc1.example.com");
  EXPECT_EQ(ExpandId("m{n}", 7), "m7");
  EXPECT_EQ(ExpandId("m{n:2}", 123), "m123");
  EXPECT_EQ(ExpandId("r{n%20}", 45), "r5");
  EXPECT_EQ(ExpandId("r{n%20:02}", 45), "r05");
  EXPECT_EQ(ExpandId("plain", 1), "plain");
}

TEST(FleetTemplateTest, RejectsBadPlaceholders) {
  EXPECT_FALSE(FleetTemplate::Parse("web-{n").ok());
  EXPECT_FALSE(FleetTemplate::Parse("web-{x}").ok());
  EXPECT_FALSE(FleetTemplate::Parse("web-{n%0}").ok());
  EXPECT_FALSE(FleetTemplate::Parse("web-{n:abc}").ok());
  EXPECT_FALSE(FleetTemplate::Parse("web-{n%}").ok());
}

TEST(GrainsPatternTest, AlternativesRoundRobinByN) {
  absl::StatusOr<GrainsPattern> pattern =
      GrainsPattern::Parse("role=web|db|cache,os=debian,rack=r{n%20},dc={dc}");
  ASSERT_TRUE(pattern.ok()) << pattern.status();
  Grains first = pattern->Expand(1, "dc2");
  EXPECT_EQ(first.at("role"), "web");
  EXPECT_EQ(first.at("os"), "debian");
  EXPECT_EQ(first.at("rack"), "r1");
  EXPECT_EQ(first.at("dc"), "dc2");
  EXPECT_EQ(pattern->Expand(2, "dc2").at("role"), "db");
  EXPECT_EQ(pattern->Expand(3, "dc2").at("role"), "cache");
  EXPECT_EQ(pattern->Expand(4, "dc2").at("role"), "web");
  EXPECT_EQ(pattern->Expand(40, "dc2").at("rack"), "r0");
}

TEST(GrainsPatternTest, EmptyPatternGivesNoGrainsAndBadItemsAreRejected) {
  absl::StatusOr<GrainsPattern> empty = GrainsPattern::Parse("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->Expand(1, "dc").empty());
  EXPECT_FALSE(GrainsPattern::Parse("role").ok());
  EXPECT_FALSE(GrainsPattern::Parse("=web").ok());
  EXPECT_FALSE(GrainsPattern::Parse("role={bad}").ok());
}

TEST(SilenceTest, FractionPicksExactlyFloorCountEvenly) {
  int silent = 0;
  for (uint64_t n = 1; n <= 1000; ++n) {
    if (IsSilentByFraction(n, 0.01)) {
      ++silent;
      EXPECT_EQ(n % 100, 0u) << n;
    }
  }
  EXPECT_EQ(silent, 10);
  EXPECT_FALSE(IsSilentByFraction(5, 0));
  EXPECT_TRUE(IsSilentByFraction(5, 1));
}

TEST(FailureTest, RateIsRespectedAndStable) {
  int failed = 0;
  for (uint64_t n = 1; n <= 20000; ++n) {
    if (FailsDispatch("20260101000000000001", 1, n, 0.1)) ++failed;
  }
  EXPECT_NEAR(failed, 2000, 200);
  EXPECT_EQ(FailsDispatch("j", 1, 7, 0.5), FailsDispatch("j", 1, 7, 0.5));
  EXPECT_FALSE(FailsDispatch("j", 1, 7, 0));
  EXPECT_TRUE(FailsDispatch("j", 1, 7, 1));
}

}  // namespace
}  // namespace muster::minion
