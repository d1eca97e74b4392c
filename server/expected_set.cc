#include "server/expected_set.h"

#include <cassert>

#include "absl/strings/str_cat.h"

namespace muster::server {

void AppendVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

bool ReadVarint(absl::string_view in, size_t* pos, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    uint8_t byte = static_cast<uint8_t>(in[(*pos)++]);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

std::string EncodeExpectedSet(absl::Span<const uint32_t> sorted_numbers) {
  std::string out;
  out.reserve(sorted_numbers.size() + 8);
  AppendVarint(sorted_numbers.size(), &out);
  uint32_t previous = 0;
  for (size_t i = 0; i < sorted_numbers.size(); ++i) {
    assert(i == 0 || sorted_numbers[i] > previous);
    AppendVarint(i == 0 ? sorted_numbers[i] : sorted_numbers[i] - previous, &out);
    previous = sorted_numbers[i];
  }
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
