// The minion's state directory (--state_dir) is private: it holds the
// journal of every job's arguments and output and the minion's secret key.
// Created 0700; an existing one that group or others may enter is
// tightened to 0700, with a warning. The minion also runs with umask 077,
// so every file it creates there (journal, keys, logs) is 0600.
#ifndef MUSTER_MINION_STATE_DIR_H_
#define MUSTER_MINION_STATE_DIR_H_

#include <string>

#include "absl/status/statusor.h"

namespace muster::minion {

// Creates `path` (0700, parents included) or tightens it to 0700. Returns
// a warning to log ("" when none): the old mode when it was tightened.
// Fails when it cannot be created, is not a directory, or cannot be
// chmod-ed.
absl::StatusOr<std::string> EnsurePrivateStateDir(const std::string& path);

}  // namespace muster::minion

#endif  // MUSTER_MINION_STATE_DIR_H_
