#include "server/job_service_messages.h"

#include "server/job_types_proto.h"

namespace muster::server {
namespace {

void FillCompleteness(const Counters& c, muster::v1::Completeness* out) {
  out->set_expected(c.expected);
  out->set_returned(c.returned);
  out->set_succeeded(c.succeeded);
  out->set_failed(c.failed);
  out->set_missing(c.missing());
  out->set_unexpected(c.unexpected);
  out->set_received(c.received);
}

void FillDatacenter(const DatacenterSnapshot& dc, muster::v1::DatacenterStatus* status) {
  status->set_datacenter(dc.datacenter);
  FillCompleteness(dc.counters, status->mutable_completeness());
  status->set_delivered(dc.delivery.delivered);
  status->set_delivered_at_ms(dc.delivery.delivered ? dc.delivery.at_ms : 0);
  status->set_relay_id(dc.delivery.delivered ? dc.delivery.relay_id : "");
  status->set_expired_at_relay(dc.delivery.expired);
  status->set_interrupted_at_relay(dc.delivery.interrupted);
  status->set_delivery_attempt(dc.delivery_attempt);
  status->set_unreachable(dc.delivery.unreachable);
  for (const AttemptDelivery& attempt : dc.attempts) {
    muster::v1::AttemptDelivery* out_attempt = status->add_attempts();
    out_attempt->set_attempt(attempt.attempt);
    out_attempt->set_asked(attempt.asked);
    const DeliveryInfo& d = attempt.delivery;
    using Status = muster::v1::AttemptDelivery;
    out_attempt->set_status(attempt.asked == 0 ? Status::NOT_SENT
                            : d.delivered      ? Status::DELIVERED
                            : d.expired        ? Status::EXPIRED
                            : d.interrupted    ? Status::INTERRUPTED
                                               : Status::SENT);
    if (d.delivered || d.expired || d.interrupted) {
      out_attempt->set_at_ms(d.at_ms);
      out_attempt->set_relay_id(d.relay_id);
      out_attempt->set_messages(d.messages);
      out_attempt->set_unreachable(d.unreachable);
      for (const std::string& id : d.unreachable_ids) out_attempt->add_unreachable_ids(id);
    }
  }
}

muster::v1::SaltMaster::Condition SaltConditionToProto(SaltMasterCondition condition) {
  switch (condition) {
    case SaltMasterCondition::kUp: return muster::v1::SaltMaster::UP;
    case SaltMasterCondition::kDown: return muster::v1::SaltMaster::DOWN;
    case SaltMasterCondition::kKeyRefused: return muster::v1::SaltMaster::KEY_REFUSED;
    case SaltMasterCondition::kUnknown: break;
  }
  return muster::v1::SaltMaster::CONDITION_UNSPECIFIED;
}

void FillSaltMaster(const SaltMasterHealth& health, muster::v1::SaltMaster* out) {
  out->set_condition(SaltConditionToProto(health.condition));
  out->set_detail(health.detail);
  out->set_since_ms(health.since_ms);
  out->set_keys_accepted(health.keys_accepted);
  out->set_keys_pending(health.keys_pending);
  out->set_keys_rejected(health.keys_rejected);
  out->set_returns_caught_up(health.returns_caught_up);
}

void FillRelayRedis(const RelayRedisHealth& health, muster::v1::RelayRedis* out) {
  out->set_write_node(health.write_node);
  out->set_read_node(health.read_node);
  out->set_read_from_replica(health.read_from_replica);
  out->set_replica(health.replica);
  out->set_failovers_followed(health.failovers_followed);
  out->set_read_node_changes(health.read_node_changes);
  out->set_unconfirmed_entries(health.unconfirmed_entries);
  out->set_unconfirmed_bytes(health.unconfirmed_bytes);
  out->set_unconfirmed_deliveries(health.unconfirmed_deliveries);
  out->set_entries_rewritten(health.entries_rewritten);
  out->set_deliveries_rewritten(health.deliveries_rewritten);
  out->set_job_cursor_rewinds(health.job_cursor_rewinds);
}

}  // namespace

void FillJob(const JobSnapshot& job, muster::v1::Job* out) {
  const JobRow& row = job.row;
  out->set_jid(row.jid);
  out->mutable_target()->set_type(TargetTypeToProto(static_cast<TargetType>(row.target_type)));
  out->mutable_target()->set_expression(row.expression);
  out->set_function(row.function);
  for (const std::string& arg : row.args) out->add_args(arg);
  out->set_timeout_ms(row.timeout_ms);
  out->set_submitter(row.submitter);
  out->set_created_at_ms(row.created_at_ms);
  out->set_ended_at_ms(row.ended_at_ms);
  out->set_state(JobStateToProto(row.state));
  out->set_attempt(row.attempt);
  out->set_deadline_ms(row.deadline_ms);
  FillCompleteness(job.total, out->mutable_completeness());
  for (const DatacenterSnapshot& dc : job.datacenters) FillDatacenter(dc, out->add_datacenters());
  for (const AttemptSummary& attempt : job.attempts) {
    muster::v1::Attempt* out_attempt = out->add_attempts();
    out_attempt->set_attempt(attempt.attempt);
    out_attempt->set_started_at_ms(attempt.started_at_ms);
    out_attempt->set_deadline_ms(attempt.deadline_ms);
    out_attempt->set_ended_at_ms(attempt.ended_at_ms);
    out_attempt->set_state(JobStateToProto(attempt.state));
    out_attempt->set_asked(attempt.asked);
  }
}

void FillReturn(const ReturnRow& row, muster::v1::Return* out) {
  out->set_minion_id(row.minion_id);
  out->set_datacenter(row.datacenter);
  out->set_attempt(row.attempt);
  out->set_success(row.success);
  out->set_retcode(row.retcode);
  out->set_stdout(row.stdout_text);
  out->set_stderr(row.stderr_text);
  out->set_truncated(row.truncated);
  out->set_started_at_ms(row.started_at_ms);
  out->set_ended_at_ms(row.ended_at_ms);
  out->set_received_at_ms(row.received_at_ms);
  out->set_expected(row.expected);
}

void FillRelay(const RelayView& relay, muster::v1::Relay* out) {
  const RelayHealth& health = relay.health;
  out->set_relay_id(relay.relay_id);
  out->set_datacenter(relay.datacenter);
  out->set_last_heartbeat_ms(relay.last_heartbeat_ms);
  out->set_alive(relay.alive);
  out->set_minions_connected(health.minions_connected);
  out->set_jobs_injected(health.jobs_injected);
  out->set_returns_forwarded(health.returns_forwarded);
  out->set_spool_depth(health.spool_depth);
  out->set_malformed_dropped(health.malformed_frames + health.malformed_entries);
  out->set_started_at_ms(health.started_at_ms);
  out->set_version(health.version);
  out->mutable_dispatches_refused()->insert(health.dispatches_refused.begin(),
                                            health.dispatches_refused.end());
  out->mutable_minion_dispatches_refused()->insert(health.minion_dispatches_refused.begin(),
                                                   health.minion_dispatches_refused.end());
  out->mutable_messages_refused()->insert(health.messages_refused.begin(),
                                          health.messages_refused.end());
  out->set_keys_pending(health.keys_pending);
  out->set_secure(health.secure);
  out->set_bus_kind(health.bus_kind);
  if (health.salt_master) FillSaltMaster(*health.salt_master, out->mutable_salt_master());
  if (health.redis) FillRelayRedis(*health.redis, out->mutable_redis());
}

void FillRedisTopology(const RedisTopologySnapshot& topology, muster::v1::RedisTopology* out) {
  out->set_primary(topology.primary);
  out->set_master_name(topology.master_name);
  out->set_failovers_followed(topology.failovers_followed);
  for (const RedisReplicaState& replica : topology.replicas) {
    muster::v1::RedisReplica* r = out->add_replicas();
    r->set_address(replica.address);
    r->set_lag_bytes(replica.lag_bytes);
    r->set_state(replica.state);
  }
  out->set_error(topology.error);
  out->set_checked_at_ms(topology.checked_at_ms);
}

void FillCounts(const std::vector<DatacenterCount>& counts,
                google::protobuf::RepeatedPtrField<muster::v1::DatacenterCount>* out) {
  for (const DatacenterCount& dc : counts) {
    muster::v1::DatacenterCount* count = out->Add();
    count->set_datacenter(dc.datacenter);
    count->set_expected(dc.count);
  }
}

void FillMinionKey(const MinionKeyEntry& key, muster::v1::MinionKey* out) {
  out->set_datacenter(key.datacenter);
  out->set_minion_id(key.minion_id);
  out->set_state(static_cast<muster::v1::MinionKey::State>(key.state));
  out->set_public_key(key.public_key);
  out->set_fingerprint(key.fingerprint);
  out->set_first_seen_ms(key.first_seen_ms);
  out->set_decided_at_ms(key.decided_at_ms);
  out->set_decided_by(key.decided_by);
  out->set_conflicting_key(key.conflicting_key);
  out->set_conflict_at_ms(key.conflict_at_ms);
}

void FillAuditEntry(const auth::AuditRecord& row, muster::v1::AuditEntry* out) {
  out->set_seq(row.seq);
  out->set_at_ms(row.at_ms);
  out->set_principal(row.principal);
  out->set_peer(row.peer);
  out->set_rpc(row.rpc);
  out->set_jid(row.jid);
  out->set_function(row.function);
  out->set_target(row.target);
  out->set_expected(row.expected);
  out->set_decision(static_cast<muster::v1::AuditEntry::Decision>(row.decision));
  out->set_reason(row.reason);
  out->set_rule(row.rule);
}

}  // namespace muster::server
