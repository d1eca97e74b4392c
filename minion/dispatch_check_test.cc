#include "minion/dispatch_check.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"
#include "tests/support/process.h"

namespace muster::minion {
namespace {

using security::Refusal;

wire::v1::JobEnvelope Job(const std::string& jid, v1::TargetType type = v1::GLOB,
                          const std::string& expression = "web*") {
  wire::v1::JobEnvelope envelope;
  envelope.set_jid(jid);
  envelope.set_attempt(1);
  envelope.mutable_target()->set_type(type);
  envelope.mutable_target()->set_expression(expression);
  envelope.set_function("cmd.run");
  envelope.add_args("touch /tmp/marker");
  int64_t now = absl::ToUnixMillis(absl::Now());
  envelope.set_created_at_ms(now);
  envelope.set_deadline_ms(now + 60000);
  envelope.set_timeout_ms(60000);
  envelope.set_datacenter("dc1");
  envelope.set_submitter("alice");
  return envelope;
}

wire::v1::JobEnvelope Signed(const security::SigningKey& key, wire::v1::JobEnvelope envelope) {
  EXPECT_TRUE(security::SignDispatch(key, envelope).ok());
  return envelope;
}

std::unique_ptr<DispatchCheck> Trusting(const security::SigningKey& key) {
  return DispatchCheck::Secure(
      *security::TrustedKeys::Create("", {security::PublicKeyHex(key.public_key())}));
}

// Captures what DispatchCheck logs.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(stream_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("test", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  int Count(const std::string& needle) const {
    std::string text = stream_.str();
    int count = 0;
    for (size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + 1)) {
      ++count;
    }
    return count;
  }

 private:
  std::ostringstream stream_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(DispatchCheckTest, AcceptsOnlyWhatATrustedKeySigned) {
  security::SigningKey jobd = security::SigningKey::Generate();
  security::SigningKey rogue = security::SigningKey::Generate();
  auto check = Trusting(jobd);
  RefusalCounts counts;
  auto count = [&](const wire::v1::JobEnvelope& envelope) {
    Refusal refusal = check->Check(envelope);
    counts.Count(refusal);
    return refusal;
  };
  EXPECT_EQ(count(Signed(jobd, Job("1"))), Refusal::kNone);
  EXPECT_EQ(count(Job("2")), Refusal::kUnsigned);
  EXPECT_EQ(count(Signed(rogue, Job("3"))), Refusal::kUnknownKey);
  wire::v1::JobEnvelope changed = Signed(jobd, Job("4"));
  changed.set_args(0, "rm -rf /");
  EXPECT_EQ(count(changed), Refusal::kBadSignature);
  wire::v1::JobEnvelope replayed = Signed(jobd, Job("5"));
  replayed.set_attempt(101);
  EXPECT_EQ(count(replayed), Refusal::kBadSignature);

  EXPECT_EQ(counts.total(), 4u);
  EXPECT_EQ(counts.of(Refusal::kBadSignature), 2u);
  EXPECT_EQ(counts.ToString(), "unsigned 1, unknown_key 1, bad_signature 2");
  wire::v1::MinionHeartbeat heartbeat;
  counts.CopyTo(heartbeat);
  EXPECT_EQ(heartbeat.dispatches_refused().size(), 3u);
  EXPECT_EQ(heartbeat.dispatches_refused().at("bad_signature"), 2u);
  EXPECT_EQ(heartbeat.dispatches_refused().at("unsigned"), 1u);
  EXPECT_EQ(heartbeat.dispatches_refused().count("bad_list_proof"), 0u);
}

TEST(DispatchCheckTest, EachEnvelopeIsVerifiedOncePerProcess) {
  security::SigningKey jobd = security::SigningKey::Generate();
  auto check = Trusting(jobd);
  wire::v1::JobEnvelope envelope = Signed(jobd, Job("1"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(check->Check(envelope), Refusal::kNone);
  EXPECT_EQ(check->cache_hits(), 4u);
}

TEST(DispatchCheckTest, PerMinionListMessagesVerifyAgainstTheSignedRoot) {
  security::SigningKey jobd = security::SigningKey::Generate();
  auto check = Trusting(jobd);
  std::vector<std::string> ids = {"a.dc1", "b.dc1", "c.dc1", "d.dc1", "e.dc1"};
  wire::v1::JobEnvelope whole = Signed(jobd, Job("1", v1::LIST, "a.dc1,b.dc1,c.dc1,d.dc1,e.dc1"));
  security::MerkleTree tree(ids);
  // As a relay publishes it to each listed minion (PROTOCOL 8.2).
  auto per_minion = [&](uint32_t index) {
    wire::v1::JobEnvelope envelope = whole;
    envelope.mutable_target()->set_expression(ids[index]);
    *envelope.mutable_list_proof() = tree.Proof(index);
    return envelope;
  };
  for (uint32_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(check->Check(per_minion(i)), Refusal::kNone) << ids[i];
  }
  EXPECT_EQ(check->cache_hits(), ids.size() - 1);
  EXPECT_EQ(check->Check(whole), Refusal::kNone);  // a re-send: no proof

  wire::v1::JobEnvelope stranger = per_minion(1);
  stranger.mutable_target()->set_expression("mallory.dc1");
  EXPECT_EQ(check->Check(stranger), Refusal::kBadSignature);
  wire::v1::JobEnvelope bad_proof = per_minion(1);
  bad_proof.mutable_list_proof()->set_index(9);
  EXPECT_EQ(check->Check(bad_proof), Refusal::kBadListProof);
}

TEST(DispatchCheckTest, ARefusalIsLoggedOncePerJidAttemptAndReason) {
  security::SigningKey jobd = security::SigningKey::Generate();
  auto check = Trusting(jobd);
  LogCapture log;
  wire::v1::JobEnvelope forged = Job("20261206000000000001");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(check->Check(forged), Refusal::kUnsigned);
  EXPECT_EQ(log.Count("refused job 20261206000000000001 attempt 1"), 1);
  forged.set_attempt(2);
  EXPECT_EQ(check->Check(forged), Refusal::kUnsigned);
  EXPECT_EQ(log.Count("refused job 20261206000000000001 attempt 2 (cmd.run): unsigned"), 1);
  forged.set_key_id(jobd.key_id());
  forged.set_nonce(std::string(16, 'n'));
  forged.set_signature(std::string(64, 's'));
  EXPECT_EQ(check->Check(forged), Refusal::kBadSignature);
  EXPECT_EQ(log.Count("attempt 2 (cmd.run): bad_signature"), 1);
}

TEST(DispatchCheckTest, KeyRemovedFromTheFileIsNoLongerHonoured) {
  security::SigningKey old_key = security::SigningKey::Generate();
  security::SigningKey new_key = security::SigningKey::Generate();
  std::string path = testing::MakeTempDir("dispatch_check") + "/trusted_keys";
  auto write = [&](const std::vector<const security::SigningKey*>& keys) {
    std::ofstream out(path, std::ios::trunc);
    out << "# jobd keys\n";
    for (const auto* key : keys) out << security::PublicKeyHex(key->public_key()) << "\n";
  };
  write({&old_key});
  auto check = DispatchCheck::Secure(*security::TrustedKeys::Create(path, {}));
  wire::v1::JobEnvelope old_job = Signed(old_key, Job("1"));
  wire::v1::JobEnvelope new_job = Signed(new_key, Job("2"));
  EXPECT_EQ(check->Check(old_job), Refusal::kNone);
  EXPECT_EQ(check->Check(new_job), Refusal::kUnknownKey);

  // Rotation: both trusted, then only the new one.
  absl::Time now = absl::Now();
  write({&old_key, &new_key});
  check->Tick(now);
  EXPECT_EQ(check->Check(new_job), Refusal::kNone);
  EXPECT_EQ(check->Check(old_job), Refusal::kNone);
  write({&new_key});
  check->Tick(now + absl::Seconds(1));  // before the reload interval: not re-read
  EXPECT_EQ(check->Check(old_job), Refusal::kNone);
  check->Tick(now + DispatchCheck::kReloadInterval);
  EXPECT_EQ(check->Check(old_job), Refusal::kUnknownKey);  // not from the cache
  EXPECT_EQ(check->Check(new_job), Refusal::kNone);

  // A broken file keeps the keys in force.
  {
    std::ofstream out(path, std::ios::trunc);
    out << "not a key\n";
  }
  check->Tick(now + 2 * DispatchCheck::kReloadInterval);
  EXPECT_EQ(check->Check(new_job), Refusal::kNone);
}

TEST(DispatchCheckTest, InsecureAcceptsEverythingAndSaysSo) {
  auto check = DispatchCheck::Insecure();
  EXPECT_TRUE(check->insecure());
  EXPECT_EQ(check->Check(Job("1")), Refusal::kNone);
  LogCapture log;
  absl::Time now = absl::Now();
  check->Tick(now);
  check->Tick(now + absl::Seconds(30));
  EXPECT_EQ(log.Count("INSECURE"), 1);
  check->Tick(now + absl::Seconds(61));
  EXPECT_EQ(log.Count("INSECURE"), 2);
}

}  // namespace
}  // namespace muster::minion
