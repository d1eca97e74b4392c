// Base-128 varints (little-endian groups of 7 bits, high bit = more), as
// protobuf encodes lengths and integers: jobd's compact store encodings
// (expected sets, row codecs) and the hand-encoded ReturnBatch entries of
// the relay and the minions' outbox share these.
#ifndef MUSTER_COMMON_CODEC_VARINT_H_
#define MUSTER_COMMON_CODEC_VARINT_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace muster {

// Appends `value`'s varint to *out (1 to 10 bytes).
void AppendVarint(uint64_t value, std::string* out);

// How many bytes AppendVarint writes for `value`.
size_t VarintSize(uint64_t value);

// Reads one varint of `in` at *pos into *value and moves *pos past it;
// false (and *value untouched) when `in` ends inside it or it is longer
// than 64 bits.
bool ReadVarint(absl::string_view in, size_t* pos, uint64_t* value);

}  // namespace muster

#endif  // MUSTER_COMMON_CODEC_VARINT_H_
