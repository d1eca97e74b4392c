#include "common/security/dispatch_signature.h"

#include <sodium.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/target/target.h"

namespace muster::security {
namespace {

constexpr absl::string_view kContext = "muster.dispatch.v1";
constexpr size_t kNonceBytes = 16;
constexpr size_t kKeyIdChars = 16;
// Verified envelopes a DispatchVerifier remembers at most (then it forgets
// them all: a re-verification only costs time).
constexpr size_t kMaxCached = 200000;
constexpr int64_t kPruneEveryMs = 10000;

Digest Sha256(absl::string_view a, absl::string_view b = {}, absl::string_view c = {}) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  for (absl::string_view part : {a, b, c}) {
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  }
  Digest digest;
  crypto_hash_sha256_final(&state, digest.data());
  return digest;
}

absl::string_view View(const Digest& digest) {
  return absl::string_view(reinterpret_cast<const char*>(digest.data()), digest.size());
}

Digest Leaf(absl::string_view id) { return Sha256(absl::string_view("\x00", 1), id); }

Digest Node(const Digest& left, const Digest& right) {
  return Sha256(absl::string_view("\x01", 1), View(left), View(right));
}

void AppendU32(std::string& out, uint32_t value) {
  char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                   static_cast<char>(value >> 8), static_cast<char>(value)};
  out.append(bytes, 4);
}

void AppendItem(std::string& out, absl::string_view bytes) {
  AppendU32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes.data(), bytes.size());
}

void AppendU32Item(std::string& out, uint32_t value) {
  AppendU32(out, 4);
  AppendU32(out, value);
}

void AppendI64Item(std::string& out, int64_t value) {
  AppendU32(out, 8);
  uint64_t bits = static_cast<uint64_t>(value);
  AppendU32(out, static_cast<uint32_t>(bits >> 32));
  AppendU32(out, static_cast<uint32_t>(bits));
}

absl::StatusOr<std::vector<std::string>> ListIdsOf(absl::string_view expression) {
  absl::StatusOr<Target> parsed = Target::Parse(TargetKind::kList,
                                                                expression);
  if (!parsed.ok()) return parsed.status();
  return *parsed->ListIds();
}

}  // namespace

Digest MerkleRoot(const std::vector<std::string>& ids) { return MerkleTree(ids).root(); }

MerkleTree::MerkleTree(const std::vector<std::string>& ids) {
  InitSodium().IgnoreError();
  std::vector<Digest> level;
  level.reserve(ids.size());
  for (const std::string& id : ids) level.push_back(Leaf(id));
  if (level.empty()) level.push_back(Sha256(""));  // never used: ids must not be empty
  levels_.push_back(std::move(level));
  while (levels_.back().size() > 1) {
    const std::vector<Digest>& below = levels_.back();
    std::vector<Digest> above;
    above.reserve((below.size() + 1) / 2);
    for (size_t i = 0; i + 1 < below.size(); i += 2) above.push_back(Node(below[i], below[i + 1]));
    if (below.size() % 2 == 1) above.push_back(below.back());
    levels_.push_back(std::move(above));
  }
}

wire::v1::ListProof MerkleTree::Proof(uint32_t index) const {
  wire::v1::ListProof proof;
  proof.set_index(index);
  proof.set_count(count());
  size_t position = index;
  for (size_t level = 0; level + 1 < levels_.size(); ++level) {
    const std::vector<Digest>& nodes = levels_[level];
    if (position % 2 == 1) {
      proof.add_siblings(std::string(View(nodes[position - 1])));
    } else if (position + 1 < nodes.size()) {
      proof.add_siblings(std::string(View(nodes[position + 1])));
    }
    position /= 2;
  }
  return proof;
}

absl::StatusOr<Digest> RootFromProof(absl::string_view id, const wire::v1::ListProof& proof) {
  if (proof.count() == 0 || proof.index() >= proof.count()) {
    return absl::InvalidArgumentError(
        absl::StrCat("list proof: index ", proof.index(), " of ", proof.count(), " ids"));
  }
  InitSodium().IgnoreError();
  Digest hash = Leaf(id);
  uint64_t index = proof.index();
  uint64_t count = proof.count();
  int used = 0;
  while (count > 1) {
    const bool has_sibling = index % 2 == 1 || index + 1 < count;
    if (has_sibling) {
      if (used >= proof.siblings_size() || proof.siblings(used).size() != 32) {
        return absl::InvalidArgumentError("list proof: a sibling is missing or not 32 bytes");
      }
      Digest sibling;
      std::memcpy(sibling.data(), proof.siblings(used).data(), 32);
      hash = index % 2 == 1 ? Node(sibling, hash) : Node(hash, sibling);
      ++used;
    }
    index /= 2;
    count = (count + 1) / 2;
  }
  if (used != proof.siblings_size()) {
    return absl::InvalidArgumentError("list proof: more siblings than the tree has levels");
  }
  return hash;
}

absl::StatusOr<std::string> SigningBytes(const wire::v1::JobEnvelope& envelope) {
  std::string out;
  out.reserve(256 + envelope.function().size() + envelope.target().expression().size());
  AppendItem(out, kContext);
  AppendItem(out, envelope.jid());
  AppendU32Item(out, envelope.attempt());
  AppendU32Item(out, static_cast<uint32_t>(envelope.target().type()));
  if (envelope.target().type() == muster::v1::LIST) {
    Digest root;
    uint32_t count;
    absl::StatusOr<std::vector<std::string>> ids = ListIdsOf(envelope.target().expression());
    if (!ids.ok()) return ids.status();
    if (envelope.has_list_proof()) {
      if (ids->size() != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a LIST envelope with a list proof must name one id, not ", ids->size()));
      }
      absl::StatusOr<Digest> from_proof = RootFromProof(ids->front(), envelope.list_proof());
      if (!from_proof.ok()) return from_proof.status();
      root = *from_proof;
      count = envelope.list_proof().count();
    } else {
      MerkleTree tree(*ids);
      root = tree.root();
      count = tree.count();
    }
    AppendItem(out, View(root));
    AppendU32Item(out, count);
  } else {
    AppendItem(out, envelope.target().expression());
    AppendU32Item(out, 0);
  }
  AppendItem(out, envelope.function());
  AppendU32Item(out, static_cast<uint32_t>(envelope.args_size()));
  for (const std::string& arg : envelope.args()) AppendItem(out, arg);
  AppendI64Item(out, envelope.created_at_ms());
  AppendI64Item(out, envelope.deadline_ms());
  AppendU32Item(out, envelope.timeout_ms());
  AppendItem(out, envelope.datacenter());
  AppendItem(out, envelope.submitter());
  AppendItem(out, envelope.nonce());
  AppendItem(out, envelope.key_id());
  return out;
}

absl::Status SignDispatch(const SigningKey& key, wire::v1::JobEnvelope& envelope) {
  if (envelope.has_list_proof()) {
    return absl::InvalidArgumentError("a dispatch to sign must not carry a list proof");
  }
  if (absl::Status init = InitSodium(); !init.ok()) return init;
  std::string nonce(kNonceBytes, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  envelope.set_nonce(std::move(nonce));
  envelope.set_key_id(key.key_id());
  absl::StatusOr<std::string> bytes = SigningBytes(envelope);
  if (!bytes.ok()) return bytes.status();
  envelope.set_signature(key.Sign(*bytes));
  return absl::OkStatus();
}

absl::string_view RefusalReason(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNone:
      return "none";
    case Refusal::kUnsigned:
      return "unsigned";
    case Refusal::kUnknownKey:
      return "unknown_key";
    case Refusal::kBadSignature:
      return "bad_signature";
    case Refusal::kBadListProof:
      return "bad_list_proof";
    case Refusal::kWrongDatacenter:
      return "wrong_datacenter";
    case Refusal::kTooLarge:
      return "too_large";
  }
  return "unknown";
}

DispatchVerifier::DispatchVerifier(const TrustedKeys* keys, std::string datacenter)
    : keys_(keys), datacenter_(std::move(datacenter)) {
  InitSodium().IgnoreError();
}

Refusal DispatchVerifier::Verify(const wire::v1::JobEnvelope& envelope) {
  if (envelope.signature().size() != crypto_sign_BYTES ||
      envelope.nonce().size() != kNonceBytes || envelope.key_id().size() != kKeyIdChars) {
    return Refusal::kUnsigned;
  }
  if (!datacenter_.empty() && envelope.datacenter() != datacenter_) {
    return Refusal::kWrongDatacenter;
  }
  PublicKey key;
  if (!keys_->Find(envelope.key_id(), &key)) return Refusal::kUnknownKey;
  absl::StatusOr<std::string> bytes = SigningBytes(envelope);
  if (!bytes.ok()) return Refusal::kBadListProof;
  // The key id is inside the signing bytes, and names exactly one key.
  Digest digest = Sha256(envelope.signature(), *bytes);
  std::string cache_key(View(digest));
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  if (now_ms >= next_prune_ms_) {
    next_prune_ms_ = now_ms + kPruneEveryMs;
    absl::erase_if(verified_, [now_ms](const auto& entry) { return entry.second < now_ms; });
  }
  if (verified_.contains(cache_key)) {
    ++cache_hits_;
    return Refusal::kNone;
  }
  if (!VerifySignature(key, *bytes, envelope.signature())) return Refusal::kBadSignature;
  if (verified_.size() >= kMaxCached) verified_.clear();
  verified_.emplace(std::move(cache_key), envelope.deadline_ms());
  return Refusal::kNone;
}

}  // namespace muster::security
