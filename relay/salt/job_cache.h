// Reading a salt-master's local job cache (salt/returners/local_cache.py,
// the default master_job_cache), so a relay that missed events (it or the
// master restarted) can catch up on the returns the master stored.
//
// Layout, 3006.1, h = hex(<hash_type>(jid)) (hash_type from the master
// config, default sha256):
//   <cachedir>/jobs/<h[0:2]>/<h[2:]>/jid          the jid, plain text
//   .../.load.p      msgpack: the publish load {cmd, tgt, fun, arg, tgt_type,
//                    ret, jid, user}
//   .../.minions.p   msgpack: list of the minions the master resolved
//   .../<minion>/return.p  msgpack {return, retcode, success}, written once
//                    per minion and jid: the master drops a second return
//                    ("An extra return was detected") but still fires its
//                    event on the bus.
//   .../<minion>/out.p     msgpack: the outputter name, when given
// return.p is written with an atomic rename, so a reader sees the whole file
// or none. Nothing here writes; every file read is size-capped.
#ifndef MUSTER_RELAY_SALT_JOB_CACHE_H_
#define MUSTER_RELAY_SALT_JOB_CACHE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "relay/salt/salt_return.h"

namespace muster::relay::salt {

// <cachedir>/jobs/<h[0:2]>/<h[2:]> for `salt_jid`. InvalidArgument for a
// hash type OpenSSL does not know.
absl::StatusOr<std::string> JobCacheDir(const std::string& cachedir, const std::string& salt_jid,
                                        const std::string& hash_type = "sha256");

// What the cache holds for one job.
struct CachedJob {
  std::string fun;                         // from .load.p; empty if unreadable
  std::vector<std::string> minions;        // from .minions.p; empty if absent
  std::vector<SaltReturn> returns;         // one per minion directory with a return.p
  std::vector<std::string> errors;         // files skipped, each "path: reason"
};

// Every stored return of `salt_jid`, in minion-id order, with fun and
// fun_args from .load.p. NotFound when the master never cached the jid
// (no job directory). A minion whose return.p is missing (still running),
// too large or malformed is left out and named in `errors`, never fatal.
// Minion directory names that are not valid Salt ids ('.', '..', a '/')
// are skipped.
absl::StatusOr<CachedJob> ReadCachedJob(const std::string& cachedir, const std::string& salt_jid,
                                        const std::string& hash_type = "sha256");

// ReadCachedJob's returns only.
absl::StatusOr<std::vector<SaltReturn>> ReadJobReturns(const std::string& cachedir,
                                                       const std::string& salt_jid,
                                                       const std::string& hash_type = "sha256");

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_JOB_CACHE_H_
