// RelayMetricsText: relayd's Prometheus metrics, read from the RelayCounters
// its threads already keep (the same figures as its heartbeat), for the
// --metrics_listen endpoint. Every name is listed in docs/OPERATIONS.md.
#ifndef MUSTER_RELAY_RELAY_METRICS_H_
#define MUSTER_RELAY_RELAY_METRICS_H_

#include <string>

#include "relay/relay_counters.h"

namespace muster::relay {

// The text exposition of `counters` now; thread-safe (atomic reads only).
std::string RelayMetricsText(const RelayCounters& counters);

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RELAY_METRICS_H_
