#include "relay/return_batcher.h"

#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"
#include "proto/wire.pb.h"

namespace muster::relay {
namespace {

constexpr size_t kMaxJidBytes = 64;

absl::Status ValidateReturn(const wire::v1::Return& ret, int index) {
  if (ret.jid().empty() || ret.jid().size() > kMaxJidBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("return ", index, ": jid '", ret.jid(), "' must be 1..64 bytes"));
  }
  if (ret.attempt() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("return ", index, " (jid ", ret.jid(), "): attempt must be >= 1"));
  }
  absl::Status id = bus::ValidateMinionId(ret.minion_id());
  if (!id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("return ", index, ": ", id.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DecodedReturns> DecodeReturnPayload(absl::string_view payload,
                                                   int64_t received_at_ms,
                                                   const EntryLimits& limits) {
  wire::v1::ReturnBatch batch;
  if (!batch.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("RET payload of ", payload.size(), " bytes is not a ReturnBatch"));
  }
  if (batch.returns_size() == 0) {
    return absl::InvalidArgumentError("RET payload holds no returns");
  }
  wire::v1::ReturnAck ack;
  ack.mutable_keys()->Reserve(batch.returns_size());
  for (int i = 0; i < batch.returns_size(); ++i) {
    const wire::v1::Return& ret = batch.returns(i);
    absl::Status valid = ValidateReturn(ret, i);
    if (!valid.ok()) return valid;
    wire::v1::ReturnKey* key = ack.add_keys();
    key->set_jid(ret.jid());
    key->set_attempt(ret.attempt());
    key->set_minion_id(ret.minion_id());
  }
  DecodedReturns decoded;
  decoded.returns = batch.returns_size();
  decoded.ack = ack.SerializeAsString();
  bool fits = batch.returns_size() <= limits.max_returns && payload.size() <= limits.max_bytes &&
              batch.relay_id().empty() && batch.datacenter().empty() &&
              batch.received_at_ms() == 0;
  if (fits) {
    decoded.chunks.push_back({std::string(payload), batch.returns_size(), received_at_ms});
    return decoded;
  }
  // Too big for one entry (or carrying relay fields): re-encode in chunks.
  wire::v1::ReturnBatch chunk;
  size_t chunk_bytes = 0;
  auto flush = [&] {
    if (chunk.returns_size() == 0) return;
    decoded.chunks.push_back({chunk.SerializeAsString(), chunk.returns_size(), received_at_ms});
    chunk.Clear();
    chunk_bytes = 0;
  };
  for (wire::v1::Return& ret : *batch.mutable_returns()) {
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
