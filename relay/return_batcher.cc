#include "relay/return_batcher.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"
#include "common/codec/varint.h"
#include "common/ids/ids.h"
#include "google/protobuf/arena.h"
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

// Appends ReturnAck.keys (field 1) holding the key of an accepted return:
// byte for byte what the serializer writes (proto3: default values left
// out, fields in number order). An accepted return has a jid, an attempt
// and a minion id.
void AppendAckKey(const wire::v1::Return& ret, std::string* out) {
  const std::string& jid = ret.jid();
  const std::string& id = ret.minion_id();
  size_t key_size = 1 + VarintSize(jid.size()) + jid.size() + 1 + VarintSize(ret.attempt()) +
                    1 + VarintSize(id.size()) + id.size();
  out->push_back('\x0a');  // ReturnAck.keys: field 1, length-delimited
  AppendVarint(key_size, out);
  out->push_back('\x0a');  // ReturnKey.jid
  AppendVarint(jid.size(), out);
  out->append(jid);
  out->push_back('\x10');  // ReturnKey.attempt: field 2, varint
  AppendVarint(ret.attempt(), out);
  out->push_back('\x1a');  // ReturnKey.minion_id: field 3
  AppendVarint(id.size(), out);
  out->append(id);
}

// Where a RET payload is parsed: one block reused by the thread, so the
// ~100 Return messages of a payload cost no allocation each.
constexpr size_t kParseBlockBytes = 256 << 10;

}  // namespace

absl::StatusOr<DecodedReturns> DecodeReturnPayload(
    absl::string_view payload, int64_t received_at_ms, const EntryLimits& limits,
    const std::function<KeyAdmission(const wire::v1::Return& ret)>& bound) {
  thread_local std::unique_ptr<char[]> parse_block(new char[kParseBlockBytes]);
  google::protobuf::ArenaOptions arena_options;
  arena_options.initial_block = parse_block.get();
  arena_options.initial_block_size = kParseBlockBytes;
  google::protobuf::Arena arena(arena_options);
  wire::v1::ReturnBatch& batch = *google::protobuf::Arena::CreateMessage<wire::v1::ReturnBatch>(&arena);
  if (!batch.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("RET payload of ", payload.size(), " bytes is not a ReturnBatch"));
  }
  if (batch.returns_size() == 0) {
    return absl::InvalidArgumentError("RET payload holds no returns");
  }
  DecodedReturns decoded;
  // About 50 bytes per key (a 20-byte jid, a 25-byte minion id).
  decoded.ack.reserve(static_cast<size_t>(batch.returns_size()) * 56);
  std::string rejections;  // ReturnAck.rejected (field 2) follows every key
  std::vector<bool> accepted(batch.returns_size(), false);
  for (int i = 0; i < batch.returns_size(); ++i) {
    const wire::v1::Return& ret = batch.returns(i);
    std::optional<RejectedReturn> rejected = CheckReturn(ret);
    if (!rejected.has_value() && bound) {
      KeyAdmission admission = bound(ret);
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
      wire::v1::ReturnRejection rejection;
      CopyKey(ret, rejection.mutable_key());
      rejection.set_reason(std::string(ReturnRejectReasonName(rejected->reason)));
      rejection.set_detail(rejected->detail);
      std::string bytes = rejection.SerializeAsString();
      rejections.push_back('\x12');  // ReturnAck.rejected: field 2
      AppendVarint(bytes.size(), &rejections);
      rejections.append(bytes);
      decoded.rejected.push_back(*std::move(rejected));
      continue;
    }
    accepted[i] = true;
    ++decoded.returns;
    AppendAckKey(ret, &decoded.ack);
  }
  decoded.ack.append(rejections);
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
    const wire::v1::Return& ret = batch.returns(i);
    size_t bytes = ret.ByteSizeLong() + 8;
    if (chunk.returns_size() >= limits.max_returns ||
        (chunk.returns_size() > 0 && chunk_bytes + bytes > limits.max_bytes)) {
      flush();
    }
    chunk_bytes += bytes;
    *chunk.add_returns() = ret;  // a copy: `ret` lives in the parse arena
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
    // Room for the StreamSeq the return path appends (at most 35 bytes),
    // so the entry is never copied to grow by it.
    entry.value.reserve(bytes + suffix.ByteSizeLong() + 48);
    for (size_t c = entry.first_chunk; c < entry.end_chunk; ++c) {
      entry.value.append(chunks[c]->batch);
    }
    entry.value.append(suffix.SerializeAsString());
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace muster::relay
