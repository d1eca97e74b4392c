#include "relay/relay_metrics.h"

#include "common/metrics/metric_families.h"

namespace muster::relay {

std::string RelayMetricsText(const RelayCounters& c) {
  metrics::MetricFamilies out;
  out.Counter("muster_relay_returns_forwarded_total",
              "Minion returns written to the Redis returns stream (directly or from the spool).",
              c.returns_forwarded.load());
  out.Counter("muster_relay_returns_spooled_total",
              "Minion returns written to the on-disk spool because Redis was unreachable.",
              c.returns_spooled.load());
  out.Gauge("muster_relay_spool_depth", "Returns waiting in the on-disk spool.",
            c.spool_depth.load());
  for (int r = 0; r < kFrameDropReasons; ++r) {
    out.Counter("muster_relay_malformed_frames_total", "Bus messages dropped, by reason.",
                c.malformed_frames_by_reason[r].load(),
                {{"reason", std::string(FrameDropReasonName(static_cast<FrameDropReason>(r)))}});
  }
  for (int r = 0; r < kReturnRejectReasons; ++r) {
    out.Counter(
        "muster_relay_returns_rejected_total",
        "Returns answered with a rejection (never acceptable; the minion drops them), by reason.",
        c.returns_rejected_by_reason[r].load(),
        {{"reason", std::string(ReturnRejectReasonName(static_cast<ReturnRejectReason>(r)))}});
  }
  out.Counter("muster_relay_malformed_entries_total",
              "Job-stream entries skipped because they do not decode or validate.",
              c.malformed_entries.load());
  out.Counter("muster_relay_jobs_injected_total", "Jobs published on the bus.",
              c.jobs_injected.load());
  out.Counter("muster_relay_jobs_expired_total",
              "Jobs not injected because their deadline had passed when read.",
              c.jobs_expired.load());
  out.Counter("muster_relay_jobs_duplicate_total",
              "Job-stream entries skipped because their (jid, attempt) was already handled.",
              c.jobs_duplicate.load());
  out.Gauge("muster_relay_minions_connected", "Minions heard from within the silence limit.",
            c.minions_connected.load());
  out.Counter("muster_relay_redis_errors_total", "Failed Redis commands (both threads).",
              c.redis_errors.load());
  out.Counter("muster_relay_redis_reconnects_total",
              "Redis connections re-established after one was lost or refused.",
              c.redis_reconnects.load());
  return metrics::MetricsText(nullptr, out.Take());
}

}  // namespace muster::relay
