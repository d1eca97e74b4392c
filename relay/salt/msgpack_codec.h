// Msgpack as Salt writes it: salt.payload.dumps (use_bin_type=True on the
// event bus and in cache files, False on the request port) and the Tornado
// IPC stream, which is msgpack objects back to back with no length prefix.
//
// Values are decoded with nlohmann::json. What nlohmann lacks, and what makes
// bytes from outside safe to decode, is MsgpackObjectSize: a bounded,
// iterative walk that says how long the first complete object in a buffer is
// without allocating, so a reader knows where a frame ends and a truncated,
// garbage or hostile buffer (a header claiming 4 GiB, nesting 100k deep) is
// an error or "not yet complete", never a crash or a huge allocation.
// DecodeMsgpack walks first, then decodes exactly the walked bytes.
#ifndef MUSTER_RELAY_SALT_MSGPACK_CODEC_H_
#define MUSTER_RELAY_SALT_MSGPACK_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace muster::relay::salt {

// Deeper nesting than this is rejected (Salt's deepest real data, a state
// return, nests about 6 levels).
inline constexpr int kMaxMsgpackDepth = 64;

// Largest file ReadMsgpackFile reads (a minion's data.p with pillar, a big
// cmd.run return): larger files are refused, not read.
inline constexpr int64_t kMaxMsgpackFileBytes = 64 << 20;

// The length in bytes of the first complete msgpack object at the start of
// `bytes`; nullopt when `bytes` holds only a prefix of one (read more).
// InvalidArgument when the bytes cannot start a valid object (0xc1, or
// nesting deeper than `max_depth`). Work is linear in bytes.size(), memory
// in the nesting depth; never reads past `bytes`.
absl::StatusOr<std::optional<size_t>> MsgpackObjectSize(absl::string_view bytes,
                                                        int max_depth = kMaxMsgpackDepth);

// Decodes `bytes`, which must be exactly one complete msgpack object.
// Map keys must be strings. A bin (or ext) value that is valid UTF-8 comes
// back as a string, as Salt's own decode_embedded_strs does; other bin and
// ext values stay json binary values (see MsgpackValueToJsonText).
// InvalidArgument on anything malformed, incomplete or followed by extra
// bytes.
absl::StatusOr<nlohmann::json> DecodeMsgpack(absl::string_view bytes);

// Encodes a value with str for strings and bin for binary values (what
// salt.payload.dumps(use_bin_type=True) produces for str and bytes).
std::string EncodeMsgpack(const nlohmann::json& value);

// `value` as compact JSON text. A binary value that is not UTF-8 becomes
// {"base64": "<standard base64 of the bytes>"}; invalid UTF-8 in strings
// is replaced by U+FFFD. Never throws.
std::string MsgpackValueToJsonText(const nlohmann::json& value);

// Reads and decodes a whole msgpack file (a Salt cache .p file). NotFound
// when missing, FailedPrecondition when larger than `max_bytes`,
// InvalidArgument when malformed; the message names the path.
absl::StatusOr<nlohmann::json> ReadMsgpackFile(const std::string& path,
                                               int64_t max_bytes = kMaxMsgpackFileBytes);

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_MSGPACK_CODEC_H_
