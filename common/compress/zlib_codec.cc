#include "common/compress/zlib_codec.h"

#include <zlib.h>

#include "absl/strings/str_cat.h"

namespace muster::compress {

std::string ZlibCompress(absl::string_view data) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::string out(size, '\0');
  // Z_BEST_SPEED: ids compress about 10x at level 1 already.
  int rc = compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                     reinterpret_cast<const Bytef*>(data.data()),
                     static_cast<uLong>(data.size()), Z_BEST_SPEED);
  if (rc != Z_OK) return std::string();  // cannot happen: the buffer is big enough
  out.resize(size);
  return out;
}

absl::StatusOr<std::string> ZlibDecompress(absl::string_view stream, size_t max_bytes) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return absl::InternalError("inflateInit failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(stream.data()));
  z.avail_in = static_cast<uInt>(stream.size());
  std::string out;
  char buffer[64 * 1024];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof(buffer);
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out.append(buffer, sizeof(buffer) - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      return absl::InvalidArgumentError(
          absl::StrCat("zlib stream inflates past ", max_bytes, " bytes"));
    }
    if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
      rc = Z_BUF_ERROR;  // input ended before the stream did
    }
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END || z.avail_in != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("not one complete zlib stream (zlib code ", rc, ")"));
  }
  return out;
}

}  // namespace muster::compress
