#include "server/jobd_metrics.h"

#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "common/metrics/metric_families.h"
#include "proto/job_service.pb.h"
#include "server/auth/access_control.h"
#include "server/commit_marks.h"
#include "server/dispatcher.h"
#include "server/event_ingester.h"
#include "server/inventory.h"
#include "server/job_store.h"
#include "server/job_tracker.h"
#include "server/redis_topology.h"
#include "server/return_ingester.h"
#include "server/stream_backlog.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

// Seconds; the SPEC's target is p50 <= 20 ms, relays catching up after an
// outage take up to the job timeout.
const prometheus::Histogram::BucketBoundaries kSubmitStageBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1};

const prometheus::Histogram::BucketBoundaries kDispatchLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

void AddJobFigures(const JobActivity& activity, metrics::MetricFamilies& out) {
  out.Counter("muster_jobd_jobs_submitted_total", "Jobs recorded by SubmitJob since start.",
              activity.submitted);
  out.Counter("muster_jobd_job_retries_total",
              "New attempts started by RetryMissing since start.", activity.retried);
  for (int state = muster::v1::PENDING; state <= muster::v1::CANCELLED; ++state) {
    out.Gauge("muster_jobd_jobs", "Jobs in the store, by state.", activity.by_state[state],
              {{"state", absl::AsciiStrToLower(muster::v1::JobState_Name(state))}});
  }
}

void AddIngestionFigures(const ReturnIngesterStats& r, const EventIngesterStats& e,
                         metrics::MetricFamilies& out) {
  const char* entries_help = "Stream entries jobd committed (malformed ones included).";
  out.Counter("muster_jobd_stream_entries_total", entries_help, r.entries,
              {{"stream", "returns"}});
  out.Counter("muster_jobd_stream_entries_total", entries_help, e.entries,
              {{"stream", "events"}});
  out.Counter("muster_jobd_returns_ingested_total",
              "Returns committed for the first time (expected or not).", r.returns);
  out.Counter("muster_jobd_returns_duplicate_total",
              "Returns already stored (a resend or a re-read entry): nothing changed.",
              r.duplicates);
  out.Counter("muster_jobd_returns_unexpected_total",
              "Returns from minions outside the job's expected set that its target matches in "
              "the relay's datacenter (kept and counted).",
              r.unexpected);
  out.Counter("muster_jobd_returns_unknown_job_total",
              "Returns for a jid jobd does not know (dropped).", r.unknown_job);
  // docs/PROTOCOL.md 2.2: jobd stores only answers to what it sent.
  const char* returns_dropped_help =
      "Returns dropped, never stored, by reason: unknown_job, never_dispatched (no such "
      "attempt, or not sent to that datacenter), wrong_datacenter (through another "
      "datacenter's relay than the minion's), not_targeted (outside the expected set and "
      "not a minion of that datacenter the target matches).";
  for (const auto& [reason, value] :
       {std::pair<const char*, uint64_t>{"unknown_job", r.unknown_job},
        {"never_dispatched", r.never_dispatched},
        {"wrong_datacenter", r.wrong_datacenter},
        {"not_targeted", r.not_targeted}}) {
    out.Counter("muster_jobd_returns_dropped_total", returns_dropped_help, value,
                {{"reason", reason}});
  }
  out.Counter("muster_jobd_receipts_total",
              "Minion receipts recorded (the first per expected minion and job).", r.receipts);
  out.Counter("muster_jobd_receipts_duplicate_total",
              "Receipts already recorded: nothing changed.", r.receipts_duplicate);
  const char* receipts_dropped_help =
      "Receipts not counted, by reason: unknown_job, not_expected (a minion outside the "
      "expected set), never_dispatched, wrong_datacenter.";
  for (const auto& [reason, value] :
       {std::pair<const char*, uint64_t>{"unknown_job", r.receipts_unknown_job},
        {"not_expected", r.receipts_unexpected},
        {"never_dispatched", r.receipts_never_dispatched},
        {"wrong_datacenter", r.receipts_wrong_datacenter}}) {
    out.Counter("muster_jobd_receipts_dropped_total", receipts_dropped_help, value,
                {{"reason", reason}});
  }
  out.Counter("muster_jobd_receipts_declined_total",
              "Receipts of minions that declined a dispatch (it reached them after its "
              "deadline, or no longer matched them): not counted as received.",
              r.receipts_declined);
  const char* malformed_help =
      "Malformed stream input acknowledged and dropped, by stream and reason.";
  out.Counter("muster_jobd_malformed_dropped_total", malformed_help, r.malformed_entries,
              {{"stream", "returns"}, {"reason", "bad_entry"}});
  out.Counter("muster_jobd_malformed_dropped_total", malformed_help, r.malformed_returns,
              {{"stream", "returns"}, {"reason", "bad_return"}});
  out.Counter("muster_jobd_malformed_dropped_total", malformed_help, e.malformed_entries,
              {{"stream", "events"}, {"reason", "bad_entry"}});
  out.Counter("muster_jobd_malformed_dropped_total", malformed_help, e.malformed_minions,
              {{"stream", "events"}, {"reason", "bad_minion_id"}});
  const char* events_help =
      "Relay events applied (repeated delivery reports included), by kind.";
  out.Counter("muster_jobd_relay_events_total", events_help, e.deliveries,
              {{"kind", "delivery"}});
  out.Counter("muster_jobd_relay_events_total", events_help, e.heartbeats,
              {{"kind", "heartbeat"}});
  out.Counter("muster_jobd_relay_events_total", events_help, e.inventory_updates,
              {{"kind", "inventory"}});
  out.Counter("muster_jobd_deliveries_unknown_job_total",
              "Delivery reports for a jid jobd does not know (dropped).", e.unknown_job);
}

void AddStoreFigures(const JobStoreStats& store, const ReturnIngesterStats& returns,
                     metrics::MetricFamilies& out) {
  out.Counter("muster_jobd_sqlite_commits_total", "Write transactions committed in jobd's store.",
              store.commits);
  out.Counter("muster_jobd_returns_transactions_total",
              "Transactions that committed returns; more than the stream reads when ingestion "
              "gave the writer to a waiting SubmitJob or other control-plane write.",
              returns.transactions);
  out.Counter("muster_jobd_sqlite_checkpoints_total",
              "PASSIVE WAL checkpoints run by the store's checkpointer thread.", store.checkpoints);
  out.Counter("muster_jobd_sqlite_wal_restarts_total",
              "Long, fully copied WALs restarted from the start.", store.wal_restarts);
  out.Gauge("muster_jobd_sqlite_wal_frames",
            "Frames (4 KiB pages) in the store's WAL at the last checkpoint.", store.wal_frames);
}

void AddAccessFigures(const auth::AccessCounters& c, metrics::MetricFamilies& out) {
  constexpr char kDeniedHelp[] =
      "Control-plane calls refused, by reason: policy (PERMISSION_DENIED), rate (SubmitJob/"
      "RetryMissing past --submit_rate), watch_streams (WatchJob past its limits), "
      "unauthenticated (no valid token or certificate).";
  out.Counter("muster_jobd_api_denied_total", kDeniedHelp, c.denied_policy,
              {{"reason", "policy"}});
  out.Counter("muster_jobd_api_denied_total", kDeniedHelp, c.denied_rate, {{"reason", "rate"}});
  out.Counter("muster_jobd_api_denied_total", kDeniedHelp, c.denied_watch_streams,
              {{"reason", "watch_streams"}});
  out.Counter("muster_jobd_api_denied_total", kDeniedHelp, c.unauthenticated,
              {{"reason", "unauthenticated"}});
  out.Counter("muster_jobd_audit_suppressed_total",
              "UNAUTHENTICATED audit rows not written (at most one per client host per second).",
              c.audit_suppressed);
}

// A Salt relay's salt-master, as its last heartbeat said (only relays
// that report one have these series).
void AddSaltMasterFigures(const RelayView& relay, const SaltMasterHealth& master,
                          metrics::MetricFamilies& out) {
  out.Gauge("muster_jobd_relay_salt_master_up",
            "1 when the Salt relay's salt-master answers and its event bus is connected; 0 "
            "when it is down, refuses the relay's key, or the relay did not say.",
            master.condition == SaltMasterCondition::kUp ? 1 : 0,
            {{"relay", relay.relay_id}, {"datacenter", relay.datacenter}});
  constexpr char kKeysHelp[] =
      "The salt-master's minion keys as the Salt relay last read them, by state (only "
      "accepted keys are minions of the datacenter).";
  for (const auto& [state, count] : {std::pair<const char*, uint64_t>{"accepted",
                                                                       master.keys_accepted},
                                     {"pending", master.keys_pending},
                                     {"rejected", master.keys_rejected}}) {
    out.Gauge("muster_jobd_relay_salt_master_keys", kKeysHelp, count,
              {{"relay", relay.relay_id}, {"datacenter", relay.datacenter}, {"state", state}});
  }
  out.Counter("muster_jobd_relay_salt_returns_caught_up_total",
              "Returns the Salt relay took from the salt-master's job cache after a gap in its "
              "event bus, since the relay started.",
              master.returns_caught_up,
              {{"relay", relay.relay_id}, {"datacenter", relay.datacenter}});
}

// The Redis primary and replicas as jobd's topology link last saw them.
void AddRedisTopologyFigures(const RedisTopologySnapshot& topology,
                             metrics::MetricFamilies& out) {
  out.Counter("muster_jobd_redis_failovers_followed_total",
              "New Redis primaries jobd's topology link followed since start (a Sentinel "
              "failover, or a fixed address that moved).",
              topology.failovers_followed);
  out.Gauge("muster_jobd_redis_replicas_connected",
            "Replicas the Redis primary lists as online (ROLE) at the last check (every 2 s); "
            "0 when the primary could not be asked.",
            topology.replicas.size());
  for (const RedisReplicaState& replica : topology.replicas) {
    out.Gauge("muster_jobd_redis_replica_lag_bytes",
              "Bytes of the primary's replication stream the replica has not acknowledged, by "
              "replica (ip:port).",
              replica.lag_bytes, {{"replica", replica.address}});
  }
}

void AddFleetFigures(const Inventory& inventory, int64_t now_ms, metrics::MetricFamilies& out) {
  out.Gauge("muster_jobd_inventory_minions", "Minions in jobd's inventory.", inventory.size());
  for (const RelayView& relay : inventory.Relays(now_ms)) {
    out.Gauge("muster_jobd_relay_last_heartbeat_age_seconds",
              "Seconds since the relay's last heartbeat reached jobd (jobd's clock minus the "
              "relay's).",
              std::max<int64_t>(0, now_ms - relay.last_heartbeat_ms) / 1000.0,
              {{"relay", relay.relay_id}, {"datacenter", relay.datacenter}});
    // What the relay's security checks refused, as its last heartbeat
    // said (reason words were checked where the heartbeat entered jobd).
    out.Gauge("muster_jobd_relay_secure",
              "1 when the relay's last heartbeat said it runs secure (0: --insecure, or a "
              "relay too old to say).",
              relay.health.secure ? 1 : 0,
              {{"relay", relay.relay_id}, {"datacenter", relay.datacenter}});
    out.Gauge("muster_jobd_relay_keys_pending", "Minion keys waiting for jobctl keys accept.",
              relay.health.keys_pending,
              {{"relay", relay.relay_id}, {"datacenter", relay.datacenter}});
    if (relay.health.salt_master) AddSaltMasterFigures(relay, *relay.health.salt_master, out);
    for (const auto& [what, counts] :
         {std::pair<const char*, const std::map<std::string, uint64_t>*>{
              "dispatch", &relay.health.dispatches_refused},
          {"minion_dispatch", &relay.health.minion_dispatches_refused},
          {"message", &relay.health.messages_refused}}) {
      for (const auto& [reason, count] : *counts) {
        out.Counter("muster_jobd_relay_refused_total",
                    "What a relay refused since it started, as its heartbeat reports: "
                    "dispatches it did not publish, dispatches its minions did not run, bus "
                    "messages from ids not bound to the sender's key; by reason.",
                    count,
                    {{"relay", relay.relay_id},
                     {"datacenter", relay.datacenter},
                     {"what", what},
                     {"reason", reason}});
      }
    }
  }
}

}  // namespace

JobdMetrics::JobdMetrics(JobdMetricsSources sources)
    : sources_(std::move(sources)),
      registry_(std::make_shared<prometheus::Registry>()),
      // Each scrape that finds Redis down tries to connect once; a scrape
      // waits at most one second per round trip.
      redis_(RedisLinkOptions::WithoutBackoff("metrics", sources_.redis, absl::Seconds(1))) {
  dispatch_latency_ =
      &prometheus::BuildHistogram()
           .Name("muster_jobd_dispatch_latency_seconds")
           .Help("From SubmitJob (or RetryMissing) to the relay's report that the job is on "
                 "its datacenter's bus, per datacenter (first report of each attempt).")
           .Register(*registry_);
  submit_stages_ =
      &prometheus::BuildHistogram()
           .Name("muster_jobd_submit_stage_seconds")
           .Help("Where a recorded SubmitJob's time goes inside jobd, by stage: match (freezing "
                 "the expected set), scope (the policy's check of the matched minions), record "
                 "(the store's writer, the job's rows, COMMIT), dispatch (signing, XADD to the "
                 "job streams), total (from identifying the caller to the audit row).")
           .Register(*registry_);
}

void JobdMetrics::ObserveSubmit(const SubmitStages& stages, absl::Duration total) {
  const std::pair<const char*, absl::Duration> observed[] = {
      {"match", stages.match},       {"scope", stages.scope}, {"record", stages.record},
      {"dispatch", stages.dispatch}, {"total", total}};
  for (const auto& [stage, duration] : observed) {
    submit_stages_->Add({{"stage", stage}}, kSubmitStageBuckets)
        .Observe(absl::ToDoubleSeconds(duration));
  }
}

JobdMetrics::~JobdMetrics() = default;

void JobdMetrics::ObserveDispatchLatency(const std::string& datacenter, int64_t latency_ms) {
  dispatch_latency_->Add({{"datacenter", datacenter}}, kDispatchLatencyBuckets)
      .Observe(static_cast<double>(latency_ms) / 1000.0);
}

std::string JobdMetrics::Text() {
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  metrics::MetricFamilies out;
  AddJobFigures(sources_.tracker->Activity(), out);
  AddIngestionFigures(sources_.returns->stats(), sources_.events->stats(), out);
  AddFleetFigures(*sources_.inventory, now_ms, out);
  AddStoreFigures(sources_.store->stats(), sources_.returns->stats(), out);
  if (sources_.access != nullptr) AddAccessFigures(sources_.access->counters(), out);
  if (sources_.redis_topology != nullptr) {
    AddRedisTopologyFigures(sources_.redis_topology->Snapshot(), out);
  }
  if (sources_.dispatcher != nullptr) {
    out.Counter("muster_jobd_dispatches_rewritten_total",
                "Undelivered running dispatches jobd wrote to the job streams again after a new "
                "Redis connection (docs/PROTOCOL.md 2.4).",
                sources_.dispatcher->redelivered());
  }
  if (sources_.commit_marks != nullptr) {
    out.Counter("muster_jobd_commit_marks_written_total",
                "Commit marks jobd wrote for relays (what they may stop holding).",
                sources_.commit_marks->stats().marks_written);
  }

  absl::MutexLock lock(&redis_mu_);
  RedisConnection* redis = redis_.Get();
  bool redis_up = redis != nullptr;
  for (const std::string* stream : {&sources_.returns_stream, &sources_.events_stream}) {
    if (!redis_up) break;
    absl::StatusOr<StreamBacklog> backlog = ReadStreamBacklog(*redis, *stream, sources_.group);
    if (!backlog.ok()) {
      spdlog::debug("metrics: backlog of {}: {}", *stream, backlog.status().ToString());
      redis_up = !redis->broken();
      if (!redis_up) redis_.Broken(backlog.status().message());
      continue;
    }
    std::string name = stream == &sources_.returns_stream ? "returns" : "events";
    out.Gauge("muster_jobd_stream_pending_entries",
              "Entries jobd has read but not yet acknowledged (committed), by stream.",
              backlog->pending, {{"stream", name}});
    int64_t oldest_ms = backlog->oldest_unacknowledged
                            ? static_cast<int64_t>(backlog->oldest_unacknowledged->ms)
                            : now_ms;
    out.Gauge("muster_jobd_ingestion_lag_seconds",
              "Age of the oldest stream entry not yet committed and acknowledged by jobd "
              "(0 when caught up), by stream.",
              std::max<int64_t>(0, now_ms - oldest_ms) / 1000.0, {{"stream", name}});
  }
  if (redis_up) redis_.Succeeded();
  out.Gauge("muster_jobd_redis_up", "1 when this scrape could read the streams' backlog.",
            redis_up ? 1 : 0);
  return metrics::MetricsText(registry_.get(), out.Take());
}

}  // namespace muster::server
