#include "server/dispatcher.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/compress/zlib_codec.h"
#include "common/security/dispatch_signature.h"
#include "common/status/status_macros.h"
#include "proto/wire.pb.h"
#include "server/expected_set.h"
#include "server/job_types_proto.h"
#include "spdlog/spdlog.h"

namespace muster::server {
namespace {

// How long a dispatch's expected-minions key outlives its deadline.
constexpr int64_t kExpectedKeyGraceMs = 10 * 60 * 1000;
// Connect and every command within 2 s. A failed dispatch is retried by the
// dispatcher's thread every retry_interval.
constexpr absl::Duration kRedisTimeout = absl::Seconds(2);

// How often an insecure jobd repeats its warning.
constexpr absl::Duration kInsecureWarningInterval = absl::Seconds(60);

void WarnInsecure() {
  spdlog::warn(
      "INSECURE: jobd runs with --insecure: dispatches are NOT signed, and secure relays "
      "and minions refuse them. Development only.");
}

// ExpectedMinions { repeated string minion_ids = 1; } written by hand: the
// ids go from the inventory into the blob without a copy each.
std::string EncodeExpectedMinions(const Inventory& inventory,
                                  const std::vector<uint32_t>& members) {
  std::string out;
  out.reserve(members.size() * 32);
  inventory.VisitIds(members, [&out](absl::string_view id) {
    out.push_back(0x0A);  // field 1, length-delimited
    AppendVarint(id.size(), &out);
    out.append(id.data(), id.size());
  });
  return out;
}

}  // namespace

// The JobEnvelope of each part of `plan` (docs/PROTOCOL.md 2.1), signed
// (PROTOCOL 8.1) unless jobd runs insecure.
absl::StatusOr<std::vector<std::string>> Dispatcher::EncodeEnvelopes(
    const DispatchPlan& plan) const {
  const JobRow& job = plan.job;
  std::vector<std::string> payloads;
  for (const DispatchPlan::Part& part : plan.parts) {
    muster::wire::v1::JobEnvelope envelope;
    envelope.set_jid(job.jid);
    envelope.set_attempt(job.attempt);
    envelope.mutable_target()->set_type(TargetTypeToProto(part.target_type));
    envelope.mutable_target()->set_expression(part.expression);
    envelope.set_function(job.function);
    for (const std::string& arg : job.args) envelope.add_args(arg);
    envelope.set_created_at_ms(job.attempt_at_ms);
    envelope.set_deadline_ms(job.deadline_ms);
    envelope.set_timeout_ms(static_cast<uint32_t>(job.deadline_ms - job.attempt_at_ms));
    envelope.set_datacenter(part.datacenter);
    envelope.set_submitter(job.submitter);
    if (options_.signing_key != nullptr) {
      RETURN_IF_ERROR(security::SignDispatch(*options_.signing_key, envelope));
    }
    payloads.push_back(envelope.SerializeAsString());
  }
  return payloads;
}

Dispatcher::Dispatcher(DispatcherOptions options, JobTracker* tracker, const Inventory* inventory)
    : options_(std::move(options)),
      tracker_(tracker),
      inventory_(inventory),
      link_(RedisLinkOptions::WithoutBackoff("dispatch", options_.redis, kRedisTimeout)),
      describe_link_(
          RedisLinkOptions::WithoutBackoff("expected minions", options_.redis, kRedisTimeout)) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Start() {
  // A jobd that died between a dispatch's XADD and the write of its
  // expected minions writes them again for every running job with its
  // first Redis connection (RedeliverAfterReconnect), as after any other.
  thread_ = std::thread([this] { Run(); });
}

void Dispatcher::Stop() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Dispatcher::Dispatch(const std::string& jid) {
  absl::StatusOr<DispatchPlan> plan = tracker_->PlanDispatch(jid);
  if (!plan.ok()) return plan.status();
  std::vector<std::string> keys;
  for (const DispatchPlan::Part& part : plan->parts) {
    keys.push_back(absl::StrCat(options_.prefix, "jobs:", part.datacenter));
  }
  absl::StatusOr<std::vector<std::string>> payloads = EncodeEnvelopes(*plan);
  if (!payloads.ok()) return payloads.status();
  if (absl::Status written = WriteEnvelopes(keys, *payloads); !written.ok()) {
    return written;
  }
  {
    // Written on the current connection: the pass after a new connection
    // need not write it again (RedeliverAfterReconnect).
    absl::MutexLock lock(&mu_);
    if (link_.connections() != redelivered_connection_) written_on_connection_.insert(jid);
  }
  uint32_t attempt = plan->job.attempt;
  absl::StatusOr<bool> marked = tracker_->MarkDispatched(jid, attempt);
  if (!marked.ok()) return marked.status();
  absl::MutexLock lock(&stop_mu_);
  if (*marked) to_persist_.emplace_back(jid, attempt);
  to_describe_.emplace_back(jid, attempt);
  stop_cv_.Signal();
  return absl::OkStatus();
}

absl::Status Dispatcher::WriteEnvelopes(const std::vector<std::string>& keys,
                                        const std::vector<std::string>& payloads) {
  std::string min_id =
      absl::StrCat(absl::ToUnixMillis(absl::Now() - options_.stream_retention), "-0");
  absl::MutexLock lock(&mu_);
  // A connection idle across a Redis restart fails on first use: the job
  // is written again at once on a fresh connection, not a retry period
  // later (XADD of a job twice is harmless, relays de-duplicate).
  absl::Status written;
  for (int tries = 0; tries < 2; ++tries) {
    uint64_t connections = link_.connections();
    RedisConnection* redis = link_.Get();
    if (redis == nullptr) return link_.failure();
    bool fresh = link_.connections() != connections;
    for (size_t i = 0; i < keys.size(); ++i) {
      redis->Append({"XADD", keys[i], "MINID", "~", min_id, "*", "job", payloads[i]});
    }
    absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
    if (!replies.ok()) {
      written = replies.status();
      link_.Broken(written.message());
      if (fresh) break;
      continue;
    }
    written = absl::OkStatus();
    for (const RedisReply& reply : *replies) {
      if (reply.IsError()) {
        written = absl::UnavailableError(absl::StrCat("XADD: ", reply.str()));
      }
    }
    // READONLY / MASTERDOWN (a demoted primary) drop the connection.
    if (written.ok()) {
      link_.Succeeded();
    } else {
      link_.Refused(written.message());
    }
    break;
  }
  return written;
}

bool Dispatcher::DescribeQueued() {
  std::vector<std::pair<std::string, uint32_t>> queued;
  {
    absl::MutexLock lock(&stop_mu_);
    queued.swap(to_describe_);
  }
  if (queued.empty()) return true;
  size_t done = 0;
  absl::Status status;
  for (; done < queued.size(); ++done) {
    const auto& [jid, attempt] = queued[done];
    absl::StatusOr<DispatchMembers> members = tracker_->MembersOf(jid, attempt);
    if (!members.ok()) continue;  // moved on or finished: no relay needs it
    status = WriteExpectedMinions(jid, attempt, *members);
    if (!status.ok()) break;
  }
  if (done == queued.size()) return true;
  spdlog::warn("writing the expected minions of {} dispatches failed, will retry: {}",
               queued.size() - done, status.ToString());
  absl::MutexLock lock(&stop_mu_);
  to_describe_.insert(to_describe_.begin(), queued.begin() + done, queued.end());
  return false;
}

absl::Status Dispatcher::WriteExpectedMinions(const std::string& jid, uint32_t attempt,
                                              const DispatchMembers& members) {
  RedisConnection* redis = describe_link_.Get();
  if (redis == nullptr) return describe_link_.failure();
  // Each expires a while after the deadline, when no relay tracks the
  // dispatch any more.
  std::string expire_at = absl::StrCat(members.deadline_ms + kExpectedKeyGraceMs);
  for (const auto& [datacenter, numbers] : members.datacenters) {
    redis->Append(
        {"SET", absl::StrCat(options_.prefix, "expected:", datacenter, ":", jid, ":", attempt),
         compress::ZlibCompress(EncodeExpectedMinions(*inventory_, numbers)), "PXAT",
         expire_at});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis->ReadReplies();
  if (!replies.ok()) {
    describe_link_.Broken(replies.status().message());
    return replies.status();
  }
  describe_link_.Succeeded();
  absl::Status status;
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) status = absl::UnavailableError(absl::StrCat("SET: ", reply.str()));
  }
  if (!status.ok()) describe_link_.Refused(status.message());
  return status;
}

bool Dispatcher::PersistQueued() {
  std::vector<std::pair<std::string, uint32_t>> queued;
  {
    absl::MutexLock lock(&stop_mu_);
    queued.swap(to_persist_);
  }
  if (queued.empty()) return true;
  absl::Status status = tracker_->PersistDispatched(queued);
  if (status.ok()) return true;
  spdlog::warn("recording {} jobs as running failed, will retry: {}", queued.size(),
               status.ToString());
  absl::MutexLock lock(&stop_mu_);
  to_persist_.insert(to_persist_.end(), queued.begin(), queued.end());
  return false;
}

void Dispatcher::RedeliverAfterReconnect() {
  uint64_t connections = 0;
  absl::flat_hash_set<std::string> written;
  {
    absl::MutexLock lock(&mu_);
    RedisConnection* redis = link_.Get();
    if (redis == nullptr) return;
    // A Redis that went away while jobd was idle shows here, not at the
    // next submit.
    absl::StatusOr<RedisReply> pong = redis->Command({"PING"});
    if (!pong.ok()) {
      link_.Broken(pong.status().message());
      return;
    }
    if (pong->IsError()) {
      link_.Refused(absl::StrCat("PING: ", pong->str()));
      return;
    }
    connections = link_.connections();
    if (connections == redelivered_connection_) return;
    written = written_on_connection_;
  }
  std::vector<DispatchPlan> plans = tracker_->PlanRedeliveries(absl::ToUnixMillis(absl::Now()));
  // Every envelope in one pipelined round trip.
  std::vector<std::string> keys;
  std::vector<std::string> payloads;
  uint64_t jobs = 0;
  for (const DispatchPlan& plan : plans) {
    if (written.contains(plan.job.jid)) continue;  // written on this very connection
    absl::StatusOr<std::vector<std::string>> encoded = EncodeEnvelopes(plan);
    if (!encoded.ok()) {
      spdlog::error("writing job {} again: {}", plan.job.jid, encoded.status().ToString());
      continue;
    }
    for (size_t i = 0; i < plan.parts.size(); ++i) {
      keys.push_back(absl::StrCat(options_.prefix, "jobs:", plan.parts[i].datacenter));
      payloads.push_back(std::move((*encoded)[i]));
    }
    ++jobs;
  }
  if (!keys.empty()) {
    if (absl::Status status = WriteEnvelopes(keys, payloads); !status.ok()) {
      spdlog::warn("writing undelivered dispatches again failed, will retry: {}",
                   status.ToString());
      return;
    }
  }
  const uint64_t envelopes = keys.size();
  {
    absl::MutexLock lock(&stop_mu_);
    std::vector<std::pair<std::string, uint32_t>> running = tracker_->RunningAttempts();
    to_describe_.insert(to_describe_.end(), running.begin(), running.end());
  }
  if (envelopes > 0) {
    spdlog::info("new Redis connection: wrote {} dispatch(es) of {} running job(s) no relay has "
                 "reported yet again (docs/PROTOCOL.md 2.4)",
                 envelopes, jobs);
  }
  redelivered_.fetch_add(envelopes);
  absl::MutexLock lock(&mu_);
  redelivered_connection_ = connections;
  written_on_connection_.clear();
}

void Dispatcher::Run() {
  absl::Time next_retry = absl::InfinitePast();
  absl::Time next_insecure_warning = absl::Now() + kInsecureWarningInterval;
  while (true) {
    if (options_.signing_key == nullptr && absl::Now() >= next_insecure_warning) {
      WarnInsecure();
      next_insecure_warning = absl::Now() + kInsecureWarningInterval;
    }
    if (absl::Now() >= next_retry) {
      for (const std::string& jid : tracker_->PendingJids()) {
        absl::Status status = Dispatch(jid);
        if (!status.ok() && !absl::IsFailedPrecondition(status)) {
          spdlog::warn("dispatch of {} failed, will retry: {}", jid, status.ToString());
          // Redis is down: the other jobs would fail the same way.
          if (absl::IsUnavailable(status)) break;
        }
      }
      RedeliverAfterReconnect();
      next_retry = absl::Now() + options_.retry_interval;
    }
    bool persisted = PersistQueued();
    bool described = DescribeQueued();
    bool stopping;
    {
      absl::MutexLock lock(&stop_mu_);
      // After a failed write, the queues wait for the next retry time.
      while (!stopping_ && ((to_persist_.empty() && to_describe_.empty()) || !persisted ||
                            !described) &&
             !stop_cv_.WaitWithDeadline(&stop_mu_, next_retry)) {
      }
      stopping = stopping_;
    }
    if (stopping) {
      PersistQueued();  // a clean stop leaves no running job recorded PENDING
      return;
    }
  }
}

}  // namespace muster::server
