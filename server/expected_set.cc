#include "server/expected_set.h"

#include <cassert>

#include "absl/strings/str_cat.h"
#include "common/codec/varint.h"

namespace muster::server {

std::string EncodeExpectedSet(absl::Span<const uint32_t> sorted_numbers) {
  // Written in place (a varint is at most 10 bytes; a uint32 delta at
  // most 5), not byte by byte through AppendVarint: SubmitJob encodes every
  // datacenter's set before its dispatch is sent, and at 100,000 minions
  // the calls took about 0.4 ms of it.
  std::string out(10 + 5 * sorted_numbers.size(), '\0');
  char* p = out.data();
  auto put = [&p](uint64_t value) {
    while (value >= 0x80) {
      *p++ = static_cast<char>(value | 0x80);
      value >>= 7;
    }
    *p++ = static_cast<char>(value);
  };
  put(sorted_numbers.size());
  uint32_t previous = 0;
  for (size_t i = 0; i < sorted_numbers.size(); ++i) {
    assert(i == 0 || sorted_numbers[i] > previous);
    put(i == 0 ? sorted_numbers[i] : sorted_numbers[i] - previous);
    previous = sorted_numbers[i];
  }
  out.resize(p - out.data());
  return out;
}

absl::StatusOr<std::vector<uint32_t>> DecodeExpectedSet(absl::string_view blob) {
  size_t pos = 0;
  uint64_t count = 0;
  if (!ReadVarint(blob, &pos, &count) || count > blob.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected set: bad count at byte 0 of ", blob.size()));
  }
  std::vector<uint32_t> numbers;
  numbers.reserve(count);
  uint64_t value = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t delta = 0;
    size_t at = pos;
    if (!ReadVarint(blob, &pos, &delta) || (i > 0 && delta == 0) ||
        value + delta > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected set: bad delta at byte ", at, " of ", blob.size()));
    }
    value += delta;
    numbers.push_back(static_cast<uint32_t>(value));
  }
  if (pos != blob.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected set: ", blob.size() - pos, " trailing bytes"));
  }
  return numbers;
}

}  // namespace muster::server
