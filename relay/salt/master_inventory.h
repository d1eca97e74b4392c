// What a salt-master knows about its minions, read from its files: the key
// states under pki_dir (salt/key.py) and each minion's cached grains under
// cachedir (salt/cache/localfs.py, bank minions/<id>, key data).
//
//   <pki_dir>/minions/<id>           accepted
//   <pki_dir>/minions_pre/<id>       pending
//   <pki_dir>/minions_rejected/<id>  rejected
//   <pki_dir>/minions_denied/<id>    denied (a second key for an accepted id)
//   <cachedir>/minions/<id>/data.p   msgpack {"grains": {...}, "pillar": {...}}
//
// Read-only, bounded (a data.p over the cap is refused), and a bad entry is
// skipped with an error, never fatal to the rest.
#ifndef MUSTER_RELAY_SALT_MASTER_INVENTORY_H_
#define MUSTER_RELAY_SALT_MASTER_INVENTORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace muster::relay::salt {

struct MasterKeys {
  std::vector<std::string> accepted;  // each list sorted
  std::vector<std::string> pending;
  std::vector<std::string> rejected;
  std::vector<std::string> denied;
  std::vector<std::string> errors;    // entries skipped, "path: reason"
};

// The key files in the four directories under `pki_dir`. Only regular
// files (symlinks followed) whose names are valid Salt ids count (no leading '.', no '/',
// not '.pem'/'.pub' master key files). A missing directory is an empty
// list; NotFound only when `pki_dir` itself is missing.
absl::StatusOr<MasterKeys> ReadMasterKeys(const std::string& pki_dir);

inline constexpr int64_t kMaxGrainsFileBytes = 8 << 20;

// The minion's cached grains, flattened to strings: a string as is, a
// number or boolean as its JSON text ("4", "true"), null as "", and a list
// or map as its compact JSON text (["10.0.0.1","127.0.0.1"] stays
// `["10.0.0.1","127.0.0.1"]`, so a value with commas is not ambiguous).
// NotFound when the master has no data.p for `minion_id` (it caches grains
// when the minion authenticates and on each grains refresh),
// InvalidArgument when malformed or without a "grains" map,
// FailedPrecondition over `max_bytes`.
absl::StatusOr<std::map<std::string, std::string>> ReadCachedGrains(
    const std::string& cachedir, const std::string& minion_id,
    int64_t max_bytes = kMaxGrainsFileBytes);

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_MASTER_INVENTORY_H_
