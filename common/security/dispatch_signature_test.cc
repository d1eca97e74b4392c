#include "common/security/dispatch_signature.h"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace muster::security {
namespace {

wire::v1::JobEnvelope Envelope(muster::v1::TargetType type, const std::string& expression) {
  wire::v1::JobEnvelope envelope;
  envelope.set_jid("20261206101500000001");
  envelope.set_attempt(1);
  envelope.mutable_target()->set_type(type);
  envelope.mutable_target()->set_expression(expression);
  envelope.set_function("cmd.run");
  envelope.add_args("touch /tmp/x");
  const int64_t now = absl::ToUnixMillis(absl::Now());
  envelope.set_created_at_ms(now);
  envelope.set_deadline_ms(now + 60000);
  envelope.set_timeout_ms(60000);
  envelope.set_datacenter("dc1");
  envelope.set_submitter("alice");
  return envelope;
}

std::unique_ptr<TrustedKeys> Trust(const std::vector<const SigningKey*>& keys) {
  std::vector<std::string> hex;
  for (const SigningKey* key : keys) hex.push_back(PublicKeyHex(key->public_key()));
  return *TrustedKeys::Create("", hex);
}

TEST(DispatchSignatureTest, SignedEnvelopeVerifiesAndEveryChangedFieldIsRefused) {
  SigningKey key = SigningKey::Generate();
  auto trusted = Trust({&key});
  wire::v1::JobEnvelope envelope = Envelope(muster::v1::GLOB, "web*");
  ASSERT_TRUE(SignDispatch(key, envelope).ok());
  EXPECT_EQ(envelope.nonce().size(), 16u);
  EXPECT_EQ(envelope.key_id(), key.key_id());
  EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(envelope), Refusal::kNone);

  std::vector<std::pair<std::string, std::function<void(wire::v1::JobEnvelope&)>>> changes = {
      {"jid", [](auto& e) { e.set_jid("20261206101500000002"); }},
      {"attempt+100", [](auto& e) { e.set_attempt(e.attempt() + 100); }},
      {"target type", [](auto& e) { e.mutable_target()->set_type(muster::v1::PCRE); }},
      {"target", [](auto& e) { e.mutable_target()->set_expression("*"); }},
      {"function", [](auto& e) { e.set_function("cmd.runx"); }},
      {"arg", [](auto& e) { e.set_args(0, "touch /tmp/y"); }},
      {"extra arg", [](auto& e) { e.add_args("z"); }},
      {"created", [](auto& e) { e.set_created_at_ms(e.created_at_ms() + 1); }},
      {"deadline", [](auto& e) { e.set_deadline_ms(e.deadline_ms() + 3600000); }},
      {"timeout", [](auto& e) { e.set_timeout_ms(1); }},
      {"submitter", [](auto& e) { e.set_submitter("root"); }},
      {"nonce", [](auto& e) { (*e.mutable_nonce())[3] ^= 1; }},
      {"signature", [](auto& e) { (*e.mutable_signature())[10] ^= 1; }},
  };
  for (const auto& [name, change] : changes) {
    wire::v1::JobEnvelope changed = envelope;
    change(changed);
    EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(changed), Refusal::kBadSignature)
        << name;
  }
  // Arguments are items, not joined text: ["a b"] is not ["a", "b"].
  wire::v1::JobEnvelope split = Envelope(muster::v1::GLOB, "web*");
  split.clear_args();
  split.add_args("a b");
  ASSERT_TRUE(SignDispatch(key, split).ok());
  wire::v1::JobEnvelope joined = split;
  joined.clear_args();
  joined.add_args("a");
  joined.add_args("b");
  EXPECT_EQ(DispatchVerifier(trusted.get(), "").Verify(joined), Refusal::kBadSignature);
}

TEST(DispatchSignatureTest, OneFlippedByteAnywhereInTheEncodedEnvelopeIsNeverAccepted) {
  SigningKey key = SigningKey::Generate();
  auto trusted = Trust({&key});
  wire::v1::JobEnvelope envelope = Envelope(muster::v1::COMPOUND, "G@role:web and web-*");
  ASSERT_TRUE(SignDispatch(key, envelope).ok());
  const std::string bytes = envelope.SerializeAsString();
  int accepted = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string changed = bytes;
    changed[i] ^= 0x01;
    wire::v1::JobEnvelope parsed;
    if (!parsed.ParseFromString(changed)) continue;
    if (DispatchVerifier(trusted.get(), "dc1").Verify(parsed) == Refusal::kNone) ++accepted;
  }
  EXPECT_EQ(accepted, 0);
}

TEST(DispatchSignatureTest, RefusalReasons) {
  SigningKey key = SigningKey::Generate();
  SigningKey other = SigningKey::Generate();
  auto trusted = Trust({&key});
  wire::v1::JobEnvelope unsigned_envelope = Envelope(muster::v1::GLOB, "*");
  EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(unsigned_envelope),
            Refusal::kUnsigned);
  wire::v1::JobEnvelope foreign = Envelope(muster::v1::GLOB, "*");
  ASSERT_TRUE(SignDispatch(other, foreign).ok());
  EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(foreign), Refusal::kUnknownKey);
  // A forger who copies a trusted key id still cannot sign.
  wire::v1::JobEnvelope forged = foreign;
  forged.set_key_id(key.key_id());
  EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(forged), Refusal::kBadSignature);
  wire::v1::JobEnvelope elsewhere = Envelope(muster::v1::GLOB, "*");
  elsewhere.set_datacenter("dc2");
  ASSERT_TRUE(SignDispatch(key, elsewhere).ok());
  EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(elsewhere),
            Refusal::kWrongDatacenter);
  EXPECT_EQ(DispatchVerifier(trusted.get(), "").Verify(elsewhere), Refusal::kNone);
  EXPECT_EQ(RefusalReason(Refusal::kBadListProof), "bad_list_proof");
}

TEST(DispatchSignatureTest, EveryPerMinionMessageOfAListVerifiesWithItsProofOnly) {
  SigningKey key = SigningKey::Generate();
  auto trusted = Trust({&key});
  for (int n : {1, 2, 3, 5, 8, 13, 100}) {
    std::vector<std::string> ids;
    std::string expression;
    for (int i = 0; i < n; ++i) {
      ids.push_back(absl::StrCat("m-", i));
      absl::StrAppend(&expression, i == 0 ? "" : ",", "m-", i);
    }
    wire::v1::JobEnvelope whole = Envelope(muster::v1::LIST, expression);
    ASSERT_TRUE(SignDispatch(key, whole).ok());
    DispatchVerifier verifier(trusted.get(), "dc1");
    ASSERT_EQ(verifier.Verify(whole), Refusal::kNone) << n;
    MerkleTree tree(ids);
    EXPECT_EQ(tree.root(), MerkleRoot(ids));
    for (int i = 0; i < n; ++i) {
      wire::v1::JobEnvelope one = whole;
      one.mutable_target()->set_expression(ids[i]);
      *one.mutable_list_proof() = tree.Proof(i);
      EXPECT_EQ(verifier.Verify(one), Refusal::kNone) << n << " " << i;
      // The proof of one id does not admit another.
      if (n > 1) {
        wire::v1::JobEnvelope stolen = one;
        stolen.mutable_target()->set_expression(ids[(i + 1) % n]);
        EXPECT_EQ(verifier.Verify(stolen), Refusal::kBadSignature) << n << " " << i;
        // An id outside the list, with any proof, is refused.
        wire::v1::JobEnvelope outsider = one;
        outsider.mutable_target()->set_expression("intruder");
        EXPECT_EQ(verifier.Verify(outsider), Refusal::kBadSignature);
      }
    }
  }
}

TEST(DispatchSignatureTest, MalformedProofsAreRefusedNotCrashes) {
  SigningKey key = SigningKey::Generate();
  auto trusted = Trust({&key});
  wire::v1::JobEnvelope whole = Envelope(muster::v1::LIST, "a,b,c");
  ASSERT_TRUE(SignDispatch(key, whole).ok());
  MerkleTree tree({"a", "b", "c"});
  wire::v1::JobEnvelope one = whole;
  one.mutable_target()->set_expression("a");
  *one.mutable_list_proof() = tree.Proof(0);
  DispatchVerifier verifier(trusted.get(), "dc1");
  ASSERT_EQ(verifier.Verify(one), Refusal::kNone);
  std::vector<std::function<void(wire::v1::ListProof&)>> breaks = {
      [](auto& p) { p.set_index(3); },
      [](auto& p) { p.set_count(0); },
      [](auto& p) { p.add_siblings(std::string(32, 'x')); },
      [](auto& p) { p.mutable_siblings()->RemoveLast(); },
      [](auto& p) { p.set_siblings(0, "short"); },
  };
  for (const auto& broken : breaks) {
    wire::v1::JobEnvelope bad = one;
    broken(*bad.mutable_list_proof());
    EXPECT_EQ(verifier.Verify(bad), Refusal::kBadListProof);
  }
  wire::v1::JobEnvelope two_ids = one;
  two_ids.mutable_target()->set_expression("a,b");
  EXPECT_EQ(verifier.Verify(two_ids), Refusal::kBadListProof);
  wire::v1::JobEnvelope count_changed = one;
  count_changed.mutable_list_proof()->set_count(4);
  EXPECT_NE(verifier.Verify(count_changed), Refusal::kNone);
}

TEST(DispatchSignatureTest, TheCacheServesOnlyIdenticalEnvelopes) {
  SigningKey key = SigningKey::Generate();
  auto trusted = Trust({&key});
  wire::v1::JobEnvelope envelope = Envelope(muster::v1::GLOB, "*");
  ASSERT_TRUE(SignDispatch(key, envelope).ok());
  DispatchVerifier verifier(trusted.get(), "dc1");
  EXPECT_EQ(verifier.Verify(envelope), Refusal::kNone);
  EXPECT_EQ(verifier.Verify(envelope), Refusal::kNone);
  EXPECT_EQ(verifier.cache_hits(), 1u);
  wire::v1::JobEnvelope changed = envelope;
  changed.set_args(0, "rm -rf /");
  EXPECT_EQ(verifier.Verify(changed), Refusal::kBadSignature);
  EXPECT_EQ(verifier.cache_hits(), 1u);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// The published test vectors (PROTOCOL 8.1) match the code: a change of the
// encoding must be deliberate and regenerate them.
TEST(DispatchSignatureTest, MatchesThePublishedTestVectors) {
  nlohmann::json file =
      nlohmann::json::parse(ReadFile("common/security/testdata/dispatch_vectors.json"));
  std::string seed = absl::HexStringToBytes(file["seed_hex"].get<std::string>());
  absl::StatusOr<SigningKey> key =
      SigningKey::FromSeed(reinterpret_cast<const uint8_t*>(seed.data()));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(PublicKeyHex(key->public_key()), file["public_key_hex"]);
  EXPECT_EQ(key->key_id(), file["key_id"]);
  auto trusted = Trust({&*key});
  ASSERT_GE(file["vectors"].size(), 6u);
  for (const auto& vector : file["vectors"]) {
    wire::v1::JobEnvelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(
        absl::HexStringToBytes(vector["envelope_protobuf_hex"].get<std::string>())));
    EXPECT_EQ(envelope.jid(), vector["envelope"]["jid"]);
    absl::StatusOr<std::string> bytes = SigningBytes(envelope);
    ASSERT_TRUE(bytes.ok()) << vector["name"];
    EXPECT_EQ(absl::BytesToHexString(*bytes), vector["signing_bytes_hex"]) << vector["name"];
    EXPECT_EQ(absl::BytesToHexString(envelope.signature()), vector["signature_hex"]);
    EXPECT_EQ(DispatchVerifier(trusted.get(), "dc1").Verify(envelope), Refusal::kNone)
        << vector["name"];
  }
}

}  // namespace
}  // namespace muster::security
