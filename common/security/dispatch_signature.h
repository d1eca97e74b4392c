// Signed dispatches (docs/PROTOCOL.md 8.1-8.3): jobd signs every
// JobEnvelope with Ed25519; relays verify it before they publish it and
// minions before they run it.
//
// What is signed is not the protobuf encoding (which is not canonical) but
// the envelope's *signing bytes*, a fixed, language-independent layout of
// every field (PROTOCOL 8.1). A LIST target is committed as the Merkle root
// of its ids and their count (PROTOCOL 8.2), so that a relay can send each
// listed minion a small envelope holding its own id and an inclusion proof,
// and the minion still checks jobd's signature.
#ifndef MUSTER_COMMON_SECURITY_DISPATCH_SIGNATURE_H_
#define MUSTER_COMMON_SECURITY_DISPATCH_SIGNATURE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/security/signing_keys.h"
#include "proto/wire.pb.h"

namespace muster::security {

// 32-byte SHA-256 digest.
using Digest = std::array<uint8_t, 32>;

// Merkle tree over a LIST target's ids (PROTOCOL 8.2): leaf =
// SHA-256(0x00 || id), node = SHA-256(0x01 || left || right); at each level
// an odd last node is carried up unchanged. Requires: ids not empty.
Digest MerkleRoot(const std::vector<std::string>& ids);

// All levels of the tree, to make many proofs from one computation (a relay
// splitting a 100,000-id retry). Requires: ids not empty.
class MerkleTree {
 public:
  explicit MerkleTree(const std::vector<std::string>& ids);
  const Digest& root() const { return levels_.back().front(); }
  uint32_t count() const { return static_cast<uint32_t>(levels_.front().size()); }
  // The proof of ids[index]. Requires: index < count().
  wire::v1::ListProof Proof(uint32_t index) const;

 private:
  std::vector<std::vector<Digest>> levels_;
};

// The root a proof leads to from `id`, or InvalidArgument when the proof is
// malformed (index >= count, count 0, a sibling not 32 bytes, too many or
// too few siblings).
absl::StatusOr<Digest> RootFromProof(absl::string_view id, const wire::v1::ListProof& proof);

// The signing bytes of `envelope` (PROTOCOL 8.1). For a LIST target: with a
// list_proof, the root the proof gives for the envelope's single id;
// without one, the root of the expression's ids (common/target ListIds
// order: first occurrence, duplicates removed). InvalidArgument when the
// target does not parse or the proof is malformed.
absl::StatusOr<std::string> SigningBytes(const wire::v1::JobEnvelope& envelope);

// Sets nonce (16 random bytes), key_id and signature of `envelope`.
// Requires: envelope.list_proof is not set.
absl::Status SignDispatch(const SigningKey& key, wire::v1::JobEnvelope& envelope);

// Why a dispatch is refused (the reason words of PROTOCOL 8.3, also the
// metric labels). kNone: accepted.
enum class Refusal {
  kNone,
  kUnsigned,         // no signature, nonce or key_id
  kUnknownKey,       // key_id is not in the trusted key ring
  kBadSignature,     // the signature does not verify
  kBadListProof,     // malformed list proof, or a LIST target without a parsable expression
  kWrongDatacenter,  // envelope.datacenter is not the verifier's datacenter
  kTooLarge,         // over the size limit (checked before parsing, by the caller)
};
absl::string_view RefusalReason(Refusal refusal);

// Checks signatures against a TrustedKeys ring, with a cache so that one
// envelope is verified once per process however often it arrives (fleetsim
// gets one per virtual minion; a relay re-sends). Not thread-safe: one per
// thread.
class DispatchVerifier {
 public:
  // `datacenter` empty: the datacenter is not checked (a minion that does
  // not know its datacenter).
  DispatchVerifier(const TrustedKeys* keys, std::string datacenter);

  // kNone when `envelope` is signed by a trusted key over its signing bytes
  // (and, if set, the datacenter matches). The cache key is the signature
  // plus the signing bytes' digest, so a changed byte is never served from
  // the cache; entries older than their envelope's deadline are pruned.
  Refusal Verify(const wire::v1::JobEnvelope& envelope);

  uint64_t cache_hits() const { return cache_hits_; }

 private:
  const TrustedKeys* keys_;
  std::string datacenter_;
  // digest of (signature || signing bytes) -> deadline_ms
  absl::flat_hash_map<std::string, int64_t> verified_;
  int64_t next_prune_ms_ = 0;
  uint64_t cache_hits_ = 0;
};

}  // namespace muster::security

#endif  // MUSTER_COMMON_SECURITY_DISPATCH_SIGNATURE_H_
