#include "relay/relay_metrics.h"

#include "common/metrics/metric_families.h"

namespace muster::relay {
namespace {

// The Redis nodes and what the relay holds for a failover
// (docs/PROTOCOL.md 2.4).
void AddRedisFigures(const RelayCounters& c, metrics::MetricFamilies& out) {
  out.Counter("muster_relay_redis_failovers_followed_total",
              "New primaries the relay's write link (returns, events) followed since start.",
              c.write_link.node_changes());
  const RedisNode read = c.read_link.node();
  out.Gauge("muster_relay_reading_from_replica",
            "1 when the job reader reads the job stream from a replica (--redis_replica), 0 "
            "when from the primary or not connected.",
            !read.address.empty() && read.role == "replica" ? 1 : 0);
  out.Gauge("muster_relay_unconfirmed_entries",
            "Returns-stream entries held until jobd's commit mark covers them.",
            c.unconfirmed_entries.load());
  out.Gauge("muster_relay_unconfirmed_bytes", "Bytes of the returns-stream entries held.",
            c.unconfirmed_bytes.load());
  out.Gauge("muster_relay_unconfirmed_deliveries",
            "Delivery events held in the outbox until jobd's commit mark covers them.",
            c.unconfirmed_deliveries.load());
  constexpr char kRewrittenHelp[] =
      "Entries written to Redis again (after a new connection, or a gap jobd's commit mark "
      "showed), by stream.";
  out.Counter("muster_relay_entries_rewritten_total", kRewrittenHelp, c.entries_rewritten.load(),
              {{"stream", "returns"}});
  out.Counter("muster_relay_entries_rewritten_total", kRewrittenHelp,
              c.deliveries_rewritten.load(), {{"stream", "deliveries"}});
  out.Counter("muster_relay_job_cursor_rewinds_total",
              "Job-stream cursor moves back because the stream lost entries the relay had read "
              "(a failover).",
              c.job_cursor_rewinds.load());
}

}  // namespace

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
  for (int r = 1; r < kDispatchRefusalSlots; ++r) {
    out.Counter("muster_relay_dispatches_refused_total",
                "Job-stream entries refused and not published (unsigned, forged, oversized, "
                "another datacenter's), by reason.",
                c.dispatches_refused_by_reason[r].load(),
                {{"reason", std::string(security::RefusalReason(static_cast<security::Refusal>(r)))}});
  }
  out.Counter("muster_relay_jobs_injected_total", "Jobs published on the bus.",
              c.jobs_injected.load());
  out.Counter("muster_relay_jobs_expired_total",
              "Jobs not injected because their deadline had passed when read.",
              c.jobs_expired.load());
  out.Counter("muster_relay_jobs_interrupted_total",
              "Jobs read after their deadline that the relay was publishing when it was killed "
              "(reported INTERRUPTED: minions may have them).",
              c.jobs_interrupted.load());
  out.Counter("muster_relay_publish_retries_total",
              "Publishes the bus could not make at once and the relay tried again (a Salt "
              "relay's master down or refusing its key).",
              c.publish_retries.load());
  out.Counter("muster_relay_state_errors_total",
              "Failed writes of publish marks to relay_state.db.", c.state_errors.load());
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
  AddRedisFigures(c, out);
  out.Counter("muster_relay_receipts_total",
              "Minion receipts of tracked dispatches (a minion has the job), by status.",
              c.receipts.load() - c.receipts_declined.load(), {{"status", "accepted"}});
  out.Counter("muster_relay_receipts_total",
              "Minion receipts of tracked dispatches (a minion has the job), by status.",
              c.receipts_declined.load(), {{"status", "declined"}});
  out.Counter("muster_relay_receipts_untracked_total",
              "Receipts for a dispatch the relay does not track, or from a minion it is not for.",
              c.receipts_untracked.load());
  out.Counter("muster_relay_receipts_reported_total",
              "Receipts written to Redis for jobd (those whose return had not arrived).",
              c.receipts_reported.load());
  out.Counter("muster_relay_dispatch_resends_total",
              "Dispatches re-sent to one minion that had not acknowledged receipt (JOB messages).",
              c.dispatch_resends.load());
  out.Counter("muster_relay_dispatch_resends_dropped_total",
              "Re-sends the return socket could not take (peer gone or its queue full).",
              c.dispatch_resends_dropped.load());
  out.Counter("muster_relay_dispatches_tracked_total",
              "Published dispatches whose receipts the relay tracks.",
              c.dispatches_tracked.load());
  out.Counter("muster_relay_dispatches_untracked_total",
              "Published dispatches without an expected-minions key in Redis (no re-sends).",
              c.dispatches_untracked.load());
  out.Gauge("muster_relay_minions_awaiting_receipt",
            "Expected minions of live dispatches with neither a receipt nor a return yet.",
            c.minions_awaiting_receipt.load());
  for (int r = 0; r < kMessageRefuseReasons; ++r) {
    out.Counter("muster_relay_bus_messages_refused_total",
                "Heartbeats, receipts and returns dropped because their minion id is not "
                "ACCEPTED and bound to the sender's CURVE key, by reason.",
                c.messages_refused_by_reason[r].load(),
                {{"reason",
                  std::string(MessageRefuseReasonName(static_cast<MessageRefuseReason>(r)))}});
  }
  for (int s = 0; s < kBusSockets; ++s) {
    out.Counter("muster_relay_zap_refused_total",
                "Bus connections the relay's ZAP handler refused (CURVE key not admitted), by "
                "socket.",
                c.zap_refused[s].load(),
                {{"socket", std::string(BusSocketName(static_cast<BusSocket>(s)))}});
  }
  out.Gauge("muster_relay_minion_keys", "Minion key records known to the relay, by state.",
            c.keys_pending.load(), {{"state", "pending"}});
  out.Gauge("muster_relay_minion_keys", "Minion key records known to the relay, by state.",
            c.keys_accepted.load(), {{"state", "accepted"}});
  out.Gauge("muster_relay_minion_keys", "Minion key records known to the relay, by state.",
            c.keys_rejected.load(), {{"state", "rejected"}});
  out.Gauge("muster_relay_secure", "1 when the bus runs CURVE with key checks, 0 with --insecure.",
            c.secure.load() ? 1 : 0);
  out.Counter("muster_relay_heartbeat_intervals_capped_total",
              "Minion heartbeats whose interval_ms was above 10 minutes (treated as 10 minutes).",
              c.heartbeat_intervals_capped.load());
  out.Counter("muster_relay_inventory_full_total",
              "Heartbeats of new minions dropped because the inventory held --max_minions.",
              c.inventory_full.load());
  return metrics::MetricsText(nullptr, out.Take());
}

}  // namespace muster::relay
