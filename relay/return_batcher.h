// How returns from the bus become entries of the returns stream.
//
// A minion's RET payload is a serialized ReturnBatch. Protobuf's encoding is
// concatenable: the bytes of two ReturnBatch messages, one after the other,
// parse as one batch holding both lists of returns, and a singular field
// appended at the end overrides an earlier one. So the relay never
// re-encodes returns on the hot path: it validates each payload once (where
// it enters), then an entry for Redis is the payloads' bytes back to back
// followed by a short suffix carrying relay_id, datacenter and
// received_at_ms. Only a payload with more returns than one entry may hold is
// re-encoded, in chunks.
#ifndef MUSTER_RELAY_RETURN_BATCHER_H_
#define MUSTER_RELAY_RETURN_BATCHER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "proto/wire.pb.h"
#include "relay/relay_counters.h"

namespace muster::relay {

// A serialized ReturnBatch (relay fields unset) of at most one entry's worth
// of returns: the unit the relay writes, spools and drains.
struct ReturnChunk {
  std::string batch;
  int returns = 0;
  int64_t received_at_ms = 0;
};

// Limits of one returns-stream entry (docs/PROTOCOL.md 2.2).
struct EntryLimits {
  int max_returns = 1000;
  size_t max_bytes = 1 << 20;
};

// One return of a RET payload that can never be accepted.
struct RejectedReturn {
  ReturnRejectReason reason;
  std::string detail;  // what was wrong, naming the value
};

// A RET payload after validation.
struct DecodedReturns {
  // The accepted returns, to be made safe before the ACK is sent.
  std::vector<ReturnChunk> chunks;
  // The serialized ReturnAck to answer with: the key of every accepted
  // return, and a ReturnRejection for every rejected one, each in payload
  // order (encoded as it goes, the same bytes as ReturnAck's serializer).
  std::string ack;
  int returns = 0;  // accepted
  std::vector<RejectedReturn> rejected;
  int deferred = 0;  // in neither list of the ACK (KeyAdmission::kDefer)
};

// Validates a RET payload. It must parse as a ReturnBatch holding at least
// one return (InvalidArgument otherwise: a malformed frame, not answered).
// Each return is then checked on its own: a non-empty jid of at most 64
// bytes, attempt >= 1, a valid minion id, stdout and stderr each at most
// bus::kMaxOutputBytes. Returns that pass are accepted (their bytes go into
// `chunks` unchanged); the others are rejected and answered in `ack`.
// `bound`, when set, is asked last about each return (its minion id,
// docs/PROTOCOL.md 8.4); a return it accepts is accepted: kReject rejects the return with kUnboundId (its
// id is bound to another key, pending or rejected); kDefer leaves it out of
// the ACK altogether (neither accepted nor rejected: the relay has no
// record of the id yet, so the minion keeps it and sends it again after
// its ack timeout).
enum class KeyAdmission { kAccept, kReject, kDefer };
absl::StatusOr<DecodedReturns> DecodeReturnPayload(
    absl::string_view payload, int64_t received_at_ms, const EntryLimits& limits,
    const std::function<KeyAdmission(const wire::v1::Return& ret)>& bound = nullptr);

// One returns-stream entry value built from consecutive chunks.
struct PackedEntry {
  std::string value;     // serialized ReturnBatch with relay fields set
  size_t first_chunk = 0;  // chunks [first_chunk, end_chunk) went into it
  size_t end_chunk = 0;
  int returns = 0;
};

// Packs `chunks`, in order, into as few entries as `limits` allow; an entry
// carries the received_at_ms of its first chunk.
std::vector<PackedEntry> PackEntries(absl::Span<const ReturnChunk* const> chunks,
                                     const EntryLimits& limits, absl::string_view relay_id,
                                     absl::string_view datacenter);

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RETURN_BATCHER_H_
