// relayd's half of signed dispatches (docs/PROTOCOL.md 8.1-8.3), end to end
// on a real redis-server, a real relayd and fake minions that read the bus
// directly: what is published is exactly what jobd signed; anything else in
// the job stream (unsigned, a rogue key, one byte changed, another
// datacenter's, oversized) is refused before the dedup, counted by reason
// in the heartbeat and /metrics, and never reaches a minion. LIST targets
// reach each minion with a proof that verifies; jobd's key can be rotated.
#include <signal.h>

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"
#include "common/compress/zlib_codec.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"
#include "tests/prometheus_text.h"
#include "tests/relay_fake_minion.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(15);

std::string Hex(const security::SigningKey& key) {
  return security::PublicKeyHex(key.public_key());
}

wire::v1::JobEnvelope Signed(wire::v1::JobEnvelope job, const security::SigningKey& key) {
  EXPECT_TRUE(security::SignDispatch(key, job).ok());
  return job;
}

class RelaySecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = *std::move(connection);
  }

  void StartRelay(std::vector<std::string> flags = {}) {
    metrics_port_ = FreePort();
    flags.push_back(absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port_));
    relay_ = std::make_unique<RelayProcess>("dc1", redis_.address_string(), std::move(flags));
    absl::Status started = relay_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  std::unique_ptr<FakeMinion> Minion(const std::string& id) {
    return std::make_unique<FakeMinion>(context_, id, relay_->publish_endpoint(),
                                        relay_->return_endpoint());
  }

  void Add(const wire::v1::JobEnvelope& job) {
    ASSERT_TRUE(AddJobBytes(*redis_connection_, "dc1", job.SerializeAsString()).ok());
  }

  // Waits until `minion`'s subscription is up: sends signed broadcasts (a
  // new jid every 100 ms; PUB drops them until then) until one arrives.
  void WarmUp(FakeMinion& minion) {
    int calls = 0;
    ASSERT_TRUE(minion.PumpUntil(
        [&] {
          if (calls++ % 10 == 0) {
            Add(Signed(MakeJob(absl::StrCat("warmup-", minion.id(), "-", calls), 1,
                               muster::v1::GLOB, "*", "dc1"),
                       TestSigningKey()));
          }
          return !minion.jobs().empty();
        },
        kWait))
        << relay_->process().ReadLog();
  }

  // The jobs `minion` received with this jid.
  static std::vector<FakeMinion::ReceivedJob> Received(const FakeMinion& minion,
                                                       const std::string& jid) {
    std::vector<FakeMinion::ReceivedJob> jobs;
    for (const FakeMinion::ReceivedJob& received : minion.jobs()) {
      if (received.job.jid() == jid) jobs.push_back(received);
    }
    return jobs;
  }

  // Sends a signed broadcast and waits until `minion` has it: every entry
  // added before it has been handled (one reader, stream order).
  void Barrier(FakeMinion& minion, const std::string& jid) {
    Add(Signed(MakeJob(jid, 1, muster::v1::GLOB, "*", "dc1"), TestSigningKey()));
    ASSERT_TRUE(minion.PumpUntil(
        [&] { return !minion.jobs().empty() && minion.jobs().back().job.jid() == jid; }, kWait))
        << relay_->process().ReadLog();
  }

  std::vector<wire::v1::Delivery> Deliveries(const std::string& jid) {
    std::vector<wire::v1::Delivery> deliveries;
    absl::StatusOr<std::vector<wire::v1::RelayEvent>> events = ReadRelayEvents(*redis_connection_);
    EXPECT_TRUE(events.ok());
    if (!events.ok()) return deliveries;
    for (const wire::v1::RelayEvent& event : *events) {
      if (event.has_delivery() && event.delivery().jid() == jid) {
        deliveries.push_back(event.delivery());
      }
    }
    return deliveries;
  }

  // Waits for a relay heartbeat whose dispatches_refused is `want`.
  bool HeartbeatShowsRefused(const std::map<std::string, uint64_t>& want) {
    return WaitFor(
        [&] {
          absl::StatusOr<std::vector<wire::v1::RelayEvent>> events =
              ReadRelayEvents(*redis_connection_);
          if (!events.ok()) return false;
          for (auto it = events->rbegin(); it != events->rend(); ++it) {
            if (!it->has_heartbeat()) continue;
            std::map<std::string, uint64_t> refused(it->heartbeat().dispatches_refused().begin(),
                                                    it->heartbeat().dispatches_refused().end());
            return refused == want;
          }
          return false;
        },
        kWait);
  }

  std::optional<wire::v1::RelayHeartbeat> LastHeartbeat() {
    std::optional<wire::v1::RelayHeartbeat> last;
    absl::StatusOr<std::vector<wire::v1::RelayEvent>> events = ReadRelayEvents(*redis_connection_);
    if (!events.ok()) return last;
    for (const wire::v1::RelayEvent& event : *events) {
      if (event.has_heartbeat()) last = event.heartbeat();
    }
    return last;
  }

  double RefusedMetric(const std::string& reason) {
    httplib::Client client("127.0.0.1", metrics_port_);
    client.set_connection_timeout(2);
    client.set_read_timeout(2);
    httplib::Result result = client.Get("/metrics");
    if (!result || result->status != 200) return -1;
    absl::StatusOr<PromText> text = ParsePrometheusText(result->body);
    if (!text.ok()) return -1;
    return text->Value("muster_relay_dispatches_refused_total", {{"reason", reason}}).value_or(-2);
  }

  // jobd's list of the minions a dispatch is for (docs/PROTOCOL.md 2.1).
  void SetExpected(const std::string& jid, uint32_t attempt, const std::vector<std::string>& ids) {
    wire::v1::ExpectedMinions expected;
    for (const std::string& id : ids) expected.add_minion_ids(id);
    ASSERT_TRUE(redis_connection_
                    ->Command({"SET", absl::StrCat("muster:expected:dc1:", jid, ":", attempt),
                               compress::ZlibCompress(expected.SerializeAsString())})
                    .ok());
  }

  int CountInLog(const std::string& needle) {
    std::string log = relay_->process().ReadLog();
    int count = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) {
      ++count;
    }
    return count;
  }

  zmq::context_t context_;
  RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayProcess> relay_;
  int metrics_port_ = 0;
};

TEST_F(RelaySecurityTest, ForgedTamperedForeignAndOversizedEntriesAreRefusedAndCounted) {
  StartRelay();
  auto minion = Minion("a.dc1");
  WarmUp(*minion);

  // Unsigned (the issue's hand-made XADD of a cmd.run).
  wire::v1::JobEnvelope unsigned_job = MakeJob("50000000000000000001", 1, muster::v1::GLOB, "*",
                                               "dc1");
  unsigned_job.set_function("cmd.run");
  unsigned_job.add_args("touch /tmp/forged");
  Add(unsigned_job);
  // Signed by a key the relay does not trust.
  security::SigningKey rogue = security::SigningKey::Generate();
  Add(Signed(MakeJob("50000000000000000002", 1, muster::v1::GLOB, "*", "dc1"), rogue));
  // One byte changed in an argument after signing.
  wire::v1::JobEnvelope args_job = MakeJob("50000000000000000003", 1, muster::v1::GLOB, "*", "dc1");
  args_job.set_function("cmd.run");
  args_job.add_args("echo hi");
  args_job = Signed(args_job, TestSigningKey());
  args_job.set_args(0, "echo hj");
  Add(args_job);
  // The attempt changed after signing (a replay made "new").
  wire::v1::JobEnvelope attempt_job =
      Signed(MakeJob("50000000000000000004", 1, muster::v1::GLOB, "*", "dc1"), TestSigningKey());
  attempt_job.set_attempt(101);
  Add(attempt_job);
  // Properly signed, for another datacenter, put in this one's stream.
  Add(Signed(MakeJob("50000000000000000005", 1, muster::v1::GLOB, "*", "dc2"), TestSigningKey()));
  // Over 16 MiB + 64 KiB: refused before it is parsed, however well signed.
  wire::v1::JobEnvelope huge = MakeJob("50000000000000000006", 1, muster::v1::GLOB, "*", "dc1");
  huge.add_args(std::string((16 << 20) + (64 << 10), 'x'));
  Add(Signed(huge, TestSigningKey()));
  // Signed by the trusted key: published.
  Add(Signed(MakeJob("50000000000000000007", 1, muster::v1::GLOB, "*", "dc1"), TestSigningKey()));
  Barrier(*minion, "50000000000000000008");
  // Events are written after the publish: once the last one is there, all are.
  ASSERT_TRUE(WaitFor([&] { return Deliveries("50000000000000000008").size() == 1; }, kWait));

  for (int i = 1; i <= 6; ++i) {
    EXPECT_TRUE(Received(*minion, absl::StrCat("5000000000000000000", i)).empty()) << i;
    EXPECT_TRUE(Deliveries(absl::StrCat("5000000000000000000", i)).empty()) << i;
  }
  EXPECT_EQ(Received(*minion, "50000000000000000007").size(), 1u);
  EXPECT_EQ(Deliveries("50000000000000000007").size(), 1u);
  const std::map<std::string, uint64_t> want = {{"unsigned", 1},
                                                {"unknown_key", 1},
                                                {"bad_signature", 2},
                                                {"wrong_datacenter", 1},
                                                {"too_large", 1}};
  EXPECT_TRUE(HeartbeatShowsRefused(want)) << relay_->process().ReadLog();
  std::optional<wire::v1::RelayHeartbeat> heartbeat = LastHeartbeat();
  ASSERT_TRUE(heartbeat.has_value());
  EXPECT_TRUE(heartbeat->secure());
  for (const auto& [reason, count] : want) {
    EXPECT_EQ(RefusedMetric(reason), static_cast<double>(count)) << reason;
  }
  EXPECT_EQ(RefusedMetric("bad_list_proof"), 0);
  // Logged with the reason.
  EXPECT_EQ(CountInLog("50000000000000000001 attempt 1 refused (unsigned)"), 1);
  EXPECT_EQ(CountInLog("50000000000000000004 attempt 101 refused (bad_signature)"), 1);
  EXPECT_EQ(CountInLog("refused (too_large)"), 1);
}

// The issue's pre-registered jids: a forgery XADDed before the real
// dispatch under the same (jid, attempt) must not make the relay drop the
// real one as a duplicate.
TEST_F(RelaySecurityTest, ForgedEntryAheadOfTheRealOneDoesNotBlockIt) {
  StartRelay();
  auto minion = Minion("a.dc1");
  WarmUp(*minion);
  const std::string jid = "51000000000000000001";
  wire::v1::JobEnvelope forged = MakeJob(jid, 1, muster::v1::GLOB, "*", "dc1");
  forged.set_function("cmd.run");
  forged.add_args("forged");
  Add(forged);                                                  // unsigned
  Add(Signed(forged, security::SigningKey::Generate()));        // rogue key
  wire::v1::JobEnvelope real = MakeJob(jid, 1, muster::v1::GLOB, "*", "dc1");
  real.set_function("cmd.run");
  real.add_args("real");
  Add(Signed(real, TestSigningKey()));
  Barrier(*minion, "51000000000000000002");
  ASSERT_TRUE(WaitFor([&] { return Deliveries("51000000000000000002").size() == 1; }, kWait));

  std::vector<FakeMinion::ReceivedJob> received = Received(*minion, jid);
  ASSERT_EQ(received.size(), 1u);
  ASSERT_EQ(received[0].job.args_size(), 1);
  EXPECT_EQ(received[0].job.args(0), "real");
  std::vector<wire::v1::Delivery> deliveries = Deliveries(jid);
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].status(), wire::v1::Delivery::DELIVERED);
  EXPECT_TRUE(HeartbeatShowsRefused({{"unsigned", 1}, {"unknown_key", 1}}));
}

// PROTOCOL 8.2: each listed minion gets an envelope naming only it, with a
// proof that leads to the root jobd signed; so does a re-send over the
// return port. A single-L@ COMPOUND is sent unchanged to each listed minion.
TEST_F(RelaySecurityTest, ListTargetsReachEachMinionWithAProofThatVerifies) {
  StartRelay();
  auto a = Minion("a.dc1");
  auto c = Minion("c.dc1");
  WarmUp(*a);
  WarmUp(*c);
  std::unique_ptr<security::TrustedKeys> trusted =
      *security::TrustedKeys::Create("", {Hex(TestSigningKey())});
  security::DispatchVerifier verifier(trusted.get(), "dc1");

  const std::string list_jid = "52000000000000000001";
  Add(Signed(MakeJob(list_jid, 1, muster::v1::LIST, "a.dc1, b.dc1, c.dc1, late.dc1", "dc1"),
             TestSigningKey()));
  SetExpected(list_jid, 1, {"a.dc1", "b.dc1", "c.dc1", "late.dc1"});
  wire::v1::JobEnvelope compound =
      Signed(MakeJob("52000000000000000002", 1, muster::v1::COMPOUND, "L@a.dc1,c.dc1", "dc1"),
             TestSigningKey());
  Add(compound);
  Barrier(*a, "52000000000000000003");
  ASSERT_TRUE(c->PumpUntil([&] { return !Received(*c, "52000000000000000003").empty(); }, kWait));

  const std::map<std::string, uint32_t> index = {{"a.dc1", 0}, {"c.dc1", 2}};
  for (FakeMinion* minion : {a.get(), c.get()}) {
    std::vector<FakeMinion::ReceivedJob> lists = Received(*minion, list_jid);
    ASSERT_EQ(lists.size(), 1u) << minion->id();
    const FakeMinion::ReceivedJob& listed = lists[0];
    EXPECT_EQ(listed.topic, bus::MinionTopic(minion->id()));
    EXPECT_EQ(listed.job.target().type(), muster::v1::LIST);
    EXPECT_EQ(listed.job.target().expression(), minion->id());
    EXPECT_EQ(listed.job.list_proof().index(), index.at(minion->id()));
    EXPECT_EQ(listed.job.list_proof().count(), 4u);
    EXPECT_EQ(verifier.Verify(listed.job), security::Refusal::kNone) << minion->id();
    std::vector<FakeMinion::ReceivedJob> directs = Received(*minion, compound.jid());
    ASSERT_EQ(directs.size(), 1u) << minion->id();
    const FakeMinion::ReceivedJob& direct = directs[0];
    EXPECT_EQ(direct.topic, bus::MinionTopic(minion->id()));
    EXPECT_EQ(direct.bytes, compound.SerializeAsString()) << "the original envelope, unchanged";
    EXPECT_EQ(verifier.Verify(direct.job), security::Refusal::kNone);
  }

  // A minion that connects after the publish gets the dispatch re-sent on
  // its return-port connection: its own envelope and proof, not the list.
  auto late = Minion("late.dc1");
  ASSERT_TRUE(late->PumpUntil(
      [&] {
        late->SendHeartbeat({}, 10000);
        for (const FakeMinion::ReceivedJob& received : late->jobs()) {
          if (received.resent && received.job.jid() == list_jid) return true;
        }
        return false;
      },
      kWait));
  const FakeMinion::ReceivedJob* resent = nullptr;
  for (const FakeMinion::ReceivedJob& received : late->jobs()) {
    if (received.resent && received.job.jid() == list_jid) resent = &received;
  }
  ASSERT_NE(resent, nullptr);
  EXPECT_EQ(resent->topic, "@late.dc1@");
  EXPECT_EQ(resent->job.target().expression(), "late.dc1");
  EXPECT_EQ(resent->job.list_proof().index(), 3u);
  EXPECT_EQ(verifier.Verify(resent->job), security::Refusal::kNone);
}

// docs/SECURITY.md "Rotating jobd's key": trust old and new, switch jobd,
// drop the old key; the relay re-reads the file by itself.
TEST_F(RelaySecurityTest, KeyRotationThroughTheTrustedKeysFile) {
  security::SigningKey old_key = security::SigningKey::Generate();
  security::SigningKey new_key = security::SigningKey::Generate();
  std::string file = MakeTempDir("trusted") + "/trusted_keys";
  std::ofstream(file) << "# jobd keys\n" << Hex(old_key) << "\n" << Hex(new_key) << "\n";
  StartRelay({"--trusted_keys=" + file});
  auto minion = Minion("a.dc1");
  int calls = 0;
  ASSERT_TRUE(minion->PumpUntil(
      [&] {
        if (calls++ % 10 == 0) {
          Add(Signed(MakeJob(absl::StrCat("old-", calls), 1, muster::v1::GLOB, "*", "dc1"),
                     old_key));
        }
        return !minion->jobs().empty();
      },
      kWait));
  Add(Signed(MakeJob("53000000000000000001", 1, muster::v1::GLOB, "*", "dc1"), new_key));
  ASSERT_TRUE(minion->PumpUntil(
      [&] { return minion->jobs().back().job.jid() == "53000000000000000001"; }, kWait));

  // A file that does not parse (an editor's half-written save): the keys
  // in force stay, and the error is logged.
  std::ofstream(file, std::ios::trunc) << "not a key\n";
  ASSERT_TRUE(WaitFor([&] { return CountInLog("re-reading the trusted keys failed") == 1; },
                      kWait))
      << relay_->process().ReadLog();
  Add(Signed(MakeJob("53000000000000000004", 1, muster::v1::GLOB, "*", "dc1"), old_key));
  ASSERT_TRUE(minion->PumpUntil(
      [&] { return minion->jobs().back().job.jid() == "53000000000000000004"; }, kWait));

  std::ofstream(file, std::ios::trunc) << Hex(new_key) << "\n";
  // SIGHUP has it checked at once (it would within 2 s anyway), and does
  // not end relayd.
  relay_->process().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return CountInLog("trusted keys reloaded") == 1; }, kWait))
      << relay_->process().ReadLog();
  EXPECT_TRUE(WaitFor([&] { return CountInLog("checking the trusted keys file (SIGHUP)") == 1; },
                      kWait))
      << relay_->process().ReadLog();
  EXPECT_TRUE(relay_->process().running());
  EXPECT_EQ(CountInLog(security::KeyId(old_key.public_key())), 2)
      << "named at start and in the error only: " << relay_->process().ReadLog();
  EXPECT_EQ(CountInLog(absl::StrCat("trusted keys reloaded: now ",
                                    security::KeyId(new_key.public_key()))),
            1);
  Add(Signed(MakeJob("53000000000000000002", 1, muster::v1::GLOB, "*", "dc1"), old_key));
  Add(Signed(MakeJob("53000000000000000003", 1, muster::v1::GLOB, "*", "dc1"), new_key));
  ASSERT_TRUE(minion->PumpUntil(
      [&] { return minion->jobs().back().job.jid() == "53000000000000000003"; }, kWait));
  for (const FakeMinion::ReceivedJob& received : minion->jobs()) {
    EXPECT_NE(received.job.jid(), "53000000000000000002");
  }
  EXPECT_TRUE(HeartbeatShowsRefused({{"unknown_key", 1}}));
}

TEST_F(RelaySecurityTest, RelayWithoutTrustedKeysStopsAtStart) {
  std::string dir = MakeTempDir("relay_keys");
  ChildProcess relayd;
  ASSERT_TRUE(relayd
                  .Start({RunfilePath("relay/relayd"), "--datacenter=dc1",
                          "--redis=" + redis_.address_string(), "--publish_port=0",
                          "--return_port=0", "--state_dir=" + dir},
                         dir + "/relayd.log")
                  .ok());
  absl::StatusOr<int> code = relayd.Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << "relayd kept running: " << relayd.ReadLog();
  EXPECT_EQ(*code, 2);
  EXPECT_NE(relayd.ReadLog().find("--trusted_keys/--trusted_key: the relay needs at least one"),
            std::string::npos)
      << relayd.ReadLog();
}

TEST_F(RelaySecurityTest, InsecureRelayPublishesUnsignedDispatchesWithALoudWarning) {
  StartRelay({"--insecure"});
  auto minion = Minion("a.dc1");
  int calls = 0;
  ASSERT_TRUE(minion->PumpUntil(
      [&] {
        if (calls++ % 10 == 0) {
          Add(MakeJob(absl::StrCat("unsigned-", calls), 1, muster::v1::GLOB, "*", "dc1"));
        }
        return !minion->jobs().empty();
      },
      kWait));
  EXPECT_GE(CountInLog("INSECURE"), 1);
  ASSERT_TRUE(WaitFor([&] { return LastHeartbeat().has_value(); }, kWait));
  EXPECT_FALSE(LastHeartbeat()->secure()) << "jobd shows this relay as insecure";
}

}  // namespace
}  // namespace muster::testing
