#include "minion/dispatch_dedup.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace muster::minion {

DispatchDedup::DispatchDedup(absl::Duration margin) : margin_(margin) {}

bool DispatchDedup::FirstTime(absl::string_view jid, uint32_t attempt,
                              absl::Time deadline, absl::Time now,
                              absl::string_view scope) {
  Expire(now);
  // jid is digits only, so '/' cannot make two different keys equal.
  std::string key = absl::StrCat(jid, "/", attempt, "/", scope);
  if (!seen_.insert(key).second) return false;
  expiries_.push({std::max(deadline, now) + margin_, std::move(key)});
  return true;
}

bool DispatchDedup::Contains(absl::string_view jid, uint32_t attempt,
                             absl::string_view scope) const {
  return seen_.contains(absl::StrCat(jid, "/", attempt, "/", scope));
}

void DispatchDedup::Expire(absl::Time now) {
  while (!expiries_.empty() && expiries_.top().at <= now) {
    seen_.erase(expiries_.top().key);
    expiries_.pop();
  }
}

}  // namespace muster::minion
