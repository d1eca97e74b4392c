#include "relay/salt/msgpack_codec.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/text/utf8.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

// Reads a big-endian unsigned integer of `width` bytes at `p`.
uint64_t ReadBigEndian(const unsigned char* p, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value = (value << 8) | p[i];
  return value;
}

// What one msgpack header says: how many header bytes follow the type byte,
// whether those bytes hold a length (of payload bytes, or of children), and
// fixed payload bytes after them.
struct HeaderShape {
  int length_width = 0;     // bytes of big-endian length after the type byte
  uint64_t fixed_payload = 0;
  uint64_t fixed_children = 0;
  bool length_is_payload = false;   // str, bin: length = payload bytes
  bool length_is_elements = false;  // array: children = length
  bool length_is_pairs = false;     // map: children = 2 * length
  bool ext = false;                 // ext 8/16/32: one type byte + length
  bool invalid = false;
};

HeaderShape ShapeOf(unsigned char b) {
  HeaderShape s;
  if (b <= 0x7f || b >= 0xe0) return s;                     // fixint
  if (b <= 0x8f) { s.fixed_children = 2 * (b & 0x0f); return s; }  // fixmap
  if (b <= 0x9f) { s.fixed_children = b & 0x0f; return s; }       // fixarray
  if (b <= 0xbf) { s.fixed_payload = b & 0x1f; return s; }        // fixstr
  switch (b) {
    case 0xc0: case 0xc2: case 0xc3: return s;              // nil, false, true
    case 0xc1: s.invalid = true; return s;                  // never used
    case 0xc4: s.length_width = 1; s.length_is_payload = true; return s;
    case 0xc5: s.length_width = 2; s.length_is_payload = true; return s;
    case 0xc6: s.length_width = 4; s.length_is_payload = true; return s;
    case 0xc7: s.length_width = 1; s.ext = true; return s;
    case 0xc8: s.length_width = 2; s.ext = true; return s;
    case 0xc9: s.length_width = 4; s.ext = true; return s;
    case 0xca: s.fixed_payload = 4; return s;
    case 0xcb: s.fixed_payload = 8; return s;
    case 0xcc: case 0xd0: s.fixed_payload = 1; return s;
    case 0xcd: case 0xd1: s.fixed_payload = 2; return s;
    case 0xce: case 0xd2: s.fixed_payload = 4; return s;
    case 0xcf: case 0xd3: s.fixed_payload = 8; return s;
    case 0xd4: s.fixed_payload = 2; return s;                // fixext 1
    case 0xd5: s.fixed_payload = 3; return s;
    case 0xd6: s.fixed_payload = 5; return s;
    case 0xd7: s.fixed_payload = 9; return s;
    case 0xd8: s.fixed_payload = 17; return s;
    case 0xd9: s.length_width = 1; s.length_is_payload = true; return s;
    case 0xda: s.length_width = 2; s.length_is_payload = true; return s;
    case 0xdb: s.length_width = 4; s.length_is_payload = true; return s;
    case 0xdc: s.length_width = 2; s.length_is_elements = true; return s;
    case 0xdd: s.length_width = 4; s.length_is_elements = true; return s;
    case 0xde: s.length_width = 2; s.length_is_pairs = true; return s;
    case 0xdf: s.length_width = 4; s.length_is_pairs = true; return s;
  }
  s.invalid = true;
  return s;
}

// Turns bin values that are UTF-8 into strings, as Salt's
// decode_embedded_strs does. Depth is bounded by the walk done before.
void StringifyUtf8Binary(json& value) {
  if (value.is_binary()) {
    const json::binary_t& bytes = value.get_binary();
    absl::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (IsValidUtf8(view)) value = std::string(view);
    return;
  }
  if (value.is_array() || value.is_object()) {
    for (json& child : value) StringifyUtf8Binary(child);
  }
}

// Binary values that are not UTF-8 become {"base64": ...} so dump() can
// render them.
json WithBinaryAsBase64(const json& value) {
  if (value.is_binary()) {
    const json::binary_t& bytes = value.get_binary();
    absl::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (IsValidUtf8(view)) return std::string(view);
    return json{{"base64", absl::Base64Escape(view)}};
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& child : value) out.push_back(WithBinaryAsBase64(child));
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      out[it.key()] = WithBinaryAsBase64(it.value());
    }
    return out;
  }
  return value;
}

}  // namespace

absl::StatusOr<std::optional<size_t>> MsgpackObjectSize(absl::string_view bytes,
                                                        int max_depth) {
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t size = bytes.size();
  // remaining[i]: objects still to read at nesting level i.
  std::vector<uint64_t> remaining = {1};
  size_t pos = 0;
  while (!remaining.empty()) {
    if (remaining.back() == 0) {
      remaining.pop_back();
      continue;
    }
    --remaining.back();
    if (pos >= size) return std::nullopt;
    const unsigned char type = data[pos];
    const HeaderShape shape = ShapeOf(type);
    if (shape.invalid) {
      return absl::InvalidArgumentError(
          absl::StrCat("msgpack: invalid type byte 0x", absl::Hex(type), " at offset ", pos));
    }
    ++pos;
    uint64_t length = 0;
    if (shape.length_width > 0) {
      if (size - pos < static_cast<size_t>(shape.length_width)) return std::nullopt;
      length = ReadBigEndian(data + pos, shape.length_width);
      pos += shape.length_width;
    }
    uint64_t payload = shape.fixed_payload;
    uint64_t children = shape.fixed_children;
    if (shape.length_is_payload) payload = length;
    if (shape.ext) payload = length + 1;  // the ext type byte
    if (shape.length_is_elements) children = length;
    if (shape.length_is_pairs) children = 2 * length;
    if (payload > 0) {
      if (size - pos < payload) return std::nullopt;
      pos += payload;
    }
    if (children > 0) {
      if (static_cast<int>(remaining.size()) >= max_depth) {
        return absl::InvalidArgumentError(absl::StrCat(
            "msgpack: nested deeper than ", max_depth, " levels at offset ", pos));
      }
      // Every child takes at least one byte: more children than bytes left
      // can only be an incomplete buffer, and the walk stops at its end.
      remaining.push_back(children);
    }
  }
  return pos;
}

absl::StatusOr<json> DecodeMsgpack(absl::string_view bytes) {
  absl::StatusOr<std::optional<size_t>> size = MsgpackObjectSize(bytes);
  if (!size.ok()) return size.status();
  if (!size->has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("msgpack: truncated object (", bytes.size(), " bytes)"));
  }
  if (**size != bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("msgpack: ", bytes.size() - **size,
                                                   " extra bytes after the object"));
  }
  json value = json::from_msgpack(bytes.begin(), bytes.end(), /*strict=*/true,
                                  /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InvalidArgumentError(
        "msgpack: undecodable object (a non-string map key or a bad number)");
  }
  StringifyUtf8Binary(value);
  return value;
}

std::string EncodeMsgpack(const json& value) {
  std::string out;
  json::to_msgpack(value, nlohmann::detail::output_adapter<char>(out));
  return out;
}

std::string MsgpackValueToJsonText(const json& value) {
  return WithBinaryAsBase64(value).dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<json> ReadMsgpackFile(const std::string& path, int64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    if (error == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(error)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size > max_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", st.st_size,
                                                      " bytes, more than the limit ", max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(absl::StrCat(path, ": cannot open"));
  // Read at most max_bytes + 1, in case the file grew after stat.
  std::string bytes(static_cast<size_t>(st.st_size) + 1, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (static_cast<int64_t>(bytes.size()) > max_bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": more than the limit ", max_bytes, " bytes"));
  }
  absl::StatusOr<json> value = DecodeMsgpack(bytes);
  if (!value.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", value.status().message()));
  }
  return value;
}

}  // namespace muster::relay::salt
