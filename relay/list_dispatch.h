// ListDispatch: a dispatch with a LIST target, split into one small envelope
// per listed minion (docs/PROTOCOL.md 3.1, 8.2).
//
// jobd signs a LIST target as the Merkle root of its ids and their count,
// not as the expression. The relay therefore sends each listed minion the
// envelope with its target replaced by {LIST, "<id>"} and `list_proof` set
// to that id's inclusion proof, every other field (signature included)
// unchanged: the minion checks jobd's signature on a message that names only
// itself, and a retry of 50,000 missing minions does not send the 50,000-id
// list to each of them. The tree is built once per dispatch; the job thread
// publishes from it and the return thread re-sends from it (immutable after
// Create, so it may be shared between threads).
#ifndef MUSTER_RELAY_LIST_DISPATCH_H_
#define MUSTER_RELAY_LIST_DISPATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/security/dispatch_signature.h"
#include "proto/wire.pb.h"

namespace muster::relay {

class ListDispatch {
 public:
  // Parses the LIST expression of `envelope` (ids in common/target ListIds
  // order: first occurrence, duplicates removed) and builds the Merkle tree
  // over them. InvalidArgument when the target is not LIST or its
  // expression does not parse. A `list_proof` already in `envelope` is not
  // used (the stream's entry has none; the relay makes its own).
  static absl::StatusOr<std::shared_ptr<const ListDispatch>> Create(
      const wire::v1::JobEnvelope& envelope);

  // The list's ids, in the order the proofs index them (some may not be
  // valid minion ids: they are signed, but nobody can receive them).
  const std::vector<std::string>& ids() const { return ids_; }
  // Position of `id` in ids(), if listed.
  std::optional<uint32_t> IndexOf(absl::string_view id) const;

  // The serialized per-minion envelope of ids()[index]: the original
  // envelope with target {LIST, ids()[index]} and its list_proof.
  // Requires: index < ids().size().
  std::string EnvelopeFor(uint32_t index) const;
  // The same, parsed (what a minion sees; the relay verifies this one).
  wire::v1::JobEnvelope ParsedEnvelopeFor(uint32_t index) const;

 private:
  ListDispatch(std::vector<std::string> ids, std::string base);

  std::vector<std::string> ids_;
  absl::flat_hash_map<absl::string_view, uint32_t> index_;  // views into ids_
  security::MerkleTree tree_;
  // The envelope without target and list_proof, serialized. Protobuf
  // concatenation is merging, so base_ + a message holding only the target
  // and the proof parses as the whole per-minion envelope.
  std::string base_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_LIST_DISPATCH_H_
