// zlib streams (RFC 1950, what zlib's compress() writes and Python's
// zlib.compress() reads) for values Muster puts in Redis that are large and
// repetitive: a dispatch's expected minions (docs/PROTOCOL.md 2.1) are
// about 30 bytes an id uncompressed and about 3 compressed, and Redis
// writes every byte to its append-only file.
#ifndef MUSTER_COMMON_COMPRESS_ZLIB_CODEC_H_
#define MUSTER_COMMON_COMPRESS_ZLIB_CODEC_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster::compress {

// `data` as one zlib stream at the fastest level.
std::string ZlibCompress(absl::string_view data);

// The bytes of the zlib stream `stream`. InvalidArgument when it is not one
// complete zlib stream or would inflate past `max_bytes`.
absl::StatusOr<std::string> ZlibDecompress(absl::string_view stream, size_t max_bytes);

}  // namespace muster::compress

#endif  // MUSTER_COMMON_COMPRESS_ZLIB_CODEC_H_
