// The minion's and fleetsim's side of docs/PROTOCOL.md section 8, against
// the fake relay (a CURVE server that signs as jobd would): a job that is
// not signed by a trusted key never runs, whichever way it comes (publish
// port, own topic, JOB re-send), is never answered, and is counted in the
// heartbeats; the bus is CURVE, pinned to the relay's key; limits hold
// (frame size, queued jobs); the flags fail loudly.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/security/curve_keys.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"
#include "tests/minion_fake_relay.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int Count(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class MinionSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir("minion_security"); }

  // Starts a minion against `relay` and waits for its first heartbeat.
  ChildProcess& StartMinion(FakeRelay& relay, const std::string& id,
                            std::vector<std::string> extra = {}) {
    extra.push_back("--id=" + id);
    extra.push_back("--heartbeat_interval_ms=300");
    extra.push_back("--state_dir=" + dir_ + "/" + id + ".state");
    auto minion = std::make_unique<ChildProcess>();
    EXPECT_TRUE(minion->Start(CommandAgainst(relay, "minion/minion", extra),
                              dir_ + "/" + id + ".log")
                    .ok());
    EXPECT_TRUE(relay.PumpUntil(
        [&] {
          return relay.LatestHeartbeat(id) != nullptr && relay.subscriptions("*") >= 1;
        },
        absl::Seconds(20)))
        << minion->ReadLog();
    processes_.push_back(std::move(minion));
    return *processes_.back();
  }

  // Runs `argv` to its end; its exit code and output.
  std::pair<int, std::string> RunToEnd(const std::vector<std::string>& argv,
                                       const std::string& name) {
    ChildProcess process;
    EXPECT_TRUE(process.Start(argv, dir_ + "/" + name + ".log").ok());
    absl::StatusOr<int> code = process.Wait(absl::Seconds(20));
    return {code.ok() ? *code : -1, process.ReadLog()};
  }

  void PublishAndWait(FakeRelay& relay, const std::string& topic,
                      const wire::v1::JobEnvelope& job, size_t returns) {
    relay.Publish(topic, job);
    ASSERT_TRUE(relay.PumpUntil([&] { return relay.ReturnsFor(job.jid()).size() >= returns; },
                                absl::Seconds(10)));
  }

  std::string dir_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
};

TEST_F(MinionSecurityTest, ForgedAlteredAndReplayedJobsNeverRunAndAreCounted) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  ChildProcess& minion = StartMinion(relay, "web-1");
  security::SigningKey rogue = security::SigningKey::Generate();
  auto forged = [&](int n) {
    return MakeTestJob(absl::StrFormat("202612060000000001%02d", n), "cmd.run",
                       {absl::StrCat("touch ", dir_, "/forged-", n)}, "*");
  };
  // A real job runs; the same envelope with attempt + 100 must not.
  const std::string legit_marker = dir_ + "/legit";
  wire::v1::JobEnvelope legit = relay.Sign(
      MakeTestJob("20261206000000000001", "cmd.run", {"touch " + legit_marker}, "*"));
  PublishAndWait(relay, "*", legit, 1);
  ASSERT_TRUE(Exists(legit_marker));
  ASSERT_EQ(unlink(legit_marker.c_str()), 0);

  relay.PublishAsIs("*", forged(1));                       // unsigned
  relay.PublishAsIs("@web-1@", forged(2));                 // unsigned, by name
  ASSERT_TRUE(relay.SendJob("web-1", forged(3)));          // unsigned, JOB re-send
  wire::v1::JobEnvelope rogue_job = forged(4);
  ASSERT_TRUE(security::SignDispatch(rogue, rogue_job).ok());
  relay.PublishAsIs("*", rogue_job);                       // unknown_key
  wire::v1::JobEnvelope altered = relay.Sign(forged(5));
  altered.set_args(0, absl::StrCat("touch ", dir_, "/forged-5b"));
  relay.PublishAsIs("*", altered);                         // bad_signature
  wire::v1::JobEnvelope replay = legit;
  replay.set_attempt(legit.attempt() + 100);
  relay.PublishAsIs("*", replay);                          // bad_signature
  relay.PublishAsIs("*", replay);                          // again: logged once

  PublishAndWait(relay, "*", MakeTestJob("20261206000000000002", "test.ping", {}, "*"), 1);
  ASSERT_TRUE(relay.PumpUntil(
      [&] {
        const wire::v1::MinionHeartbeat* heartbeat = relay.LatestHeartbeat("web-1");
        return heartbeat->dispatches_refused().count("bad_signature") > 0 &&
               heartbeat->dispatches_refused().at("bad_signature") == 3;
      },
      absl::Seconds(10)))
      << minion.ReadLog();
  const auto& refused = relay.LatestHeartbeat("web-1")->dispatches_refused();
  EXPECT_EQ(refused.at("unsigned"), 3u);
  EXPECT_EQ(refused.at("unknown_key"), 1u);
  EXPECT_EQ(refused.size(), 3u);

  for (const std::string name : {"forged-1", "forged-2", "forged-3", "forged-4", "forged-5",
                                 "forged-5b", "legit"}) {
    EXPECT_FALSE(Exists(dir_ + "/" + name)) << name;
  }
  for (const wire::v1::Return& ret : relay.returns()) {
    EXPECT_EQ(ret.attempt(), 1u);
    EXPECT_TRUE(ret.jid() == legit.jid() || ret.jid() == "20261206000000000002") << ret.jid();
  }
  for (const wire::v1::Receipt& receipt : relay.receipts()) {
    EXPECT_TRUE(receipt.jid() == legit.jid() || receipt.jid() == "20261206000000000002")
        << "a refused job was answered: " << receipt.jid();
    EXPECT_EQ(receipt.attempt(), 1u);
  }
  EXPECT_EQ(minion.Stop(), 0);
  std::string log = minion.ReadLog();
  EXPECT_EQ(Count(log, "refused job 20261206000000000101 attempt 1 (cmd.run): unsigned"), 1)
      << log;
  EXPECT_EQ(Count(log, "refused job 20261206000000000001 attempt 101 (cmd.run): bad_signature"),
            1)
      << log;
  EXPECT_NE(log.find("refused unsigned 3, unknown_key 1, bad_signature 3"), std::string::npos)
      << log;
}

TEST_F(MinionSecurityTest, SecurityFlagsAreRequiredUnlessInsecure) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  std::vector<std::string> base = {RunfilePath("minion/minion"), "--id=web-1",
                                   "--state_dir=" + dir_ + "/state"};
  auto [code, log] = RunToEnd(base, "no-keys");
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("--trusted_keys=FILE or --trusted_key=HEX is required"), std::string::npos)
      << log;
  std::vector<std::string> no_relay_key = base;
  no_relay_key.push_back("--trusted_key=" +
                         security::PublicKeyHex(relay.signing_key().public_key()));
  std::tie(code, log) = RunToEnd(no_relay_key, "no-relay-key");
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("--relay_public_key=Z85 or --relay_public_key_file=PATH is required"),
            std::string::npos)
      << log;
  std::vector<std::string> bad_key = no_relay_key;
  bad_key.push_back("--relay_public_key=short");
  std::tie(code, log) = RunToEnd(bad_key, "bad-relay-key");
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("--relay_public_key"), std::string::npos) << log;
  std::vector<std::string> bad_trusted = base;
  bad_trusted.push_back("--trusted_key=abcd");
  std::tie(code, log) = RunToEnd(bad_trusted, "bad-trusted-key");
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("--trusted_key"), std::string::npos) << log;

  // fleetsim asks for the same.
  std::tie(code, log) = RunToEnd({RunfilePath("minion/fleetsim"), "--count=2"}, "fleet-no-keys");
  EXPECT_EQ(code, 2);
  EXPECT_NE(log.find("--trusted_keys=FILE or --trusted_key=HEX is required"), std::string::npos)
      << log;
}

TEST_F(MinionSecurityTest, InsecureMinionRunsUnsignedJobsAndSaysSoLoudly) {
  FakeRelay relay(/*secure=*/false);
  ASSERT_TRUE(relay.Start().ok());
  ChildProcess& minion = StartMinion(relay, "web-1");
  PublishAndWait(relay, "*",
                 MakeTestJob("20261206000000000003", "test.echo", {"plain"}, "*"), 1);
  EXPECT_TRUE(relay.ReturnsFor("20261206000000000003")[0].success());
  EXPECT_EQ(minion.Stop(), 0);
  EXPECT_NE(minion.ReadLog().find("INSECURE"), std::string::npos) << minion.ReadLog();
}

TEST_F(MinionSecurityTest, MinionPinnedToAnotherRelayKeyNeverTalksToIt) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  ChildProcess minion;
  ASSERT_TRUE(minion
                  .Start(CommandAgainst(relay, "minion/minion",
                                        {"--id=web-1", "--heartbeat_interval_ms=200",
                                         "--state_dir=" + dir_ + "/state",
                                         // The last one given wins.
                                         "--relay_public_key=" +
                                             security::GenerateCurveKeyPair()->public_z85}),
                         dir_ + "/minion.log")
                  .ok());
  relay.PumpFor(absl::Seconds(3));
  EXPECT_TRUE(minion.running());
  EXPECT_TRUE(relay.heartbeats().empty());
  EXPECT_EQ(relay.subscriptions("*"), 0);
  // An insecure minion cannot reach a CURVE relay either.
  ChildProcess plain;
  ASSERT_TRUE(plain
                  .Start({RunfilePath("minion/minion"), "--id=web-2", "--insecure",
                          absl::StrCat("--publish_port=", relay.publish_port()),
                          absl::StrCat("--return_port=", relay.return_port()),
                          "--heartbeat_interval_ms=200", "--state_dir=" + dir_ + "/state2"},
                         dir_ + "/plain.log")
                  .ok());
  relay.PumpFor(absl::Seconds(2));
  EXPECT_TRUE(relay.heartbeats().empty());
}

// A relay refuses the key until an operator accepts it (PROTOCOL 8.4):
// libzmq gives a refused connection up, the minion re-makes it and joins
// once its key is accepted.
TEST_F(MinionSecurityTest, RefusedKeyIsRetriedAndJoinsOnceAccepted) {
  FakeRelay relay;
  relay.EnableZap();
  ASSERT_TRUE(relay.Start().ok());
  std::string state_dir = dir_ + "/state";
  auto [code, printed] = RunToEnd({RunfilePath("minion/minion"), "--id=web-1",
                                   "--state_dir=" + state_dir, "--print_key"},
                                  "print");
  ASSERT_EQ(code, 0) << printed;
  size_t at = printed.find("public_key ");
  ASSERT_NE(at, std::string::npos) << printed;
  std::string key = printed.substr(at + 11, 40);
  relay.RefuseKey(key);
  ChildProcess minion;
  ASSERT_TRUE(minion
                  .Start(CommandAgainst(relay, "minion/minion",
                                        {"--id=web-1", "--heartbeat_interval_ms=200",
                                         "--state_dir=" + state_dir}),
                         dir_ + "/minion.log")
                  .ok());
  ASSERT_TRUE(relay.PumpUntil([&] { return relay.zap_refusals() >= 4; }, absl::Seconds(20)))
      << minion.ReadLog();
  EXPECT_TRUE(relay.heartbeats().empty());
  relay.AcceptKey(key);
  ASSERT_TRUE(relay.PumpUntil(
      [&] { return relay.LatestHeartbeat("web-1") != nullptr && relay.subscriptions("*") == 1; },
      absl::Seconds(20)))
      << minion.ReadLog();
  EXPECT_EQ(relay.KeyOf("web-1"), key);
  PublishAndWait(relay, "*", MakeTestJob("20261206000000000040", "test.ping", {}, "*"), 1);
  EXPECT_EQ(minion.Stop(), 0);
  EXPECT_NE(minion.ReadLog().find("refused the connection"), std::string::npos)
      << minion.ReadLog();
}

TEST_F(MinionSecurityTest, PrintKeyShowsTheKeyPairKeptInTheStateDirectory) {
  std::vector<std::string> argv = {RunfilePath("minion/minion"), "--id=web-1",
                                   "--state_dir=" + dir_ + "/state", "--print_key"};
  auto [code, first] = RunToEnd(argv, "print1");
  ASSERT_EQ(code, 0) << first;
  auto [code2, second] = RunToEnd(argv, "print2");
  ASSERT_EQ(code2, 0);
  EXPECT_EQ(first, second);
  std::string key_file = dir_ + "/state/minion_curve.key";
  struct stat info;
  ASSERT_EQ(stat(key_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(first, '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (parts.size() == 2) fields[parts[0]] = parts[1];
  }
  EXPECT_EQ(fields["id"], "web-1");
  ASSERT_EQ(fields["public_key"].size(), 40u) << first;
  EXPECT_EQ(fields["fingerprint"], security::CurveFingerprint(fields["public_key"]));
  EXPECT_NE(ReadFile(key_file).find("public " + fields["public_key"]), std::string::npos);
}

TEST_F(MinionSecurityTest, JobOverTheQueueCapGetsAFailedReturnAtOnce) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  StartMinion(relay, "web-1", {"--max_concurrent_jobs=1", "--max_queued_jobs=1"});
  const std::string started = dir_ + "/started";
  relay.Publish("*", MakeTestJob("20261206000000000010", "cmd.run",
                                 {"touch " + started + "; sleep 2"}, "*"));
  ASSERT_TRUE(relay.PumpUntil([&] { return Exists(started); }, absl::Seconds(10)));
  relay.Publish("*", MakeTestJob("20261206000000000011", "test.ping", {}, "*"));  // waits
  relay.Publish("*", MakeTestJob("20261206000000000012", "test.ping", {}, "*"));  // over
  ASSERT_TRUE(relay.PumpUntil(
      [&] { return !relay.ReturnsFor("20261206000000000012").empty(); }, absl::Seconds(10)));
  EXPECT_TRUE(relay.ReturnsFor("20261206000000000011").empty());  // still waiting
  wire::v1::Return over = relay.ReturnsFor("20261206000000000012")[0];
  EXPECT_FALSE(over.success());
  EXPECT_EQ(over.retcode(), 1);
  EXPECT_NE(over.stderr().find("--max_queued_jobs"), std::string::npos) << over.stderr();
  ASSERT_TRUE(relay.PumpUntil(
      [&] { return !relay.ReturnsFor("20261206000000000011").empty(); }, absl::Seconds(10)));
  EXPECT_TRUE(relay.ReturnsFor("20261206000000000011")[0].success());
}

TEST_F(MinionSecurityTest, OversizedFrameDropsTheConnectionNotTheMinion) {
  FakeRelay relay;
  ASSERT_TRUE(relay.Start().ok());
  ChildProcess& minion = StartMinion(relay, "web-1");
  relay.PublishRaw({"*", std::string(2 << 20, 'x')});
  // libzmq closes the connection that brought it; the minion reconnects.
  ASSERT_TRUE(relay.PumpUntil(
      [&] {
        return minion.ReadLog().find("lost connection to relay 127.0.0.1 (publish port)") !=
               std::string::npos;
      },
      absl::Seconds(20)))
      << minion.ReadLog();
  // Jobs published while it reconnects are lost (a relay re-sends them):
  // publish until one arrives.
  int tries = 0;
  ASSERT_TRUE(relay.PumpUntil(
      [&] {
        if (relay.returns().empty()) {
          relay.Publish("*", MakeTestJob(absl::StrCat("202612060000000002", 10 + tries++),
                                         "test.ping", {}, "*"));
        }
        return !relay.returns().empty();
      },
      absl::Seconds(20)));
  EXPECT_TRUE(minion.running());
}

// fleetsim: 20 minions over 4 sockets, each socket with its own CURVE key
// pair kept in --key_dir.
TEST_F(MinionSecurityTest, FleetsimRefusesForgeriesAndTakesSignedListProofs) {
  FakeRelay relay;
  relay.EnableZap();
  ASSERT_TRUE(relay.Start().ok());
  const std::string key_dir = dir_ + "/fleet-keys";
  std::vector<std::string> argv = CommandAgainst(
      relay, "minion/fleetsim",
      {"--count=20", "--sockets=4", "--threads=2", "--id_pattern=sim-{n:02}.{dc}",
       "--latency_ms_max=0", "--heartbeat_interval_ms=300", "--key_dir=" + key_dir});
  auto start = [&](ChildProcess& fleet, const std::string& log) {
    ASSERT_TRUE(fleet.Start(argv, dir_ + "/" + log).ok());
    ASSERT_TRUE(relay.PumpUntil(
        [&] { return fleet.ReadLog().find("fleetsim ready 20 minions") != std::string::npos; },
        absl::Seconds(20)))
        << fleet.ReadLog();
  };
  ChildProcess fleet;
  start(fleet, "fleet1.log");

  relay.PublishAsIs("*", MakeTestJob("20261206000000000030", "test.ping", {}, "*"));
  relay.PublishAsIs("@sim-03.dc1@",
                    MakeTestJob("20261206000000000031", "test.ping", {}, "sim-03.dc1",
                                v1::LIST));
  PublishAndWait(relay, "*", MakeTestJob("20261206000000000032", "test.ping", {}, "*"), 20);

  // A LIST as a relay publishes it: once per listed id, with its proof.
  std::vector<std::string> ids = {"sim-01.dc1", "sim-02.dc1", "sim-03.dc1", "nobody.dc1"};
  wire::v1::JobEnvelope list = relay.Sign(
      MakeTestJob("20261206000000000033", "test.ping", {}, absl::StrJoin(ids, ","), v1::LIST));
  security::MerkleTree tree(ids);
  for (uint32_t i = 0; i < ids.size(); ++i) {
    wire::v1::JobEnvelope one = list;
    one.mutable_target()->set_expression(ids[i]);
    *one.mutable_list_proof() = tree.Proof(i);
    if (i == 2) one.mutable_target()->set_expression("sim-04.dc1");  // a proof for another id
    relay.PublishAsIs("@" + one.target().expression() + "@", one);
  }
  ASSERT_TRUE(relay.PumpUntil(
      [&] { return relay.ReturnsFor("20261206000000000033").size() >= 2; }, absl::Seconds(10)));
  relay.PumpFor(absl::Milliseconds(500));
  std::vector<std::string> answered;
  for (const auto& ret : relay.ReturnsFor("20261206000000000033")) {
    answered.push_back(ret.minion_id());
  }
  std::sort(answered.begin(), answered.end());
  EXPECT_EQ(answered, (std::vector<std::string>{"sim-01.dc1", "sim-02.dc1"}));
  EXPECT_TRUE(relay.ReturnsFor("20261206000000000030").empty());
  EXPECT_TRUE(relay.ReturnsFor("20261206000000000031").empty());

  // Each socket's first minion reports its socket's refusals: the forged
  // broadcast reached all 4 sockets; the forged LIST and the altered proof
  // the socket of their id.
  ASSERT_TRUE(relay.PumpUntil(
      [&] {
        uint64_t unsigned_total = 0, bad_total = 0;
        for (int n = 1; n <= 4; ++n) {
          const auto* heartbeat = relay.LatestHeartbeat(absl::StrFormat("sim-%02d.dc1", n));
          if (heartbeat == nullptr) return false;
          const auto& refused = heartbeat->dispatches_refused();
          if (refused.count("unsigned")) unsigned_total += refused.at("unsigned");
          if (refused.count("bad_signature")) bad_total += refused.at("bad_signature");
        }
        return unsigned_total == 5 && bad_total == 1;
      },
      absl::Seconds(10)));
  for (int n = 5; n <= 20; ++n) {
    EXPECT_EQ(relay.LatestHeartbeat(absl::StrFormat("sim-%02d.dc1", n))
                  ->dispatches_refused()
                  .size(),
              0u);
  }
  for (const auto& receipt : relay.receipts()) {
    EXPECT_NE(receipt.jid(), "20261206000000000030");
    EXPECT_NE(receipt.jid(), "20261206000000000031");
  }

  // The keys are kept: a restarted fleetsim presents the same ones.
  std::vector<std::string> keys;
  for (int s = 0; s < 4; ++s) {
    std::string path = absl::StrCat(key_dir, "/socket-", s, ".key");
    struct stat info;
    ASSERT_EQ(stat(path.c_str(), &info), 0) << path;
    EXPECT_EQ(info.st_mode & 0777, 0600);
    keys.push_back(ReadFile(path));
  }
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 4u);
  // Each minion heartbeats with its socket's key (minion n on socket
  // (n - 1) % 4).
  for (int n = 1; n <= 20; ++n) {
    std::string key = relay.KeyOf(absl::StrFormat("sim-%02d.dc1", n));
    ASSERT_EQ(key.size(), 40u) << n;
    EXPECT_NE(keys[(n - 1) % 4].find("public " + key), std::string::npos) << n;
  }
  EXPECT_EQ(fleet.Stop(), 0);
  EXPECT_NE(fleet.ReadLog().find("refused 6"), std::string::npos) << fleet.ReadLog();
  ChildProcess again;
  start(again, "fleet2.log");
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(ReadFile(absl::StrCat(key_dir, "/socket-", s, ".key")), keys[s]);
  }
}

}  // namespace
}  // namespace muster::testing
