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
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

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

// A RET payload after validation.
struct DecodedReturns {
  std::vector<ReturnChunk> chunks;
  // Serialized ReturnAck with the key of every return in the payload.
  std::string ack;
  int returns = 0;
};

// Validates a RET payload: it must parse as a ReturnBatch holding at least
// one return, each with a non-empty jid (at most 64 bytes), attempt >= 1 and
// a valid minion id. InvalidArgument (naming the problem) otherwise.
absl::StatusOr<DecodedReturns> DecodeReturnPayload(absl::string_view payload,
                                                   int64_t received_at_ms,
                                                   const EntryLimits& limits);

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
