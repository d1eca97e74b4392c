#include "relay/return_batcher.h"

#include <algorithm>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"
#include "common/ids/ids.h"
#include "proto/wire.pb.h"

namespace muster::relay {
namespace {

// Why `ret` can never be accepted, or nullopt when it can.
std::optional<RejectedReturn> CheckReturn(const wire::v1::Return& ret) {
  if (absl::Status jid = ValidateBusJid(ret.jid()); !jid.ok()) {
    return RejectedReturn{ReturnRejectReason::kBadJid, std::string(jid.message())};
  }
  if (ret.attempt() == 0) {
    return RejectedReturn{ReturnRejectReason::kBadAttempt,
                          absl::StrCat("jid ", absl::CHexEscape(ret.jid()), ": attempt must be >= 1")};
  }
  absl::Status id = ValidateMinionId(ret.minion_id());
  if (!id.ok()) {
    return RejectedReturn{ReturnRejectReason::kBadMinionId, std::string(id.message())};
  }
  size_t output = std::max(ret.stdout().size(), ret.stderr().size());
  if (output > bus::kMaxOutputBytes) {
    return RejectedReturn{ReturnRejectReason::kOutputTooLarge,
                          absl::StrCat("jid ", absl::CHexEscape(ret.jid()), " minion ", ret.minion_id(), ": ",
                                       output, " bytes of output, more than ",
                                       bus::kMaxOutputBytes)};
  }
  return std::nullopt;
}

void CopyKey(const wire::v1::Return& ret, wire::v1::ReturnKey* key) {
  key->set_jid(ret.jid());
  key->set_attempt(ret.attempt());
  key->set_minion_id(ret.minion_id());
}

}  // namespace

absl::StatusOr<DecodedReturns> DecodeReturnPayload(
    absl::string_view payload, int64_t received_at_ms, const EntryLimits& limits,
    const std::function<KeyAdmission(const std::string& minion_id)>& bound) {
  wire::v1::ReturnBatch batch;
  if (!batch.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("RET payload of ", payload.size(), " bytes is not a ReturnBatch"));
  }
  if (batch.returns_size() == 0) {
    return absl::InvalidArgumentError("RET payload holds no returns");
  }
  DecodedReturns decoded;
  wire::v1::ReturnAck& ack = decoded.ack;
  ack.mutable_keys()->Reserve(batch.returns_size());
  std::vector<bool> accepted(batch.returns_size(), false);
  for (int i = 0; i < batch.returns_size(); ++i) {
    const wire::v1::Return& ret = batch.returns(i);
    std::optional<RejectedReturn> rejected = CheckReturn(ret);
    if (!rejected.has_value() && bound) {
      KeyAdmission admission = bound(ret.minion_id());
      if (admission == KeyAdmission::kDefer) {
        ++decoded.deferred;
        continue;
      }
      if (admission == KeyAdmission::kReject) {
        rejected = RejectedReturn{ReturnRejectReason::kUnboundId,
                                  absl::StrCat("minion ", ret.minion_id(),
                                               ": not accepted and bound to the sender's key")};
      }
    }
    if (rejected.has_value()) {
      wire::v1::ReturnRejection* rejection = ack.add_rejected();
      CopyKey(ret, rejection->mutable_key());
      rejection->set_reason(std::string(ReturnRejectReasonName(rejected->reason)));
      rejection->set_detail(rejected->detail);
      decoded.rejected.push_back(*std::move(rejected));
      continue;
    }
    accepted[i] = true;
    CopyKey(ret, ack.add_keys());
  }
  decoded.returns = ack.keys_size();
  if (decoded.returns == 0) return decoded;
  bool fits = decoded.rejected.empty() && decoded.deferred == 0 &&
              batch.returns_size() <= limits.max_returns &&
              payload.size() <= limits.max_bytes && batch.relay_id().empty() &&
              batch.datacenter().empty() && batch.received_at_ms() == 0;
  if (fits) {
    decoded.chunks.push_back({std::string(payload), batch.returns_size(), received_at_ms});
    return decoded;
  }
  // Too big for one entry, carrying relay fields or holding rejected
  // returns: re-encode the accepted ones in chunks.
  wire::v1::ReturnBatch chunk;
  size_t chunk_bytes = 0;
  auto flush = [&] {
    if (chunk.returns_size() == 0) return;
    decoded.chunks.push_back({chunk.SerializeAsString(), chunk.returns_size(), received_at_ms});
    chunk.Clear();
    chunk_bytes = 0;
  };
  for (int i = 0; i < batch.returns_size(); ++i) {
    if (!accepted[i]) continue;
    wire::v1::Return& ret = *batch.mutable_returns(i);
    size_t bytes = ret.ByteSizeLong() + 8;
    if (chunk.returns_size() >= limits.max_returns ||
        (chunk.returns_size() > 0 && chunk_bytes + bytes > limits.max_bytes)) {
      flush();
    }
    chunk_bytes += bytes;
    *chunk.add_returns() = std::move(ret);
  }
  flush();
  return decoded;
}

std::vector<PackedEntry> PackEntries(absl::Span<const ReturnChunk* const> chunks,
                                     const EntryLimits& limits, absl::string_view relay_id,
                                     absl::string_view datacenter) {
  std::vector<PackedEntry> entries;
  size_t i = 0;
  while (i < chunks.size()) {
    PackedEntry entry;
    entry.first_chunk = i;
    size_t bytes = 0;
    while (i < chunks.size()) {
      const ReturnChunk& chunk = *chunks[i];
      // Every entry takes at least one chunk (receipt-only chunks count no
      // returns, so test the position, not the count).
      bool empty = i == entry.first_chunk;
      if (!empty && (entry.returns + chunk.returns > limits.max_returns ||
                     bytes + chunk.batch.size() > limits.max_bytes)) {
        break;
      }
      entry.returns += chunk.returns;
      bytes += chunk.batch.size();
      ++i;
    }
    entry.end_chunk = i;
    wire::v1::ReturnBatch suffix;
    suffix.set_relay_id(std::string(relay_id));
    suffix.set_datacenter(std::string(datacenter));
    suffix.set_received_at_ms(chunks[entry.first_chunk]->received_at_ms);
    entry.value.reserve(bytes + suffix.ByteSizeLong());
    for (size_t c = entry.first_chunk; c < entry.end_chunk; ++c) {
      entry.value.append(chunks[c]->batch);
    }
    entry.value.append(suffix.SerializeAsString());
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace muster::relay
