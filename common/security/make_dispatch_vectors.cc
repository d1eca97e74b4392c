// Prints the test vectors of docs/PROTOCOL.md 8.1-8.2 as JSON (the content
// of testdata/dispatch_vectors.json): a fixed key, envelopes of every
// target kind (a LIST also as one per-minion message with its proof), and
// for each the signing bytes and the signature. Ed25519 signatures are
// deterministic, so the output only changes when the encoding does.
//   bazel run //common/security:make_dispatch_vectors > \
//     common/security/testdata/dispatch_vectors.json
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/security/dispatch_signature.h"
#include "nlohmann/json.hpp"

namespace muster::security {
namespace {

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

nlohmann::json Describe(const wire::v1::JobEnvelope& envelope) {
  nlohmann::json out = {
      {"jid", envelope.jid()},
      {"attempt", envelope.attempt()},
      {"target_type", static_cast<int>(envelope.target().type())},
      {"target_expression", envelope.target().expression()},
      {"function", envelope.function()},
      {"args", std::vector<std::string>(envelope.args().begin(), envelope.args().end())},
      {"created_at_ms", envelope.created_at_ms()},
      {"deadline_ms", envelope.deadline_ms()},
      {"timeout_ms", envelope.timeout_ms()},
      {"datacenter", envelope.datacenter()},
      {"submitter", envelope.submitter()},
      {"nonce_hex", Hex(envelope.nonce())},
      {"key_id", envelope.key_id()},
  };
  if (envelope.has_list_proof()) {
    std::vector<std::string> siblings;
    for (const std::string& sibling : envelope.list_proof().siblings()) {
      siblings.push_back(Hex(sibling));
    }
    out["list_proof"] = {{"index", envelope.list_proof().index()},
                         {"count", envelope.list_proof().count()},
                         {"siblings_hex", siblings}};
  }
  return out;
}

int Main() {
  uint8_t seed[32];
  for (int i = 0; i < 32; ++i) seed[i] = static_cast<uint8_t>(i);
  SigningKey key = *SigningKey::FromSeed(seed);

  auto base = [&](absl::string_view jid, muster::v1::TargetType type,
                  absl::string_view expression) {
    wire::v1::JobEnvelope envelope;
    envelope.set_jid(std::string(jid));
    envelope.set_attempt(1);
    envelope.mutable_target()->set_type(type);
    envelope.mutable_target()->set_expression(std::string(expression));
    envelope.set_function("cmd.run");
    envelope.add_args("echo");
    envelope.add_args("h\xc3\xa9llo world");
    envelope.set_created_at_ms(1796558100000);
    envelope.set_deadline_ms(1796558130000);
    envelope.set_timeout_ms(30000);
    envelope.set_datacenter("dc1");
    envelope.set_submitter("alice");
    std::string nonce;
    for (int i = 0; i < 16; ++i) nonce.push_back(static_cast<char>(0xa0 + i));
    envelope.set_nonce(nonce);
    envelope.set_key_id(key.key_id());
    return envelope;
  };

  std::vector<std::pair<std::string, wire::v1::JobEnvelope>> cases;
  cases.emplace_back("glob", base("20261206101500000001", muster::v1::GLOB, "web*"));
  wire::v1::JobEnvelope unspecified =
      base("20261206101500000002", muster::v1::TARGET_TYPE_UNSPECIFIED, "*");
  unspecified.clear_args();
  unspecified.set_function("test.ping");
  unspecified.set_submitter("");
  cases.emplace_back("unspecified_type_no_args", unspecified);
  cases.emplace_back("compound", base("20261206101500000003", muster::v1::COMPOUND,
                                      "G@role:web and not L@web-2"));
  wire::v1::JobEnvelope list = base("20261206101500000004", muster::v1::LIST,
                                    "web-1, web-2,web-3 web-2,,web-4 web-5");
  list.set_attempt(2);
  cases.emplace_back("list_whole", list);
  // The per-minion message of web-5 (index 4 of 5 ids: an odd last node).
  {
    MerkleTree tree({"web-1", "web-2", "web-3", "web-4", "web-5"});
    wire::v1::JobEnvelope one = list;
    one.mutable_target()->set_expression("web-5");
    *one.mutable_list_proof() = tree.Proof(4);
    cases.emplace_back("list_per_minion_web-5", one);
    wire::v1::JobEnvelope two = list;
    two.mutable_target()->set_expression("web-2");
    *two.mutable_list_proof() = tree.Proof(1);
    cases.emplace_back("list_per_minion_web-2", two);
  }

  nlohmann::json vectors = nlohmann::json::array();
  for (auto& [name, envelope] : cases) {
    absl::StatusOr<std::string> bytes = SigningBytes(envelope);
    if (!bytes.ok()) {
      std::cerr << name << ": " << bytes.status() << "\n";
      return 1;
    }
    // The per-minion messages carry the whole list's signature.
    if (!envelope.has_list_proof()) envelope.set_signature(key.Sign(*bytes));
    vectors.push_back({{"name", name},
                       {"envelope", Describe(envelope)},
                       {"signing_bytes_hex", Hex(*bytes)},
                       {"signature_hex", ""},
                       {"envelope_protobuf_hex", ""}});
  }
  // Per-minion messages reuse the signature of list_whole.
  std::string list_signature;
  for (auto& [name, envelope] : cases) {
    if (name == "list_whole") list_signature = envelope.signature();
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    wire::v1::JobEnvelope& envelope = cases[i].second;
    if (envelope.has_list_proof()) envelope.set_signature(list_signature);
    vectors[i]["signature_hex"] = Hex(envelope.signature());
    vectors[i]["envelope_protobuf_hex"] = Hex(envelope.SerializeAsString());
  }
  nlohmann::json out = {
      {"about",
       "Test vectors of docs/PROTOCOL.md 8.1-8.2. Key: Ed25519 seed 00 01 .. 1f. For each "
       "envelope: its signing bytes and signature (the list_per_minion cases carry the "
       "signature of list_whole: same signing bytes). Written by "
       "//common/security:make_dispatch_vectors; checked by //common/security:security_test "
       "and tests/python_minion."},
      {"seed_hex", Hex(absl::string_view(reinterpret_cast<const char*>(seed), 32))},
      {"public_key_hex", PublicKeyHex(key.public_key())},
      {"key_id", key.key_id()},
      {"vectors", vectors},
  };
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace muster::security

int main() { return muster::security::Main(); }
