#include "server/dashboard/host_allow_list.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace muster::dashboard {
namespace {

HostAllowList Defaults(int port = 7401, bool https = true) {
  absl::StatusOr<HostAllowList> hosts =
      HostAllowList::Make(HostAllowList::DefaultEntries("127.0.0.1"), port, https);
  EXPECT_TRUE(hosts.ok()) << hosts.status();
  return *hosts;
}

TEST(HostAllowListTest, DefaultsAllowLoopbackNamesOnTheBoundPort) {
  HostAllowList hosts = Defaults();
  EXPECT_TRUE(hosts.CheckHost("127.0.0.1:7401").ok());
  EXPECT_TRUE(hosts.CheckHost("localhost:7401").ok());
  EXPECT_TRUE(hosts.CheckHost("LOCALHOST:7401").ok());
  EXPECT_TRUE(hosts.CheckHost("[::1]:7401").ok());
  EXPECT_FALSE(hosts.CheckHost("localhost:7402").ok());
  // No port: the scheme's default (443), not the dashboard's.
  EXPECT_FALSE(hosts.CheckHost("localhost").ok());
}

TEST(HostAllowListTest, ForeignOrMalformedHostIsRefused) {
  HostAllowList hosts = Defaults();
  // DNS rebinding: the attacker's name resolves to 127.0.0.1.
  absl::Status rebinding = hosts.CheckHost("evil.example.com:7401");
  EXPECT_EQ(rebinding.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(rebinding.message().find("evil.example.com:7401"), std::string::npos);
  EXPECT_FALSE(hosts.CheckHost("").ok());
  EXPECT_FALSE(hosts.CheckHost("localhost:7401/x").ok());
  EXPECT_FALSE(hosts.CheckHost("localhost:").ok());
  EXPECT_FALSE(hosts.CheckHost("localhost:abc").ok());
  EXPECT_FALSE(hosts.CheckHost("user@localhost:7401").ok());
  EXPECT_FALSE(hosts.CheckHost("127.0.0.1.evil.example:7401").ok());
}

TEST(HostAllowListTest, ListenHostIsADefaultAndEntriesMayNamePorts) {
  EXPECT_EQ(HostAllowList::DefaultEntries("10.0.0.5").front(), "10.0.0.5");
  EXPECT_EQ(HostAllowList::DefaultEntries("::1").size(), 3u);
  absl::StatusOr<HostAllowList> hosts =
      HostAllowList::Make({"jobd.example.com", "proxy.example.com:443"}, 7401, true);
  ASSERT_TRUE(hosts.ok());
  EXPECT_TRUE(hosts->CheckHost("jobd.example.com:7401").ok());
  EXPECT_TRUE(hosts->CheckHost("proxy.example.com").ok());
  EXPECT_TRUE(hosts->CheckHost("proxy.example.com:443").ok());
  EXPECT_FALSE(hosts->CheckHost("localhost:7401").ok());
}

TEST(HostAllowListTest, BadEntryIsInvalidArgument) {
  for (const char* entry : {"", "http://x", "a b", "x:99999", "x:", "[::1"}) {
    absl::StatusOr<HostAllowList> hosts = HostAllowList::Make({entry}, 7401, true);
    EXPECT_EQ(hosts.status().code(), absl::StatusCode::kInvalidArgument) << entry;
  }
}

TEST(HostAllowListTest, PostOriginMustBeTheDashboardsOwn) {
  HostAllowList hosts = Defaults();
  EXPECT_TRUE(hosts.CheckOrigin("https://localhost:7401", "").ok());
  EXPECT_TRUE(hosts.CheckOrigin("https://127.0.0.1:7401", "https://evil.example/").ok());
  // Another site, another scheme, another port, a path, "null".
  EXPECT_FALSE(hosts.CheckOrigin("https://evil.example.com", "").ok());
  EXPECT_FALSE(hosts.CheckOrigin("http://localhost:7401", "").ok());
  EXPECT_FALSE(hosts.CheckOrigin("https://localhost:7402", "").ok());
  EXPECT_FALSE(hosts.CheckOrigin("https://localhost:7401/x", "").ok());
  EXPECT_FALSE(hosts.CheckOrigin("null", "").ok());
  EXPECT_FALSE(hosts.CheckOrigin("https://localhost:7401.evil.example", "").ok());
}

TEST(HostAllowListTest, WithoutOriginTheRefererDecidesAndNeitherIsRefused) {
  HostAllowList hosts = Defaults();
  EXPECT_TRUE(hosts.CheckOrigin("", "https://localhost:7401/#/job/abc").ok());
  EXPECT_TRUE(hosts.CheckOrigin("", "https://localhost:7401").ok());
  EXPECT_FALSE(hosts.CheckOrigin("", "https://evil.example.com/page").ok());
  EXPECT_FALSE(hosts.CheckOrigin("", "https://localhost:7401@evil.example/").ok());
  absl::Status neither = hosts.CheckOrigin("", "");
  EXPECT_EQ(neither.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(neither.message().find("Origin"), std::string::npos);
}

TEST(HostAllowListTest, PlainHttpDashboardWantsHttpOrigins) {
  HostAllowList hosts = Defaults(8080, false);
  EXPECT_TRUE(hosts.CheckOrigin("http://localhost:8080", "").ok());
  EXPECT_FALSE(hosts.CheckOrigin("https://localhost:8080", "").ok());
  std::vector<std::string> origins = hosts.Origins();
  EXPECT_NE(std::find(origins.begin(), origins.end(), "http://127.0.0.1:8080"), origins.end());
}

}  // namespace
}  // namespace muster::dashboard
