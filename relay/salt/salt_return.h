// SaltReturn: one minion's answer to one Salt job, as the master's event bus
// (tag salt/job/<jid>/ret/<minion>) and its local job cache
// (jobs/<hash>/<minion>/return.p) carry it, turned into typed fields at the
// edge so nothing behind it touches msgpack or Salt's dict layout.
//
// Salt's load (salt/minion.py _thread_return, 3006.1):
//   {"cmd": "_return", "id", "jid", "fun", "fun_args", "return",
//    "retcode", "success", "out"?, "_stamp" (added by the event bus)}
// return.p holds only {"return", "retcode", "success"}; fun and fun_args
// then come from the job's .load.p.
#ifndef MUSTER_RELAY_SALT_SALT_RETURN_H_
#define MUSTER_RELAY_SALT_SALT_RETURN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace muster::relay::salt {

struct SaltReturn {
  std::string salt_jid;
  std::string minion_id;
  std::string fun;                 // "test.ping"; empty when unknown
  bool success = false;
  int retcode = 0;
  bool retcode_derived = false;    // the load had no usable retcode
  std::string return_json;         // the 'return' value as JSON text
  std::string fun_args_json;       // the 'fun_args' list as JSON text, "[]" if absent
  std::string stamp;               // the event's _stamp (UTC ISO 8601); empty from the cache
};

// The master's publish of a job (tag salt/job/<jid>/new): what it resolved.
struct SaltPublishEvent {
  std::string salt_jid;
  std::string fun;
  std::vector<std::string> minions;  // the minions the master will send to
  std::vector<std::string> missing;  // list targets it has no key for
  std::string stamp;
};

// Salt's exit code for a return whose load has no integer retcode, the way
// the minion computes it (salt/minion.py ~1957): 1 when `success` is false
// or when the return is a dict whose "result" or "success" is false, else
// 0. A dict retcode (multi-function jobs) gives its largest value.
int DeriveRetcode(const nlohmann::json& load);

// The strings of list field `key` of map `map` (non-strings skipped; empty
// when absent or not a list): "minions", "missing" in Salt's loads.
std::vector<std::string> StringListField(const nlohmann::json& map, const char* key);

// Builds a SaltReturn from a decoded return load. `salt_jid` and
// `minion_id` come from the caller (the event tag, or the cache path) and
// win over the load's own "jid"/"id"; InvalidArgument when the load is not
// a map or has no "return". success defaults to retcode == 0 when absent.
absl::StatusOr<SaltReturn> ParseReturnLoad(const std::string& salt_jid,
                                           const std::string& minion_id,
                                           const nlohmann::json& load);

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_SALT_RETURN_H_
