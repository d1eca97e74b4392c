// DispatchDedup: the dispatches (jid, attempt) a minion has already accepted,
// so that a job delivered twice (jobd re-dispatch after a crash, a relay
// replay) runs once (docs/PROTOCOL.md, section 3.1).
//
// An entry is kept until its job's deadline plus a margin: after the
// deadline a repeated delivery is ignored anyway as expired, so memory stays
// bounded by the jobs that can still run. The minion refills it at start
// from its journal (minion/outbox_journal.h), so a restart does not make it
// forget. fleetsim adds a scope (the topic)
// because one of its sockets accepts a broadcast once for all its minions but
// a targeted dispatch once per named minion.
//
// Not thread-safe: owned by the socket thread.
#ifndef MUSTER_MINION_DISPATCH_DEDUP_H_
#define MUSTER_MINION_DISPATCH_DEDUP_H_

#include <cstddef>
#include <cstdint>
#include <queue>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace muster::minion {

class DispatchDedup {
 public:
  // Entries live until deadline + `margin` (and at least `margin` from when
  // they were recorded, so a wrong clock cannot make them vanish at once).
  explicit DispatchDedup(absl::Duration margin = absl::Minutes(10));

  // Records the dispatch and returns true the first time it is seen;
  // returns false for a dispatch already recorded and not yet forgotten.
  // Forgets expired entries first.
  bool FirstTime(absl::string_view jid, uint32_t attempt, absl::Time deadline,
                 absl::Time now, absl::string_view scope = "");

  // True when the dispatch is recorded (in `scope`) and not yet forgotten.
  bool Contains(absl::string_view jid, uint32_t attempt, absl::string_view scope = "") const;

  // Forgets the entries whose time is up.
  void Expire(absl::Time now);

  size_t size() const { return seen_.size(); }

 private:
  struct Expiry {
    absl::Time at;
    std::string key;
    bool operator>(const Expiry& other) const { return at > other.at; }
  };

  const absl::Duration margin_;
  absl::flat_hash_set<std::string> seen_;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>> expiries_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_DISPATCH_DEDUP_H_
