// Security, data plane (issue 16; docs/SECURITY.md): every attack of the
// issue, run against a real secure cluster (real redis-server with ACL
// users, jobd signing, relays verifying and serving CURVE, real minions and
// a fleetsim with their own keys, operator-accepted keys). Each attack must
// be refused, counted where an operator sees it (ListRelays, ListMinionKeys,
// jobd's metrics), and must not make anything run: a forged cmd.run would
// create a marker file, which must not exist.
//
// One cluster serves the whole suite (starting one takes seconds); each
// test leaves it as it found it.
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.hpp>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/security/curve_keys.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"
#include "proto/wire.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleet = 200;
const char* const kMinionA = "minion-a.dc1.example.com";
const char* const kMinionB = "minion-b.dc1.example.com";
const char* const kMinionC = "minion-c.dc2.example.com";

bool Exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

class SecurityAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    DatacenterOptions dc1;
    dc1.name = "dc1";
    dc1.fleet.count = kFleet;
    dc1.fleet.latency_ms_max = 20;
    dc1.minion_ids = {kMinionA, kMinionB};
    DatacenterOptions dc2;
    dc2.name = "dc2";
    dc2.minion_ids = {kMinionC};
    options.datacenters = {dc1, dc2};
    // Keys are accepted the way an operator does it (ChangeMinionKey), not
    // by the relays' --auto_accept, so that ghosts and impostors stay
    // pending.
    options.auto_accept = false;
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
    marker_dir_ = MakeTempDir("security-markers");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  Cluster& cluster() { return *cluster_; }

  // A marker path a forged `cmd.run touch` would create.
  static std::string Marker(const std::string& name) {
    return absl::StrCat(marker_dir_, "/", name);
  }

  // A cmd.run envelope for dc1, not yet signed, for jid/attempt.
  static wire::v1::JobEnvelope Envelope(const std::string& jid, uint32_t attempt,
                                        const std::string& command,
                                        const std::string& dc = "dc1") {
    wire::v1::JobEnvelope envelope;
    envelope.set_jid(jid);
    envelope.set_attempt(attempt);
    envelope.mutable_target()->set_type(v1::GLOB);
    envelope.mutable_target()->set_expression("*");
    envelope.set_function("cmd.run");
    envelope.add_args(command);
    const int64_t now = absl::ToUnixMillis(absl::Now());
    envelope.set_created_at_ms(now);
    envelope.set_deadline_ms(now + 30000);
    envelope.set_timeout_ms(30000);
    envelope.set_datacenter(dc);
    envelope.set_submitter("attacker");
    return envelope;
  }

  void XaddJob(const std::string& dc, const std::string& value) {
    auto reply =
        cluster().redis_connection().Command({"XADD", absl::StrCat("muster:jobs:", dc), "*",
                                              "job", value});
    ASSERT_TRUE(reply.ok() && reply->IsString()) << (reply.ok() ? reply->str() : "io");
  }

  // The sum of a relay's dispatch refusals for `reason` as jobd shows them.
  uint64_t RelayRefused(const std::string& dc, const std::string& reason) {
    absl::StatusOr<std::vector<v1::Relay>> relays = cluster().ListRelays();
    if (!relays.ok()) return 0;
    for (const v1::Relay& relay : *relays) {
      if (relay.datacenter() != dc) continue;
      auto it = relay.dispatches_refused().find(reason);
      return it == relay.dispatches_refused().end() ? 0 : it->second;
    }
    return 0;
  }

  uint64_t MessagesRefused(const std::string& dc, const std::string& reason) {
    absl::StatusOr<std::vector<v1::Relay>> relays = cluster().ListRelays();
    if (!relays.ok()) return 0;
    for (const v1::Relay& relay : *relays) {
      if (relay.datacenter() != dc) continue;
      auto it = relay.messages_refused().find(reason);
      return it == relay.messages_refused().end() ? 0 : it->second;
    }
    return 0;
  }

  // Waits until jobd shows dc's relay having refused `reason` more than
  // `before` times.
  bool WaitRefused(const std::string& dc, const std::string& reason, uint64_t before) {
    return WaitFor([&] { return RelayRefused(dc, reason) > before; }, absl::Seconds(15));
  }

  // A job that must complete normally: proof the cluster still works.
  void ExpectHealthyJob() {
    absl::StatusOr<v1::Job> job =
        cluster().SubmitAndWait("*", "test.ping", {}, absl::Seconds(30));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->state(), v1::COMPLETE);
    EXPECT_EQ(job->completeness().returned(), static_cast<uint64_t>(cluster().expected_minions()));
  }

  // A ZeroMQ socket that is a CURVE client of dc's relay with a key of its
  // own (unknown to the relay), or a plain one when `curve` is false.
  zmq::socket_t Peer(zmq::socket_type type, const std::string& endpoint, bool curve,
                     const security::CurveKeyPair* keys = nullptr) {
    zmq::socket_t socket(context_, type);
    socket.set(zmq::sockopt::linger, 0);
    if (curve) {
      own_keys_ = keys != nullptr ? *keys : *security::GenerateCurveKeyPair();
      socket.set(zmq::sockopt::curve_serverkey, cluster().RelayPublicKey("dc1"));
      socket.set(zmq::sockopt::curve_publickey, own_keys_.public_z85);
      socket.set(zmq::sockopt::curve_secretkey, own_keys_.secret_z85);
    }
    socket.connect(endpoint);
    return socket;
  }

  static Cluster* cluster_;
  static std::string marker_dir_;
  zmq::context_t context_{1};
  security::CurveKeyPair own_keys_;
};

Cluster* SecurityAttackTest::cluster_ = nullptr;
std::string SecurityAttackTest::marker_dir_;

// An unsigned cmd.run XADDed by hand, and one signed by a key jobd does not
// hold, are never published: counted as unsigned / unknown_key.
TEST_F(SecurityAttackTest, ForgedJobStreamEntriesAreRefusedAndNothingRuns) {
  const uint64_t unsigned_before = RelayRefused("dc1", "unsigned");
  const uint64_t unknown_before = RelayRefused("dc1", "unknown_key");
  wire::v1::JobEnvelope plain =
      Envelope("20990101000000000001", 1, absl::StrCat("touch ", Marker("unsigned")));
  XaddJob("dc1", plain.SerializeAsString());
  security::SigningKey rogue = security::SigningKey::Generate();
  wire::v1::JobEnvelope rogue_signed =
      Envelope("20990101000000000002", 1, absl::StrCat("touch ", Marker("rogue")));
  ASSERT_TRUE(security::SignDispatch(rogue, rogue_signed).ok());
  XaddJob("dc1", rogue_signed.SerializeAsString());
  // A forger who copies jobd's key id still has no valid signature.
  wire::v1::JobEnvelope copied_id = rogue_signed;
  copied_id.set_jid("20990101000000000003");
  copied_id.set_key_id(security::SigningKey::Load(cluster().SigningKeyPath())->key_id());
  copied_id.set_args(0, absl::StrCat("touch ", Marker("copied")));
  const uint64_t bad_before = RelayRefused("dc1", "bad_signature");
  XaddJob("dc1", copied_id.SerializeAsString());

  EXPECT_TRUE(WaitRefused("dc1", "unsigned", unsigned_before));
  EXPECT_TRUE(WaitRefused("dc1", "unknown_key", unknown_before));
  EXPECT_TRUE(WaitRefused("dc1", "bad_signature", bad_before));
  ExpectHealthyJob();
  EXPECT_FALSE(Exists(Marker("unsigned")));
  EXPECT_FALSE(Exists(Marker("rogue")));
  EXPECT_FALSE(Exists(Marker("copied")));
}

// Forged envelopes XADDed ahead of time under the next jids jobd will give
// out do not make the relay drop the real jobs as duplicates: the real jobs
// run and show their own output.
TEST_F(SecurityAttackTest, PreRegisteredJidsDoNotBlockOrReplaceRealJobs) {
  const uint64_t refused_before = RelayRefused("dc1", "unsigned");
  absl::Time now = absl::Now();
  int forged = 0;
  for (int second = 0; second < 4; ++second) {
    std::string prefix = absl::FormatTime("%Y%m%d%H%M%S", now + absl::Seconds(second),
                                          absl::UTCTimeZone());
    for (int seq = 0; seq < 5; ++seq) {
      std::string jid = absl::StrCat(prefix, absl::StrFormat("%06d", seq));
      wire::v1::JobEnvelope envelope =
          Envelope(jid, 1, absl::StrCat("touch ", Marker("prereg")));
      envelope.set_function("echo");
      envelope.set_args(0, "forged output");
      envelope.add_args(absl::StrCat("; touch ", Marker("prereg")));
      XaddJob("dc1", envelope.SerializeAsString());
      ++forged;
    }
  }
  EXPECT_TRUE(WaitRefused("dc1", "unsigned", refused_before + forged - 1));
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<v1::Job> job =
        cluster().SubmitAndWait(kMinionA, "echo", {absl::StrCat("real ", i)}, absl::Seconds(20));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->state(), v1::COMPLETE);
    absl::StatusOr<std::vector<v1::Return>> returns = cluster().ListAllReturns(job->jid());
    ASSERT_TRUE(returns.ok());
    ASSERT_EQ(returns->size(), 1u);
    EXPECT_EQ((*returns)[0].stdout(), absl::StrCat("real ", i, "\n"));
  }
  EXPECT_FALSE(Exists(Marker("prereg")));
}

// A real envelope XADDed again is not run again; with attempt + 100 (or one
// byte changed anywhere) its signature no longer holds.
TEST_F(SecurityAttackTest, ReplaysAndChangedBytesNeverRun) {
  std::string counter = Marker("replay-count");
  absl::StatusOr<v1::Job> job = cluster().SubmitAndWait(
      kMinionA, "cmd.run", {absl::StrCat("echo ran >> ", counter)}, absl::Seconds(20));
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->state(), v1::COMPLETE);
  ASSERT_EQ(ReadFile(counter), "ran\n");
  // The signed envelope as jobd wrote it.
  auto entries = cluster().redis_connection().Command(
      {"XREVRANGE", "muster:jobs:dc1", "+", "-", "COUNT", "50"});
  ASSERT_TRUE(entries.ok());
  std::string original;
  for (size_t i = 0; i < entries->size() && original.empty(); ++i) {
    const redisReply* fields = ReplyElement(entries->element(i), 1);
    wire::v1::JobEnvelope envelope;
    if (envelope.ParseFromString(std::string(ReplyStr(ReplyElement(fields, 1)))) &&
        envelope.jid() == job->jid()) {
      original = std::string(ReplyStr(ReplyElement(fields, 1)));
    }
  }
  ASSERT_FALSE(original.empty());
  wire::v1::JobEnvelope envelope;
  ASSERT_TRUE(envelope.ParseFromString(original));
  ASSERT_FALSE(envelope.signature().empty());

  const uint64_t bad_before = RelayRefused("dc1", "bad_signature");
  XaddJob("dc1", original);  // a plain replay: same (jid, attempt)
  wire::v1::JobEnvelope plus100 = envelope;
  plus100.set_attempt(envelope.attempt() + 100);
  plus100.set_deadline_ms(absl::ToUnixMillis(absl::Now()) + 30000);
  XaddJob("dc1", plus100.SerializeAsString());
  wire::v1::JobEnvelope retargeted = envelope;
  retargeted.mutable_target()->set_expression("*");
  XaddJob("dc1", retargeted.SerializeAsString());
  // One byte changed inside the argument (the command) of the encoding.
  std::string flipped = original;
  size_t at = flipped.find("ran >>");
  ASSERT_NE(at, std::string::npos);
  flipped[at] = 'R';
  XaddJob("dc1", flipped);
  EXPECT_TRUE(WaitRefused("dc1", "bad_signature", bad_before + 2));
  ExpectHealthyJob();
  EXPECT_EQ(ReadFile(counter), "ran\n");
}

// A 20 MiB envelope is refused before it is parsed, without the relay's
// memory growing with it.
TEST_F(SecurityAttackTest, OversizedEnvelopeIsRefusedBeforeParsing) {
  const uint64_t before = RelayRefused("dc1", "too_large");
  wire::v1::JobEnvelope huge = Envelope("20990101000000000010", 1, "true");
  huge.set_args(0, std::string(20 << 20, 'x'));
  XaddJob("dc1", huge.SerializeAsString());
  EXPECT_TRUE(WaitRefused("dc1", "too_large", before));
  pid_t relay = cluster().ProcessPid("relay:dc1");
  int64_t resident_kb = ResidentKb(relay);
  EXPECT_LT(resident_kb, 200 * 1024) << "relay resident memory after a 20 MiB entry";
  ExpectHealthyJob();
}

// Without the relay's key, or without an accepted key of its own, nobody
// receives jobs on the publish port.
TEST_F(SecurityAttackTest, EavesdroppersReceiveNothing) {
  zmq::socket_t plain = Peer(zmq::socket_type::sub, cluster().relay("dc1").publish_endpoint(),
                             /*curve=*/false);
  plain.set(zmq::sockopt::subscribe, "");
  zmq::socket_t unaccepted = Peer(zmq::socket_type::sub,
                                  cluster().relay("dc1").publish_endpoint(), /*curve=*/true);
  unaccepted.set(zmq::sockopt::subscribe, "");
  absl::SleepFor(absl::Milliseconds(500));
  ExpectHealthyJob();
  absl::StatusOr<v1::SubmitJobResponse> secret =
      cluster().Submit("*", "echo", {"the secret argument"}, absl::Seconds(10));
  ASSERT_TRUE(secret.ok());
  zmq::message_t message;
  for (zmq::socket_t* socket : {&plain, &unaccepted}) {
    socket->set(zmq::sockopt::rcvtimeo, 2000);
    EXPECT_FALSE(socket->recv(message).has_value());
  }
}

// A return, receipt or heartbeat for a minion id sent over a connection
// with another key is dropped and counted; the minion's real return stands.
TEST_F(SecurityAttackTest, ForgedReturnsOverTheBusAreRejected) {
  absl::StatusOr<v1::SubmitJobResponse> submitted =
      cluster().Submit(kMinionB, "cmd.run", {"sleep 2; echo genuine"}, absl::Seconds(20));
  ASSERT_TRUE(submitted.ok());
  zmq::socket_t forger = Peer(zmq::socket_type::dealer, cluster().relay("dc1").return_endpoint(),
                              /*curve=*/true);
  wire::v1::ReturnBatch batch;
  wire::v1::Return* forged = batch.add_returns();
  forged->set_jid(submitted->jid());
  forged->set_attempt(1);
  forged->set_minion_id(kMinionB);
  forged->set_success(true);
  forged->set_stdout("forged\n");
  forger.send(zmq::str_buffer("RET"), zmq::send_flags::sndmore);
  forger.send(zmq::buffer(batch.SerializeAsString()));
  // The forger is told its return was rejected.
  forger.set(zmq::sockopt::rcvtimeo, 5000);
  zmq::message_t type, payload;
  ASSERT_TRUE(forger.recv(type).has_value());
  ASSERT_EQ(type.to_string(), "ACK");
  ASSERT_TRUE(forger.recv(payload).has_value());
  wire::v1::ReturnAck ack;
  ASSERT_TRUE(ack.ParseFromString(payload.to_string()));
  EXPECT_EQ(ack.keys_size(), 0);
  ASSERT_EQ(ack.rejected_size(), 1);
  EXPECT_EQ(ack.rejected(0).reason(), "unbound_id");

  absl::StatusOr<v1::Job> job = cluster().WaitForEnd(submitted->jid(), absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  absl::StatusOr<std::vector<v1::Return>> returns = cluster().ListAllReturns(submitted->jid());
  ASSERT_TRUE(returns.ok());
  ASSERT_EQ(returns->size(), 1u);
  EXPECT_EQ((*returns)[0].stdout(), "genuine\n");
  EXPECT_GT(MessagesRefused("dc1", "unbound_id") + MessagesRefused("dc1", "pending_key"), 0u);

  // A plain (non-CURVE) peer cannot even complete the handshake: nothing it
  // sends is answered.
  zmq::socket_t plain = Peer(zmq::socket_type::dealer, cluster().relay("dc1").return_endpoint(),
                             /*curve=*/false);
  plain.send(zmq::str_buffer("RET"), zmq::send_flags::sndmore);
  plain.send(zmq::buffer(batch.SerializeAsString()));
  plain.set(zmq::sockopt::rcvtimeo, 2000);
  EXPECT_FALSE(plain.recv(type).has_value());
}

// Over Redis: a return for a dispatch jobd never sent, for an attempt it
// never sent, or for a minion of another datacenter, is never stored.
TEST_F(SecurityAttackTest, ForgedReturnsOverRedisAreNeverStored) {
  absl::StatusOr<v1::Job> job =
      cluster().SubmitAndWait(kMinionA, "test.ping", {}, absl::Seconds(20));
  ASSERT_TRUE(job.ok());
  auto forge = [&](const std::string& jid, uint32_t attempt, const std::string& minion,
                   const std::string& dc) {
    wire::v1::ReturnBatch batch;
    batch.set_relay_id(absl::StrCat("relay-", dc));
    batch.set_datacenter(dc);
    batch.set_received_at_ms(absl::ToUnixMillis(absl::Now()));
    wire::v1::Return* ret = batch.add_returns();
    ret->set_jid(jid);
    ret->set_attempt(attempt);
    ret->set_minion_id(minion);
    ret->set_success(true);
    ret->set_stdout("forged");
    auto reply = cluster().redis_connection().Command(
        {"XADD", "muster:returns", "*", "batch", batch.SerializeAsString()});
    ASSERT_TRUE(reply.ok() && reply->IsString());
  };
  forge(job->jid(), 101, kMinionB, "dc1");       // an attempt never sent
  forge(job->jid(), 1, kMinionC, "dc1");         // dc2's minion through dc1
  forge(job->jid(), 1, kMinionB, "dc1");         // not targeted (job named minion-a)
  forge("20990101000000000099", 1, kMinionA, "dc1");  // never dispatched
  absl::SleepFor(absl::Seconds(2));
  absl::StatusOr<Cluster::StoredReturns> stored = cluster().CountStoredReturns(job->jid());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->rows, 1);
  absl::StatusOr<v1::Job> after = cluster().GetJob(job->jid());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->completeness().returned(), 1u);

  // A connection without credentials cannot write at all.
  auto anonymous = RedisConnection::Connect(cluster().redis().address(), absl::Seconds(5));
  ASSERT_TRUE(anonymous.ok());
  auto denied = (*anonymous)->Command({"XADD", "muster:returns", "*", "batch", "x"});
  ASSERT_TRUE(denied.ok());
  EXPECT_TRUE(denied->IsError()) << denied->str();
}

// 5,000 ghost minions heartbeating from a key nobody accepted never enter the
// inventory, and a real minion's grains cannot be overwritten.
TEST_F(SecurityAttackTest, GhostHeartbeatsNeverReachTheInventory) {
  absl::StatusOr<uint64_t> total_before = cluster().MinionTotal();
  ASSERT_TRUE(total_before.ok());
  zmq::socket_t ghost = Peer(zmq::socket_type::dealer, cluster().relay("dc1").return_endpoint(),
                             /*curve=*/true);
  ghost.set(zmq::sockopt::sndhwm, 0);
  for (int round = 0; round < 5; ++round) {
    wire::v1::HeartbeatBatch batch;
    for (int i = 0; i < 1000; ++i) {
      wire::v1::MinionHeartbeat* heartbeat = batch.add_heartbeats();
      heartbeat->set_minion_id(absl::StrCat("ghost-", round, "-", i, ".dc1.example.com"));
      heartbeat->set_interval_ms(4000000000u);
      heartbeat->set_sent_at_ms(absl::ToUnixMillis(absl::Now()));
      (*heartbeat->mutable_grains())["role"] = "web";
    }
    // And a real minion's id with forged grains.
    wire::v1::MinionHeartbeat* impostor = batch.add_heartbeats();
    impostor->set_minion_id(kMinionA);
    (*impostor->mutable_grains())["role"] = "owned";
    impostor->set_interval_ms(2000);
    ghost.send(zmq::str_buffer("HB"), zmq::send_flags::sndmore);
    ghost.send(zmq::buffer(batch.SerializeAsString()));
  }
  absl::SleepFor(absl::Seconds(3));
  absl::StatusOr<uint64_t> total_after = cluster().MinionTotal();
  ASSERT_TRUE(total_after.ok());
  EXPECT_EQ(*total_after, *total_before);
  v1::ListMinionsRequest request;
  request.mutable_target()->set_type(v1::LIST);
  request.mutable_target()->set_expression(kMinionA);
  v1::ListMinionsResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(cluster().stub().ListMinions(&context, request, &response).ok());
  ASSERT_EQ(response.minions_size(), 1);
  EXPECT_EQ(response.minions(0).grains().at("role"), "web");
  // The ghosts are pending keys (capped), shown to operators; the real id
  // shows the impostor's key as a conflict.
  v1::ListMinionKeysRequest keys_request;
  keys_request.set_datacenter("dc1");
  v1::ListMinionKeysResponse keys;
  grpc::ClientContext keys_context;
  ASSERT_TRUE(cluster().stub().ListMinionKeys(&keys_context, keys_request, &keys).ok());
  bool conflict_shown = false;
  for (const v1::MinionKey& key : keys.keys()) {
    if (key.minion_id() == kMinionA) {
      EXPECT_EQ(key.state(), v1::MinionKey::ACCEPTED);
      conflict_shown = key.conflicting_key() == own_keys_.public_z85;
    }
  }
  EXPECT_TRUE(conflict_shown);
  ExpectHealthyJob();
  // Clean up the ghosts' pending records for the other tests.
  v1::ChangeMinionKeyRequest reject;
  reject.set_action(v1::ChangeMinionKeyRequest::DELETE);
  reject.set_datacenter("dc1");
  for (const v1::MinionKey& key : keys.keys()) {
    if (key.state() == v1::MinionKey::PENDING) reject.add_minion_ids(key.minion_id());
  }
  v1::ChangeMinionKeyResponse changed;
  grpc::ClientContext change_context;
  EXPECT_TRUE(cluster().stub().ChangeMinionKey(&change_context, reject, &changed).ok());
}

// A second machine claiming a known minion's id with its own new key is
// refused and shown; the real minion keeps answering.
TEST_F(SecurityAttackTest, KnownIdWithANewKeyIsRefusedAndShown) {
  std::string state_dir = MakeTempDir("impostor-state");
  ChildProcess impostor;
  std::vector<std::string> argv = cluster().MinionCommand("dc1", kMinionB, state_dir);
  ASSERT_TRUE(impostor.Start(argv, absl::StrCat(state_dir, "/minion.log")).ok());
  bool conflict = WaitFor(
      [&] {
        v1::ListMinionKeysRequest request;
        request.set_datacenter("dc1");
        v1::ListMinionKeysResponse keys;
        grpc::ClientContext context;
        if (!cluster().stub().ListMinionKeys(&context, request, &keys).ok()) return false;
        for (const v1::MinionKey& key : keys.keys()) {
          if (key.minion_id() == kMinionB && !key.conflicting_key().empty()) return true;
        }
        return false;
      },
      absl::Seconds(15));
  EXPECT_TRUE(conflict);
  std::string marker = Marker("impostor-ran");
  absl::StatusOr<v1::Job> job = cluster().SubmitAndWait(
      kMinionB, "cmd.run", {absl::StrCat("echo $$ >> ", marker)}, absl::Seconds(20));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::COMPLETE);
  impostor.Stop();
  // Ran exactly once: by the real minion (the impostor never got it).
  std::vector<std::string> lines = absl::StrSplit(ReadFile(marker), '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 1u);
}

// jobd's key rotated with a job in flight: the job signed with the old key
// finishes, new jobs are signed with the new key, and once the old key is
// removed from the trusted file its envelopes are refused.
TEST_F(SecurityAttackTest, KeyRotationWithJobsInFlight) {
  const std::string old_path = cluster().SigningKeyPath();
  absl::StatusOr<security::SigningKey> old_key = security::SigningKey::Load(old_path);
  ASSERT_TRUE(old_key.ok());
  const std::string new_path = absl::StrCat(cluster().dir(), "/jobd_signing_2.key");
  absl::StatusOr<security::SigningKey> new_key = security::SigningKey::LoadOrCreate(new_path);
  ASSERT_TRUE(new_key.ok());
  // 1. Trust both.
  {
    std::ofstream trusted(cluster().TrustedKeysPath(), std::ios::app);
    trusted << "# rotation: new key\n" << security::PublicKeyHex(new_key->public_key()) << "\n";
  }
  absl::SleepFor(absl::Seconds(4));  // relays and minions re-read the file
  // A job under the old key, in flight across the switch.
  absl::StatusOr<v1::SubmitJobResponse> in_flight =
      cluster().Submit("minion-*", "cmd.run", {"sleep 4; echo old-key"}, absl::Seconds(30));
  ASSERT_TRUE(in_flight.ok());
  // 2. jobd restarts with the new key.
  cluster().KillJobd();
  cluster().SetJobdFlag("--signing_key", new_path);
  ASSERT_TRUE(cluster().StartJobd().ok());
  absl::StatusOr<v1::Job> fresh =
      cluster().SubmitAndWait("minion-*", "echo", {"new-key"}, absl::Seconds(20));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->state(), v1::COMPLETE);
  absl::StatusOr<v1::Job> old_job = cluster().WaitForEnd(in_flight->jid(), absl::Seconds(40));
  ASSERT_TRUE(old_job.ok());
  EXPECT_EQ(old_job->state(), v1::COMPLETE);
  EXPECT_EQ(old_job->completeness().succeeded(), 3u);
  // 3. The old key removed: its signatures are refused.
  {
    std::ofstream trusted(cluster().TrustedKeysPath(), std::ios::trunc);
    trusted << security::PublicKeyHex(new_key->public_key()) << "\n";
  }
  absl::SleepFor(absl::Seconds(4));
  const uint64_t before = RelayRefused("dc1", "unknown_key");
  wire::v1::JobEnvelope stale =
      Envelope("20990101000000000020", 1, absl::StrCat("touch ", Marker("old-key")));
  ASSERT_TRUE(security::SignDispatch(*old_key, stale).ok());
  XaddJob("dc1", stale.SerializeAsString());
  EXPECT_TRUE(WaitRefused("dc1", "unknown_key", before));
  ExpectHealthyJob();
  EXPECT_FALSE(Exists(Marker("old-key")));
}

}  // namespace
}  // namespace muster::testing
