#include "server/auth/access_control.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/auth/policy.h"

namespace muster::server::auth {
namespace {

Caller As(const std::string& name) {
  return Caller{Principal{name, AuthMethod::kToken, "0123456789abcdef"}, "ipv4:127.0.0.1:1"};
}

class AccessControlTest : public ::testing::Test {
 protected:
  AccessControl Make(AccessControlOptions options) {
    return AccessControl(options, &authenticator_, &policy_, nullptr);
  }
  InsecureAuthenticator authenticator_;
  PolicyAuthorizer policy_;  // built-in: only "admin"
};

TEST_F(AccessControlTest, WatchStreamsAreBoundedInAllAndPerPrincipalAndGivenBack) {
  AccessControlOptions options;
  options.max_watch_streams = 3;
  options.max_watch_streams_per_principal = 2;
  AccessControl access = Make(options);
  std::vector<std::unique_ptr<AccessControl::StreamSlot>> slots;
  for (int i = 0; i < 2; ++i) {
    auto slot = access.OpenWatchStream(As("alice"));
    ASSERT_TRUE(slot.ok());
    slots.push_back(*std::move(slot));
  }
  absl::StatusOr<std::unique_ptr<AccessControl::StreamSlot>> third =
      access.OpenWatchStream(As("alice"));
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.status().message().find("per principal"), std::string::npos);
  auto bob = access.OpenWatchStream(As("bob"));
  ASSERT_TRUE(bob.ok());
  auto carol = access.OpenWatchStream(As("carol"));
  EXPECT_EQ(carol.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(carol.status().message().find("at most 3"), std::string::npos);
  bob->reset();
  EXPECT_TRUE(access.OpenWatchStream(As("carol")).ok());  // and given back at once
  slots.pop_back();
  EXPECT_TRUE(access.OpenWatchStream(As("alice")).ok());
  EXPECT_EQ(access.counters().denied_watch_streams, 2u);
}

TEST_F(AccessControlTest, PolicyThenRateAreCheckedAndCounted) {
  AccessControlOptions options;
  options.submit_rate_per_s = 0.001;
  options.submit_burst = 2;
  AccessControl access = Make(options);
  AuditRecord fields;
  EXPECT_EQ(access.Authorize(As("alice"), {Rpc::kGetJob, ""}, fields).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(access.Authorize(As("admin"), {Rpc::kSubmitJob, "test.ping"}, fields).ok());
  EXPECT_TRUE(access.Authorize(As("admin"), {Rpc::kRetryMissing, "test.ping"}, fields).ok());
  absl::StatusOr<Decision> third = access.Authorize(As("admin"), {Rpc::kSubmitJob, "x.y"}, fields);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  // Reads are not rate limited.
  EXPECT_TRUE(access.Authorize(As("admin"), {Rpc::kListJobs, ""}, fields).ok());
  // Nor is an --insecure jobd's caller.
  Caller insecure{Principal{"insecure", AuthMethod::kInsecure, ""}, "p"};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(access.Authorize(insecure, {Rpc::kSubmitJob, "x.y"}, fields).ok());
  }
  AccessCounters c = access.counters();
  EXPECT_EQ(c.denied_policy, 1u);
  EXPECT_EQ(c.denied_rate, 1u);
}

}  // namespace
}  // namespace muster::server::auth
