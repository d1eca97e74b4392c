// jobd's dashboard over real HTTP: the page and its assets, and every JSON
// endpoint against an in-process jobd holding real data (inventory,
// deliveries and returns written to Redis the way relays write them).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/dashboard_fixture.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

using muster::wire::v1::Delivery;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }
uint64_t U(const nlohmann::json& value) { return std::stoull(value.get<std::string>()); }

class DashboardHttpTest : public DashboardFixture {
 protected:
  // dc1: web-a0..2, dc2: web-b0..1; a web-* job; dc1 delivered; returns:
  // web-a0 ok, web-a1 failed, web-b0 ok. Missing: web-a2, web-b1.
  std::string RunningJobWithReturns() {
    AddMinions("dc1", "web-a", 3);
    AddMinions("dc2", "web-b", 2);
    std::string jid = Submit("web-*");
    EXPECT_TRUE(relays_->Deliver("dc1", jid, 1, Delivery::DELIVERED, NowMs()).ok());
    SendReturns("dc1", jid, {"web-a0", "web-a1"}, {"web-a1"});
    SendReturns("dc2", jid, {"web-b0"});
    EXPECT_TRUE(WaitForJob(jid, [](const v1::Job& job) {
      return job.completeness().returned() == 3 && job.datacenters(0).delivered();
    }));
    return jid;
  }
};

TEST_F(DashboardHttpTest, ServesThePageAndItsAssets) {
  HttpReply page = Get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_TRUE(absl::StartsWith(page.content_type, "text/html")) << page.content_type;
  EXPECT_TRUE(absl::StrContains(page.body, "<main id=\"view\">"));
  EXPECT_TRUE(absl::StrContains(page.body, "/static/app.js"));
  HttpReply js = Get("/static/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_TRUE(absl::StartsWith(js.content_type, "application/javascript"));
  EXPECT_TRUE(absl::StrContains(js.body, "function jobPage("));
  HttpReply css = Get("/static/app.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_TRUE(absl::StartsWith(css.content_type, "text/css"));
  EXPECT_EQ(Get("/nothing-here").status, 404);
}

TEST_F(DashboardHttpTest, JobEndpointShowsCompletenessPerDatacenter) {
  std::string jid = RunningJobWithReturns();
  HttpReply reply = Get("/api/jobs/" + jid);
  ASSERT_EQ(reply.status, 200) << reply.body;
  const nlohmann::json& job = reply.json;
  EXPECT_EQ(job["jid"], jid);
  EXPECT_EQ(job["state"], "RUNNING");
  EXPECT_EQ(job["target"]["expression"], "web-*");
  const nlohmann::json& c = job["completeness"];
  EXPECT_EQ(U(c["expected"]), 5u);
  EXPECT_EQ(U(c["returned"]), 3u);
  EXPECT_EQ(U(c["succeeded"]), 2u);
  EXPECT_EQ(U(c["failed"]), 1u);
  EXPECT_EQ(U(c["missing"]), 2u);
  ASSERT_EQ(job["datacenters"].size(), 2u);
  const nlohmann::json& dc1 = job["datacenters"][0];
  const nlohmann::json& dc2 = job["datacenters"][1];
  EXPECT_EQ(dc1["datacenter"], "dc1");
  EXPECT_EQ(dc1["delivered"], true);
  EXPECT_EQ(dc1["relay_id"], "relay-dc1");
  EXPECT_EQ(U(dc1["completeness"]["missing"]), 1u);
  EXPECT_EQ(dc2["datacenter"], "dc2");
  EXPECT_EQ(dc2["delivered"], false);
  EXPECT_EQ(U(dc2["completeness"]["returned"]), 1u);
}

TEST_F(DashboardHttpTest, JobListFiltersByState) {
  std::string jid = RunningJobWithReturns();
  HttpReply all = Get("/api/jobs");
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_EQ(all.json["jobs"].size(), 1u);
  EXPECT_EQ(all.json["jobs"][0]["jid"], jid);
  HttpReply running = Get("/api/jobs?state=running&limit=10");
  ASSERT_EQ(running.status, 200);
  EXPECT_EQ(running.json["jobs"].size(), 1u);
  HttpReply complete = Get("/api/jobs?state=COMPLETE");
  ASSERT_EQ(complete.status, 200);
  EXPECT_EQ(complete.json["jobs"].size(), 0u);
}

TEST_F(DashboardHttpTest, ReturnsEndpointFiltersFailedWithOutput) {
  std::string jid = RunningJobWithReturns();
  HttpReply all = Get("/api/jobs/" + jid + "/returns");
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.json["returns"].size(), 3u);
  HttpReply failed = Get("/api/jobs/" + jid + "/returns?filter=failed");
  ASSERT_EQ(failed.status, 200);
  ASSERT_EQ(failed.json["returns"].size(), 1u);
  EXPECT_EQ(failed.json["returns"][0]["minion_id"], "web-a1");
  EXPECT_EQ(failed.json["returns"][0]["stderr"], "boom");
  HttpReply dc2 = Get("/api/jobs/" + jid + "/returns?filter=succeeded&datacenter=dc2");
  ASSERT_EQ(dc2.status, 200);
  ASSERT_EQ(dc2.json["returns"].size(), 1u);
  EXPECT_EQ(dc2.json["returns"][0]["minion_id"], "web-b0");
}

// Output that is not UTF-8 (here every byte value) still gives valid JSON:
// readable text, plus the exact bytes in stderr_base64.
TEST_F(DashboardHttpTest, OutputOfAnyBytesIsValidJsonWithTheExactBytes) {
  AddMinions("dc1", "web-a", 1);
  std::string jid = Submit("web-*");
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  wire::v1::Return ret = RelayPlayer::MakeReturn(jid, 1, "web-a0", false);
  ret.set_stderr(every_byte);
  ASSERT_TRUE(relays_->SendReturns("dc1", {ret}).ok());
  ASSERT_TRUE(WaitForJob(jid, [](const v1::Job& job) { return job.completeness().failed() == 1; }));
  HttpReply failed = Get("/api/jobs/" + jid + "/returns?filter=failed");
  ASSERT_EQ(failed.status, 200) << failed.body;
  ASSERT_TRUE(failed.json.is_object()) << failed.body;
  const nlohmann::json& shown = failed.json["returns"][0];
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(shown["stderr_base64"].get<std::string>(), &decoded));
  EXPECT_EQ(decoded, every_byte);
  EXPECT_EQ(shown["stderr"].get<std::string>().substr(0, 128), every_byte.substr(0, 128));
  EXPECT_EQ(shown["stdout"], "");
  EXPECT_FALSE(shown.contains("stdout_base64"));
}

// Every missing id is reachable by paging, with and without a search.
TEST_F(DashboardHttpTest, MissingListPagesThroughEveryMissingId) {
  AddMinions("dc1", "web-", 250);
  AddMinions("dc2", "db-", 40, {{"role", "db"}});
  std::string jid = Submit("*");
  std::vector<std::string> answered = {"web-0", "web-17", "web-100", "db-3"};
  SendReturns("dc1", jid, {"web-0", "web-17", "web-100"});
  SendReturns("dc2", jid, {"db-3"});
  ASSERT_TRUE(
      WaitForJob(jid, [](const v1::Job& job) { return job.completeness().returned() == 4; }));

  std::set<std::string> expected_missing;
  for (const std::string& id : Ids("web-", 250)) expected_missing.insert(id);
  for (const std::string& id : Ids("db-", 40)) expected_missing.insert(id);
  for (const std::string& id : answered) expected_missing.erase(id);

  auto walk = [&](const std::string& query, int limit) {
    std::vector<std::string> ids;
    std::string token;
    for (int pages = 0; pages < 1000; ++pages) {
      HttpReply page = Get(absl::StrCat("/api/jobs/", jid, "/missing?limit=", limit,
                                        "&page_token=", token, query.empty() ? "" : "&q=", query));
      EXPECT_EQ(page.status, 200) << page.body;
      if (page.status != 200) break;
      EXPECT_LE(page.json["missing"].size(), static_cast<size_t>(limit));
      for (const nlohmann::json& m : page.json["missing"]) ids.push_back(m["minion_id"]);
      token = page.json["next_page_token"];
      if (token.empty()) break;
    }
    return ids;
  };
  std::vector<std::string> paged = walk("", 100);
  EXPECT_EQ(paged.size(), expected_missing.size());
  EXPECT_EQ(std::set<std::string>(paged.begin(), paged.end()), expected_missing);
  EXPECT_TRUE(std::is_sorted(paged.begin(), paged.end()));

  std::vector<std::string> searched = walk("-1", 7);
  std::vector<std::string> want;
  for (const std::string& id : expected_missing) {
    if (absl::StrContains(id, "-1")) want.push_back(id);
  }
  EXPECT_EQ(searched, want);  // both sorted by id
  EXPECT_GT(want.size(), 7u * 3);
  HttpReply none = Get(absl::StrCat("/api/jobs/", jid, "/missing?q=zzz"));
  ASSERT_EQ(none.status, 200);
  EXPECT_EQ(none.json["missing"].size(), 0u);
  EXPECT_EQ(none.json["next_page_token"], "");
}

TEST_F(DashboardHttpTest, RetryAndCancelGoThroughTheService) {
  std::string jid = RunningJobWithReturns();
  EXPECT_EQ(Post("/api/jobs/" + jid + "/retry", /*with_csrf=*/false).status, 403);
  HttpReply retried = Post("/api/jobs/" + jid + "/retry");
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(retried.json["attempt"], 2);
  EXPECT_EQ(U(retried.json["retried"]), 2u);
  auto envelopes = relays_->Envelopes("dc1");
  ASSERT_TRUE(envelopes.ok());
  EXPECT_EQ(envelopes->back().attempt(), 2u);

  HttpReply cancelled = Post("/api/jobs/" + jid + "/cancel");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.json["job"]["state"], "CANCELLED");
  HttpReply again = Post("/api/jobs/" + jid + "/cancel");
  EXPECT_EQ(again.status, 409) << again.body;
  EXPECT_FALSE(again.json["error"].get<std::string>().empty());
  EXPECT_EQ(Post("/api/jobs/" + jid + "/retry").status, 409);
}

TEST_F(DashboardHttpTest, RetryWithNothingMissingConflicts) {
  AddMinions("dc1", "web-a", 2);
  std::string jid = Submit("web-*");
  SendReturns("dc1", jid, {"web-a0", "web-a1"});
  ASSERT_TRUE(WaitForJob(jid, [](const v1::Job& job) { return job.state() == v1::COMPLETE; }));
  HttpReply reply = Post("/api/jobs/" + jid + "/retry");
  EXPECT_EQ(reply.status, 409) << reply.body;
}

TEST_F(DashboardHttpTest, BadInputIsRejectedWithAMessage) {
  AddMinions("dc1", "web-a", 1);
  std::string jid = Submit("web-*");
  struct Case {
    std::string path;
    int status;
  };
  std::vector<Case> cases = {
      {"/api/jobs?state=bogus", 400},
      {"/api/jobs?state=job_state_unspecified", 400},
      {"/api/jobs?limit=abc", 400},
      {"/api/jobs?limit=5000", 400},
      {"/api/jobs?page_token=not-a-jid", 400},
      {"/api/jobs/not-a-jid", 400},
      {"/api/jobs/99990101000000000001", 404},
      {"/api/jobs/99990101000000000001/missing", 404},
      {"/api/jobs/" + jid + "/returns?filter=sideways", 400},
      {"/api/jobs/" + jid + "/returns?limit=-1", 400},
      {"/api/jobs/" + jid + "/returns?datacenter=..", 400},
      {"/api/jobs/" + jid + "/missing?limit=0", 400},
      {"/api/jobs/" + jid + "/missing?limit=10001", 400},
      {"/api/minions?target=web-*&type=sideways", 400},
      {"/api/minions?target=web-[", 400},
  };
  for (const Case& c : cases) {
    HttpReply reply = Get(c.path);
    EXPECT_EQ(reply.status, c.status) << c.path << ": " << reply.body;
    ASSERT_TRUE(reply.json.is_object()) << c.path << ": " << reply.body;
    EXPECT_FALSE(reply.json["error"].get<std::string>().empty()) << c.path;
  }
  EXPECT_EQ(Post("/api/jobs/99990101000000000001/cancel").status, 404);
}

TEST_F(DashboardHttpTest, RelaysAndMinionsComeFromTheInventory) {
  AddMinions("dc1", "web-a", 3);
  AddMinions("dc2", "db-b", 2, {{"role", "db"}, {"rack", "r7"}});
  ASSERT_TRUE(relays_->RelayHeartbeat("dc1", NowMs(), 5000).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/api/relays").json["relays"].size() == 1; },
                      absl::Seconds(10)));
  HttpReply relays = Get("/api/relays");
  const nlohmann::json& relay = relays.json["relays"][0];
  EXPECT_EQ(relay["relay_id"], "relay-dc1");
  EXPECT_EQ(relay["datacenter"], "dc1");
  EXPECT_EQ(relay["alive"], true);
  EXPECT_EQ(relay["secure"], false);  // the player's heartbeat predates the field

  // A secure relay's refusals and pending keys (docs/PROTOCOL.md 8.3, 8.4).
  wire::v1::RelayEvent event;
  event.set_relay_id("relay-dc2");
  event.set_datacenter("dc2");
  event.set_at_ms(NowMs());
  wire::v1::RelayHeartbeat* heartbeat = event.mutable_heartbeat();
  heartbeat->set_interval_ms(5000);
  heartbeat->set_secure(true);
  heartbeat->set_keys_pending(2);
  (*heartbeat->mutable_dispatches_refused())["bad_signature"] = 3;
  (*heartbeat->mutable_minion_dispatches_refused())["unsigned"] = 1;
  (*heartbeat->mutable_messages_refused())["unbound_id"] = 4;
  ASSERT_TRUE(relays_->AddRaw("events", "event", event.SerializeAsString()).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/api/relays").json["relays"].size() == 2; },
                      absl::Seconds(10)));
  const nlohmann::json secure = Get("/api/relays").json["relays"][1];
  EXPECT_EQ(secure["relay_id"], "relay-dc2");
  EXPECT_EQ(secure["secure"], true);
  EXPECT_EQ(U(secure["keys_pending"]), 2u);
  EXPECT_EQ(U(secure["dispatches_refused"]["bad_signature"]), 3u);
  EXPECT_EQ(U(secure["minion_dispatches_refused"]["unsigned"]), 1u);
  EXPECT_EQ(U(secure["messages_refused"]["unbound_id"]), 4u);
  EXPECT_EQ(secure["bus_kind"], "muster");  // said by no field: an older relay
  EXPECT_FALSE(secure.contains("salt_master"));

  // A Salt relay: its bus kind and its master, as the relays view shows them.
  heartbeat->set_bus_kind("salt");
  heartbeat->mutable_salt_master()->set_condition(wire::v1::SaltMasterState::KEY_REFUSED);
  heartbeat->mutable_salt_master()->set_detail("<b>key refused</b>");
  heartbeat->mutable_salt_master()->set_keys_accepted(5);
  event.set_relay_id("relay-salt1");
  event.set_datacenter("salt1");
  ASSERT_TRUE(relays_->AddRaw("events", "event", event.SerializeAsString()).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/api/relays").json["relays"].size() == 3; },
                      absl::Seconds(10)));
  const nlohmann::json salt = Get("/api/relays").json["relays"][2];
  EXPECT_EQ(salt["relay_id"], "relay-salt1");
  EXPECT_EQ(salt["bus_kind"], "salt");
  EXPECT_EQ(salt["salt_master"]["condition"], "KEY_REFUSED");
  EXPECT_EQ(salt["salt_master"]["detail"], "<b>key refused</b>");
  EXPECT_EQ(U(salt["salt_master"]["keys_accepted"]), 5u);

  HttpReply all = Get("/api/minions");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(U(all.json["total"]), 5u);
  HttpReply web = Get("/api/minions?target=web-a*");
  ASSERT_EQ(web.status, 200) << web.body;
  EXPECT_EQ(U(web.json["total"]), 3u);
  HttpReply db = Get("/api/minions?target=G@role:db%20and%20G@rack:r7&type=compound");
  ASSERT_EQ(db.status, 200) << db.body;
  ASSERT_EQ(db.json["minions"].size(), 2u);
  EXPECT_EQ(db.json["minions"][0]["grains"]["rack"], "r7");
  EXPECT_EQ(db.json["minions"][0]["datacenter"], "dc2");
}

}  // namespace
}  // namespace muster::testing
