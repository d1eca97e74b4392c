// The compact encoding of a job's frozen expected set.
//
// A job's expected set is stored once per datacenter as one blob: the
// minions' inventory numbers (stable small integers, see Inventory), sorted,
// as a varint count followed by varint deltas. 100,000 minions numbered
// densely cost about 100 KB and one row insert instead of 100,000.
#ifndef MUSTER_SERVER_EXPECTED_SET_H_
#define MUSTER_SERVER_EXPECTED_SET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/codec/varint.h"  // AppendVarint, ReadVarint: its users' too

namespace muster::server {

// Encodes `sorted_numbers` (strictly increasing; checked in debug builds).
std::string EncodeExpectedSet(absl::Span<const uint32_t> sorted_numbers);

// Decodes a blob written by EncodeExpectedSet. InvalidArgument (naming the
// byte offset) for a truncated or corrupt blob.
absl::StatusOr<std::vector<uint32_t>> DecodeExpectedSet(absl::string_view blob);


}  // namespace muster::server

#endif  // MUSTER_SERVER_EXPECTED_SET_H_
