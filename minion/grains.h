// Grains: the key/value facts a minion reports about itself (os, role,
// rack...), sent in every heartbeat and matched by grain targets.
//
// They come from the --grains flag ("key=value,key=value") and/or a
// --grains_file holding either key=value lines or one JSON object. Both are
// validated here, where they enter the minion; the rest of the code trusts
// the resulting map.
#ifndef MUSTER_MINION_GRAINS_H_
#define MUSTER_MINION_GRAINS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/target/target.h"

namespace muster::minion {

using Grains = ::muster::Grains;

// Parses "key=value,key=value". Keys and values are trimmed; a value may be
// empty, a key may not; the value runs to the next ',' (so values cannot
// contain ','). An empty string gives no grains. A repeated key keeps the
// last value. InvalidArgument names the bad item.
absl::StatusOr<Grains> ParseGrainsFlag(absl::string_view text);

// Parses a grains file's contents: a JSON object when the first non-blank
// character is '{' (string values as is; numbers and booleans as their JSON
// text; null, arrays and objects are rejected), otherwise key=value lines
// where blank lines and lines starting with '#' are skipped.
absl::StatusOr<Grains> ParseGrainsFile(absl::string_view contents);

// The minion's grains: the file's (when `file_path` is not empty), then the
// flag's on top (a key in both takes the flag's value).
absl::StatusOr<Grains> LoadGrains(absl::string_view flag_text,
                                  const std::string& file_path);

// The grains as a JSON object with sorted keys, e.g. {"os":"debian"}.
std::string GrainsToJson(const Grains& grains);

}  // namespace muster::minion

#endif  // MUSTER_MINION_GRAINS_H_
