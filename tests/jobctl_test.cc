// jobctl against a real jobd (in-process, real Redis and SQLite, gRPC over
// loopback): each command's human and JSON output, the exit codes, and the
// errors for a bad target, an unknown jid and an unreachable server. The
// relays' part is played by writing the documented entries into Redis.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/exit_codes.h"
#include "common/security/curve_keys.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"
#include "re2/re2.h"
#include "server/jobd.h"
#include "server/job_tracker.h"
#include "tests/jobd_relay_player.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster {
namespace {

using muster::wire::v1::Delivery;
using testing::ChildProcess;
using testing::RelayPlayer;

struct JobctlResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

class JobctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_server_.Start().ok());
    auto redis = redis_server_.Connect();
    ASSERT_TRUE(redis.ok());
    redis_ = std::move(*redis);
    player_ = std::make_unique<RelayPlayer>(redis_.get());
    dir_ = testing::MakeTempDir("jobctl");
    server::JobdOptions options;
    options.listen = "127.0.0.1:0";
    options.redis = redis_server_.address();
    options.db_path = dir_ + "/muster.db";
    access_ = testing::JobdAccess::ForDir(dir_);
    options.bootstrap_token_file = access_.token_file;
    jobd_ = std::make_unique<server::Jobd>(options);
    ASSERT_TRUE(jobd_->Start().ok());
    server_ = absl::StrCat("127.0.0.1:", jobd_->port());
    auto channel = testing::JobdChannel(server_, access_);
    ASSERT_TRUE(channel.ok()) << channel.status();
    stub_ = v1::JobService::NewStub(*channel);

    int64_t now = absl::ToUnixMillis(absl::Now());
    ASSERT_TRUE(player_->AddMinions("dc1", {"web-1", "web-2"}, {{"role", "web"}}, now).ok());
    ASSERT_TRUE(player_->AddMinions("dc2", {"web-3", "web-4", "db-1"}, {{"role", "web"}}, now).ok());
    ASSERT_TRUE(player_->RelayHeartbeat("dc1", now, 5000).ok());
    ASSERT_TRUE(testing::WaitFor([&] { return MinionCount() == 5; }, absl::Seconds(10)));
  }

  int MinionCount() {
    grpc::ClientContext context;
    v1::ListMinionsRequest request;
    v1::ListMinionsResponse response;
    if (!stub_->ListMinions(&context, request, &response).ok()) return -1;
    return static_cast<int>(response.total());
  }

  // Runs jobctl with `args` (and --server) to completion.
  JobctlResult Run(std::vector<std::string> args, bool with_server = true) {
    std::vector<std::string> argv = {testing::RunfilePath("client/jobctl")};
    if (with_server) argv.push_back("--server=" + server_);
    for (std::string& flag : access_.JobctlFlags()) argv.push_back(flag);
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess process;
    std::string log = absl::StrCat(dir_, "/jobctl-", ++runs_, ".log");
    EXPECT_TRUE(process.Start(argv, log).ok());
    JobctlResult result;
    absl::StatusOr<int> code = process.Wait(absl::Seconds(30));
    EXPECT_TRUE(code.ok()) << "jobctl did not finish";
    result.exit_code = code.ok() ? *code : -1;
    result.output = process.ReadLog();
    return result;
  }

  std::string SubmitJid(const std::vector<std::string>& args) {
    JobctlResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string jid;
    EXPECT_TRUE(RE2::PartialMatch(r.output, R"(jid (\d{20}))", &jid)) << r.output;
    return jid;
  }

  void Return(const std::string& dc, const std::string& jid, const std::string& id, bool ok,
              uint32_t attempt = 1) {
    auto ret = RelayPlayer::MakeReturn(jid, attempt, id, ok);
    ret.set_stdout(absl::StrCat("output of ", id));
    ASSERT_TRUE(player_->SendReturns(dc, {ret}).ok());
  }

  v1::Job GetJob(const std::string& jid) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_jid(jid);
    v1::Job job;
    EXPECT_TRUE(stub_->GetJob(&context, request, &job).ok());
    return job;
  }

  bool WaitReturned(const std::string& jid, uint64_t returned) {
    return testing::WaitFor([&] { return GetJob(jid).completeness().returned() == returned; },
                            absl::Seconds(10));
  }

  testing::RedisServer redis_server_;
  std::unique_ptr<RedisConnection> redis_;
  std::unique_ptr<RelayPlayer> player_;
  std::string dir_;
  std::unique_ptr<server::Jobd> jobd_;
  std::string server_;
  testing::JobdAccess access_;
  std::unique_ptr<v1::JobService::Stub> stub_;
  int runs_ = 0;
};

TEST_F(JobctlTest, SubmitPrintsJidAndExpectedCountsPerDatacenter) {
  JobctlResult r = Run({"submit", "web-*", "test.ping"});
  EXPECT_EQ(r.exit_code, jobctl::kExitOk) << r.output;
  EXPECT_TRUE(RE2::PartialMatch(r.output, R"(jid \d{20}  expected 4 \(dc1 2, dc2 2\))"))
      << r.output;

  JobctlResult json = Run({"--json", "submit", "--type=grain", "role:web", "test.echo", "hi"});
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_NE(json.output.find("\"expected\":\"5\""), std::string::npos) << json.output;
  EXPECT_TRUE(RE2::PartialMatch(json.output, R"("jid":"\d{20}")")) << json.output;
}

TEST_F(JobctlTest, StatusShowsCompletenessRowsAndMissingIdsWithExitCodes) {
  std::string jid = SubmitJid({"submit", "web-*", "cmd.run", "--", "uptime", "-p"});
  Return("dc1", jid, "web-1", true);
  Return("dc1", jid, "web-2", false);
  Return("dc2", jid, "web-3", true);
  ASSERT_TRUE(player_->Deliver("dc1", jid, 1, Delivery::DELIVERED,
                               absl::ToUnixMillis(absl::Now())).ok());
  ASSERT_TRUE(WaitReturned(jid, 3));
  ASSERT_TRUE(testing::WaitFor([&] { return GetJob(jid).datacenters(0).delivered(); },
                               absl::Seconds(10)));

  JobctlResult r = Run({"status", jid});
  EXPECT_EQ(r.exit_code, jobctl::kExitIncomplete) << r.output;  // still running
  EXPECT_NE(r.output.find("RUNNING"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cmd.run uptime -p"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("expected 4 · received 3 · returned 3 (75.0%) · ok 2 · failed 1 · "
                          "missing 1 (0 received, no answer; 1 never reached) · unexpected 0"),
            std::string::npos)
      << r.output;
  // EXPECTED RECEIVED RETURNED OK FAILED MISSING UNREACHED UNEXPECTED DELIVERED
  EXPECT_TRUE(RE2::PartialMatch(r.output, R"(dc1\s+2\s+2\s+2\s+1\s+1\s+0\s+0\s+0\s+\+\d+)"))
      << r.output;
  EXPECT_TRUE(
      RE2::PartialMatch(r.output, R"(dc2\s+2\s+1\s+1\s+1\s+0\s+1\s+1\s+0\s+NOT DELIVERED)"))
      << r.output;
  EXPECT_NE(r.output.find("missing, never reached (1): web-4"), std::string::npos) << r.output;

  JobctlResult json = Run({"status", "--json", jid});
  EXPECT_NE(json.output.find("\"minion_id\":\"web-4\""), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"state\":\"RUNNING\""), std::string::npos) << json.output;

  JobctlResult failed = Run({"returns", "--failed", jid});
  EXPECT_EQ(failed.exit_code, 0) << failed.output;
  EXPECT_NE(failed.output.find("web-2  dc1  FAILED"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find("    output of web-2"), std::string::npos) << failed.output;
  EXPECT_EQ(failed.output.find("web-1"), std::string::npos) << failed.output;

  JobctlResult missing = Run({"returns", "--missing", jid});
  EXPECT_NE(missing.output.find("web-4  dc2  MISSING (never reached)"), std::string::npos)
      << missing.output;

  Return("dc2", jid, "web-4", true);
  ASSERT_TRUE(testing::WaitFor([&] { return GetJob(jid).state() == v1::COMPLETE; },
                               absl::Seconds(10)));
  JobctlResult done = Run({"status", jid});
  EXPECT_EQ(done.exit_code, jobctl::kExitSomeFailed) << done.output;
  EXPECT_NE(done.output.find("COMPLETE"), std::string::npos) << done.output;
  JobctlResult watch = Run({"watch", jid});  // an ended job: one update, then the summary
  EXPECT_EQ(watch.exit_code, jobctl::kExitSomeFailed) << watch.output;
  EXPECT_NE(watch.output.find("expected 4 · received 4 · returned 4 (100.0%)"),
            std::string::npos)
      << watch.output;
}

TEST_F(JobctlTest, WaitFollowsTheJobToCompleteAndExitsZero) {
  ChildProcess process;
  std::string log = dir_ + "/wait.log";
  ASSERT_TRUE(process
                  .Start({testing::RunfilePath("client/jobctl"), "--server=" + server_,
                          access_.JobctlFlags()[0], access_.JobctlFlags()[1], "submit", "--wait",
                          "--type=list", "web-1,web-3", "test.ping"},
                         log)
                  .ok());
  std::string jid;
  ASSERT_TRUE(testing::WaitFor(
      [&] { return RE2::PartialMatch(process.ReadLog(), R"(jid (\d{20}))", &jid); },
      absl::Seconds(10)));
  Return("dc1", jid, "web-1", true);
  Return("dc2", jid, "web-3", true);
  absl::StatusOr<int> code = process.Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok());
  std::string output = process.ReadLog();
  EXPECT_EQ(*code, jobctl::kExitOk) << output;
  EXPECT_NE(output.find("expected 2 · received 2 · returned 2 (100.0%) · ok 2 · failed 0 · "
                        "missing 0"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("COMPLETE"), std::string::npos) << output;
}

TEST_F(JobctlTest, TimedOutJobIsIncompleteAndRetryAsksOnlyTheMissing) {
  std::string jid = SubmitJid({"submit", "--timeout=300ms", "web-*", "test.ping"});
  Return("dc1", jid, "web-1", true);
  ASSERT_TRUE(testing::WaitFor([&] { return GetJob(jid).state() == v1::INCOMPLETE; },
                               absl::Seconds(10)));
  JobctlResult r = Run({"status", "--limit=2", jid});
  EXPECT_EQ(r.exit_code, jobctl::kExitIncomplete) << r.output;
  EXPECT_NE(r.output.find("missing, never reached (3): web-2, web-3 ... (1 more; --all lists every one)"),
            std::string::npos)
      << r.output;
  JobctlResult all = Run({"status", "--all", jid});
  EXPECT_NE(all.output.find("missing, never reached (3): web-2, web-3, web-4"), std::string::npos) << all.output;

  // The retry gets its own timeout: with the job's 300 ms, a loaded
  // machine can end it before `list` below runs.
  JobctlResult retry = Run({"retry", "--timeout=30s", jid});
  EXPECT_EQ(retry.exit_code, 0) << retry.output;
  EXPECT_NE(retry.output.find("attempt 2: retrying 3 missing minions (dc1 1, dc2 2)"),
            std::string::npos)
      << retry.output;
  JobctlResult list = Run({"list", "--state=running"});
  EXPECT_NE(list.output.find(jid), std::string::npos) << list.output;
}

TEST_F(JobctlTest, CancelEndsTheJobAndStatusSaysSo) {
  std::string jid = SubmitJid({"submit", "web-*", "test.sleep", "30"});
  JobctlResult cancel = Run({"cancel", jid});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  EXPECT_NE(cancel.output.find("CANCELLED"), std::string::npos) << cancel.output;
  EXPECT_EQ(Run({"status", jid}).exit_code, jobctl::kExitCancelled);
  JobctlResult again = Run({"cancel", jid});
  EXPECT_EQ(again.exit_code, jobctl::kExitServerError) << again.output;
}

TEST_F(JobctlTest, MinionsAndRelaysListTheInventory) {
  JobctlResult minions = Run({"minions", "--type=glob", "web-*"});
  EXPECT_EQ(minions.exit_code, 0) << minions.output;
  EXPECT_NE(minions.output.find("web-3"), std::string::npos) << minions.output;
  EXPECT_EQ(minions.output.find("db-1"), std::string::npos) << minions.output;
  EXPECT_NE(minions.output.find("4 of 4 minions"), std::string::npos) << minions.output;
  JobctlResult relays = Run({"relays"});
  EXPECT_TRUE(RE2::PartialMatch(relays.output, R"(relay-dc1\s+dc1\s+muster\s+yes)"))
      << relays.output;
  // The player's heartbeat carries no security fields: an old or
  // insecure relay, shown loudly.
  EXPECT_NE(relays.output.find("INSECURE/unknown"), std::string::npos) << relays.output;
  EXPECT_NE(relays.output.find("WARNING: 1 relay runs INSECURE"), std::string::npos)
      << relays.output;
  JobctlResult json = Run({"--json", "relays"});
  EXPECT_NE(json.output.find("\"relay_id\":\"relay-dc1\""), std::string::npos) << json.output;
}

// A Salt relay (docs/PROTOCOL.md: RelayHeartbeat.bus_kind, salt_master)
// whose master is down, and a delivery naming an expected minion the master
// holds no key for (Delivery.unreachable): the API carries both, jobctl
// relays shows the master loudly and jobctl status says which minion is
// unreachable, while the counts stay what they are (it is missing).
TEST_F(JobctlTest, ASaltRelaysMasterAndItsUnreachableMinionsAreShown) {
  const int64_t now = absl::ToUnixMillis(absl::Now());
  muster::wire::v1::RelayHeartbeat heartbeat;
  heartbeat.set_started_at_ms(now - 60000);
  heartbeat.set_interval_ms(5000);
  heartbeat.set_secure(true);
  heartbeat.set_bus_kind("salt");
  muster::wire::v1::SaltMasterState* master = heartbeat.mutable_salt_master();
  master->set_condition(muster::wire::v1::SaltMasterState::DOWN);
  master->set_detail("request port 127.0.0.1:4506: Connection refused");
  master->set_since_ms(now - 12000);
  master->set_keys_accepted(3);
  master->set_keys_pending(1);
  master->set_returns_caught_up(2);
  ASSERT_TRUE(player_->SendHeartbeat("dc2", now, heartbeat).ok());

  std::string jid = SubmitJid({"submit", "web-*", "test.ping"});
  ASSERT_TRUE(player_->Deliver("dc2", jid, 1, Delivery::DELIVERED, now, {"web-4"}).ok());
  ASSERT_TRUE(testing::WaitFor([&] { return GetJob(jid).datacenters(1).delivered(); },
                               absl::Seconds(10)));
  v1::Job job = GetJob(jid);
  const v1::DatacenterStatus& dc2 = job.datacenters(1);
  EXPECT_EQ(dc2.datacenter(), "dc2");
  EXPECT_EQ(dc2.unreachable(), 1u);
  ASSERT_EQ(dc2.attempts_size(), 1);
  EXPECT_EQ(dc2.attempts(0).unreachable(), 1u);
  ASSERT_EQ(dc2.attempts(0).unreachable_ids_size(), 1);
  EXPECT_EQ(dc2.attempts(0).unreachable_ids(0), "web-4");
  EXPECT_EQ(job.datacenters(0).unreachable(), 0u);
  EXPECT_EQ(dc2.completeness().missing(), 2u) << "unreachable minions stay missing";

  v1::ListRelaysResponse listed;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListRelays(&context, v1::ListRelaysRequest(), &listed).ok());
  ASSERT_EQ(listed.relays_size(), 2);
  const v1::Relay& salt = listed.relays(1);
  EXPECT_EQ(salt.relay_id(), "relay-dc2");
  EXPECT_EQ(salt.bus_kind(), "salt");
  EXPECT_EQ(salt.salt_master().condition(), v1::SaltMaster::DOWN);
  EXPECT_EQ(salt.salt_master().keys_accepted(), 3u);
  EXPECT_EQ(salt.salt_master().keys_pending(), 1u);
  EXPECT_EQ(salt.salt_master().since_ms(), now - 12000);
  EXPECT_EQ(listed.relays(0).bus_kind(), "muster") << "a relay too old to say";
  EXPECT_FALSE(listed.relays(0).has_salt_master());

  JobctlResult relays = Run({"relays"});
  EXPECT_EQ(relays.exit_code, 0) << relays.output;
  EXPECT_TRUE(RE2::PartialMatch(relays.output, R"(relay-dc2\s+dc2\s+salt\s+yes.*\s1 secure)"))
      << relays.output;
  EXPECT_TRUE(RE2::PartialMatch(
      relays.output,
      R"(  salt master DOWN for \d+\.\d s: request port 127\.0\.0\.1:4506: Connection refused, )"
      R"(3 keys accepted, 1 pending, 2 returns caught up from its job cache\n)"))
      << relays.output;
  EXPECT_NE(relays.output.find("WARNING: the salt master of relay-dc2 is not UP"),
            std::string::npos)
      << relays.output;
  JobctlResult json = Run({"--json", "relays"});
  EXPECT_NE(json.output.find("\"bus_kind\":\"salt\""), std::string::npos) << json.output;
  EXPECT_NE(json.output.find("\"condition\":\"DOWN\""), std::string::npos) << json.output;

  JobctlResult status = Run({"status", jid});
  EXPECT_NE(status.output.find("dc2: 1 unreachable (web-4): its bus cannot reach them"),
            std::string::npos)
      << status.output;
  EXPECT_EQ(status.output.find("dc1: "), std::string::npos) << status.output;
  JobctlResult status_json = Run({"status", "--json", jid});
  EXPECT_NE(status_json.output.find("\"unreachable_ids\":[\"web-4\"]"), std::string::npos)
      << status_json.output;
}

// jobctl keys, like salt-key: the records a relay wrote are listed with
// their fingerprints, accepted (the record in Redis says so) and deleted.
TEST_F(JobctlTest, KeysListAcceptAndDeleteTheRecordsRelaysWrote) {
  absl::StatusOr<security::CurveKeyPair> pair = security::GenerateCurveKeyPair();
  ASSERT_TRUE(pair.ok());
  wire::v1::MinionKeyRecord record;
  record.set_state(wire::v1::MinionKeyRecord::PENDING);
  record.set_public_key(pair->public_z85);
  record.set_first_seen_ms(1000);
  ASSERT_TRUE(redis_->Command({"HSET", "muster:minion_keys:dc1", "web-1",
                               record.SerializeAsString()}).ok());
  std::string fingerprint = security::CurveFingerprint(pair->public_z85);

  JobctlResult list = Run({"keys", "list", "--state=pending"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_TRUE(RE2::PartialMatch(list.output, R"(dc1\s+web-1\s+PENDING\s+)" + fingerprint))
      << list.output;

  JobctlResult accept = Run({"keys", "accept", "--datacenter=dc1", "--expect_key=" + fingerprint,
                             "*"});
  EXPECT_EQ(accept.exit_code, 0) << accept.output;
  EXPECT_TRUE(RE2::PartialMatch(accept.output, R"(web-1\s+ACCEPTED)")) << accept.output;
  auto stored = redis_->Command({"HGET", "muster:minion_keys:dc1", "web-1"});
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(record.ParseFromString(std::string(stored->str())));
  EXPECT_EQ(record.state(), wire::v1::MinionKeyRecord::ACCEPTED);
  EXPECT_FALSE(record.decided_by().empty());
  EXPECT_NE(Run({"keys", "list", "--state=accepted"}).output.find("web-1"), std::string::npos);

  JobctlResult again = Run({"keys", "accept", "--datacenter=dc1", "web-1"});
  EXPECT_NE(again.output.find("skipped web-1: already accepted"), std::string::npos)
      << again.output;
  EXPECT_EQ(Run({"keys", "delete", "--datacenter=dc1", "web-1"}).exit_code, 0);
  EXPECT_NE(Run({"keys", "list"}).output.find("(no minion keys)"), std::string::npos);

  // A datacenter no relay reported, a bad id, a missing --datacenter.
  JobctlResult unknown_dc = Run({"keys", "accept", "--datacenter=dc9", "web-1"});
  EXPECT_EQ(unknown_dc.exit_code, jobctl::kExitNotFound) << unknown_dc.output;
  EXPECT_NE(unknown_dc.output.find("dc9"), std::string::npos) << unknown_dc.output;
  EXPECT_EQ(Run({"keys", "accept", "--datacenter=dc1", "bad id!"}).exit_code,
            jobctl::kExitUsage);
  EXPECT_EQ(Run({"keys", "delete", "--datacenter=dc1", "*"}).exit_code, jobctl::kExitUsage);
  EXPECT_EQ(Run({"keys", "accept", "web-1"}).exit_code, jobctl::kExitUsage);
  EXPECT_EQ(Run({"keys", "frob"}).exit_code, jobctl::kExitUsage);
}

TEST_F(JobctlTest, BadInputGetsTheServersMessageAndADistinctExitCode) {
  JobctlResult bad_target = Run({"submit", "--type=pcre", "web-(", "test.ping"});
  EXPECT_EQ(bad_target.exit_code, jobctl::kExitUsage) << bad_target.output;
  EXPECT_NE(bad_target.output.find("jobctl: "), std::string::npos);
  EXPECT_NE(bad_target.output.find("pcre target 'web-('"), std::string::npos)
      << bad_target.output;
  EXPECT_EQ(bad_target.output.find("StatusCode"), std::string::npos) << bad_target.output;

  JobctlResult bad_compound = Run({"submit", "--type=compound", "a and (b", "test.ping"});
  EXPECT_EQ(bad_compound.exit_code, jobctl::kExitUsage);
  EXPECT_NE(bad_compound.output.find("unbalanced parentheses"), std::string::npos)
      << bad_compound.output;

  JobctlResult unknown = Run({"status", "20990101000000000001"});
  EXPECT_EQ(unknown.exit_code, jobctl::kExitNotFound) << unknown.output;
  EXPECT_NE(unknown.output.find("20990101000000000001"), std::string::npos) << unknown.output;

  EXPECT_EQ(Run({"submit", "web-*"}).exit_code, jobctl::kExitUsage);
  EXPECT_EQ(Run({"frobnicate"}).exit_code, jobctl::kExitUsage);
  EXPECT_EQ(Run({"submit", "--type=fuzzy", "x", "test.ping"}).exit_code, jobctl::kExitUsage);
  EXPECT_EQ(Run({}).exit_code, jobctl::kExitUsage);

  std::string nowhere = absl::StrCat("--server=127.0.0.1:", testing::FreePort());
  JobctlResult unreachable = Run({nowhere, "status", "20990101000000000001"}, false);
  EXPECT_EQ(unreachable.exit_code, jobctl::kExitUnreachable) << unreachable.output;
  EXPECT_NE(unreachable.output.find("cannot reach jobd at 127.0.0.1:"), std::string::npos)
      << unreachable.output;
}

}  // namespace
}  // namespace muster
