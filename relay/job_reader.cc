#include "relay/job_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
#include "common/bus/bus_security.h"
#include "common/compress/zlib_codec.h"
#include "common/ids/ids.h"
#include "common/status/status_macros.h"
#include "common/target/target.h"
#include "relay/zap_handler.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr absl::string_view kJobField = "job";
constexpr absl::string_view kEventField = "event";
constexpr int kReadBlockMs = 1000;
constexpr int kAwaitBlockMs = 50;
// Largest ExpectedMinions accepted (inflated): ~2M ids.
constexpr size_t kMaxExpectedBytes = 64 << 20;
// How long a published dispatch waits for its expected-minions key.
constexpr int64_t kExpectedWaitMs = 60 * 1000;
constexpr int kOutboxBatch = 100;
// jobd's commit mark of delivery events is read this often while the
// outbox holds events (docs/PROTOCOL.md 2.4).
constexpr int64_t kMarkPollMs = 200;
constexpr int64_t kGapRewriteMs = 3000;
// How often the cursor is checked against the job stream's newest id.
constexpr int64_t kCursorCheckMs = 5000;

constexpr int64_t kPruneIntervalMs = 60 * 1000;
// Large enough that a list target of 100,000 ids is never cut by the
// high-water mark; PUB drops (never blocks) past it.
constexpr int kPublishHighWaterMark = 1000000;
// How often the trusted key file's mtime is checked, and --insecure warned.
constexpr int64_t kTrustCheckIntervalMs = 2000;
constexpr int64_t kInsecureWarningIntervalMs = 60 * 1000;
// Refusals remembered so that each is logged once.
constexpr size_t kMaxLoggedRefusals = 100000;

// The minion ids of an ExpectedMinions key's value (one zlib stream).
absl::StatusOr<std::vector<std::string>> DecodeExpected(absl::string_view value) {
  absl::StatusOr<std::string> inflated = compress::ZlibDecompress(value, kMaxExpectedBytes);
  if (!inflated.ok()) return inflated.status();
  wire::v1::ExpectedMinions expected;
  if (!expected.ParseFromString(*inflated)) {
    return absl::InvalidArgumentError("not ExpectedMinions");
  }
  return std::vector<std::string>(expected.minion_ids().begin(), expected.minion_ids().end());
}

absl::StatusOr<wire::v1::JobEnvelope> DecodeJob(const StreamEntry& entry) {
  const std::string* value = entry.Field(kJobField);
  if (value == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("entry ", entry.id, ": no field 'job'"));
  }
  wire::v1::JobEnvelope job;
  if (!job.ParseFromString(*value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry ", entry.id, ": field 'job' is not a JobEnvelope"));
  }
  if (job.jid().empty() || job.attempt() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("entry ", entry.id, ": jid '", job.jid(),
                                                   "' attempt ", job.attempt(),
                                                   ": both are required"));
  }
  return job;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobReader>> JobReader::Create(const RelayOptions& options,
                                                             JobBus* bus,
                                                             RelayCounters* counters,
                                                             DispatchHandoff* handoff) {
  ASSIGN_OR_RETURN(std::unique_ptr<RelayState> state, RelayState::Open(options.StatePath()));
  return std::unique_ptr<JobReader>(
      new JobReader(options, bus, std::move(state), counters, handoff));
}

JobReader::JobReader(const RelayOptions& options, JobBus* bus, std::unique_ptr<RelayState> state,
                     RelayCounters* counters, DispatchHandoff* handoff)
    : options_(options),
      bus_(bus),
      state_(std::move(state)),
      counters_(counters),
      handoff_(handoff),
      read_redis_(options.RedisReadLinkNamed("jobs", &counters->redis_reconnects)),
      redis_(options.RedisLinkNamed("events", &counters->redis_reconnects)),
      jobs_key_(options.JobsKey()),
      events_key_(options.EventsKey()),
      mark_key_(CommitMarkKey(options.redis_prefix, options.datacenter)),
      mark_field_(CommitMarkField(kDeliveriesMarkStream, options.relay_id)) {
  if (!options.insecure) {
    verifier_ = std::make_unique<security::DispatchVerifier>(options.trusted_keys.get(),
                                                             options.datacenter);
  }
}

void JobReader::Run(const absl::Notification& stop) {
  spdlog::info("jobs: reading {} from cursor {}", jobs_key_, state_->cursor());
  // Dispatches published before a restart keep being re-sent to the
  // minions that never acknowledged them (their receipts start afresh).
  absl::StatusOr<std::vector<HandledDispatch>> published = state_->PublishedSince(NowMs());
  if (published.ok()) {
    if (!published->empty()) {
      spdlog::info("jobs: {} dispatch(es) published before the restart are still live",
                   published->size());
    }
    for (HandledDispatch& dispatch : *published) {
      // A LIST dispatch is re-sent as per-minion envelopes with proofs:
      // rebuild its tree from the envelope kept in the state file.
      std::shared_ptr<const ListDispatch> list;
      wire::v1::JobEnvelope job;
      if (job.ParseFromString(dispatch.envelope) && job.target().type() == muster::v1::LIST) {
        absl::StatusOr<std::shared_ptr<const ListDispatch>> made = ListDispatch::Create(job);
        if (made.ok()) list = std::move(*made);
      }
      awaiting_expected_.push_back({std::move(dispatch), NowMs(), std::move(list)});
    }
  } else {
    spdlog::error("jobs: reading published dispatches: {}",
                  std::string(published.status().message()));
  }
  if (stop.WaitForNotificationWithTimeout(absl::Milliseconds(options_.inject_delay_ms))) return;
  int64_t next_prune_ms = 0;
  while (!stop.HasBeenNotified()) {
    MaintainTrust(NowMs());
    bus_->Tick();
    FlushOutboxToPrimary();
    RedisConnection* redis = read_redis_.Get();
    counters_->read_link.Publish(read_redis_.node(), read_redis_.node_changes());
    if (redis == nullptr) {
      stop.WaitForNotificationWithTimeout(
          std::max(read_redis_.next_attempt() - absl::Now(), absl::Milliseconds(10)));
      continue;
    }
    absl::Status fetched = FetchExpected(*redis);
    if (fetched.ok()) fetched = CheckCursor(*redis, NowMs());
    if (!fetched.ok()) {
      read_redis_.Broken(fetched.message());
      continue;
    }
    std::string count = absl::StrCat(options_.job_read_count);
    // Shorter while a dispatch waits for its expected minions (jobd writes
    // them just after the dispatch), so its tracking starts soon.
    std::string block = absl::StrCat(awaiting_expected_.empty() ? kReadBlockMs : kAwaitBlockMs);
    absl::StatusOr<RedisReply> reply = redis->Command(
        {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", jobs_key_, state_->cursor()});
    if (!reply.ok()) {
      counters_->redis_errors.fetch_add(1);
      read_redis_.Broken(reply.status().message());
      continue;
    }
    absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamRead(*reply);
    if (!entries.ok()) {
      // An error reply (LOADING after a restart, or the key is not a
      // stream): back off and ask again, logged once per outage.
      counters_->redis_errors.fetch_add(1);
      read_redis_.Refused(absl::StrCat("XREAD ", jobs_key_, ": ", entries.status().message()));
      continue;
    }
    read_redis_.Succeeded();
    for (const StreamEntry& entry : *entries) {
      if (stop.HasBeenNotified()) break;
      HandleEntry(entry, stop);
    }
    if (!entries->empty()) {
      FlushOutboxToPrimary();
      fetched = FetchExpected(*redis);
      if (!fetched.ok()) read_redis_.Broken(fetched.message());
    }
    int64_t now_ms = NowMs();
    if (now_ms >= next_prune_ms) {
      absl::StatusOr<int64_t> pruned = state_->PruneDispatches(now_ms);
      if (!pruned.ok()) {
        spdlog::error("jobs: pruning dispatches: {}", std::string(pruned.status().message()));
      }
      next_prune_ms = now_ms + kPruneIntervalMs;
    }
  }
  spdlog::info("jobs: stopped at cursor {}", state_->cursor());
}

void JobReader::MaintainTrust(int64_t now_ms) {
  if (verifier_ == nullptr) {
    if (now_ms >= next_insecure_warning_ms_) {
      spdlog::warn("jobs: INSECURE: dispatches are published without signature checks "
                   "(--insecure; development only)");
      next_insecure_warning_ms_ = now_ms + kInsecureWarningIntervalMs;
    }
    return;
  }
  if (trust_check_requested_.exchange(false)) {
    spdlog::info("jobs: checking the trusted keys file (SIGHUP)");
    next_trust_check_ms_ = 0;
  }
  if (now_ms < next_trust_check_ms_) return;
  next_trust_check_ms_ = now_ms + kTrustCheckIntervalMs;
  absl::StatusOr<bool> changed = options_.trusted_keys->ReloadIfChanged();
  if (!changed.ok()) {
    // The previous keys stay in force. The file is read again at every
    // check until it parses; the error is logged once, not every 2 s.
    std::string error(changed.status().message());
    if (error != last_trust_error_) {
      spdlog::error("jobs: re-reading the trusted keys failed, keeping the previous ones ({}): {}",
                    absl::StrJoin(options_.trusted_keys->KeyIds(), ", "), error);
      last_trust_error_ = std::move(error);
    }
    return;
  }
  last_trust_error_.clear();
  if (*changed) {
    spdlog::info("jobs: trusted keys reloaded: now {}",
                 absl::StrJoin(options_.trusted_keys->KeyIds(), ", "));
  }
}

absl::StatusOr<BusPlan> JobReader::PlanFor(const wire::v1::JobEnvelope& job) {
  BusPlan plan;
  const muster::v1::TargetType type = job.target().type();
  if (type == muster::v1::LIST) {
    ASSIGN_OR_RETURN(plan.list, ListDispatch::Create(job));
  } else if (type == muster::v1::COMPOUND) {
    ASSIGN_OR_RETURN(Target target, Target::Parse(TargetKind::kCompound, job.target().expression()));
    if (const std::vector<std::string>* ids = target.ListIds(); ids != nullptr) {
      plan.direct_ids.emplace();
      plan.direct_ids->reserve(ids->size());
      for (const std::string& id : *ids) {
        // An id no minion can have reaches nobody; it is not worth a frame.
        if (ValidateMinionId(id).ok()) plan.direct_ids->push_back(id);
      }
    }
  }
  return plan;
}

security::Refusal JobReader::Verify(const wire::v1::JobEnvelope& job, const BusPlan& plan) {
  if (verifier_ == nullptr) return security::Refusal::kNone;
  if (plan.list != nullptr) return verifier_->Verify(plan.list->ParsedEnvelopeFor(0));
  return verifier_->Verify(job);
}

void JobReader::Refuse(const StreamEntry& entry, const wire::v1::JobEnvelope* job,
                       security::Refusal refusal, const absl::Notification& stop) {
  counters_->dispatches_refused_by_reason[static_cast<int>(refusal)].fetch_add(1);
  std::string reason(security::RefusalReason(refusal));
  if (job == nullptr) {
    spdlog::warn("jobs: entry {} refused ({}): not published", entry.id, reason);
  } else {
    std::string key = absl::StrCat(job->jid(), "/", job->attempt(), "/", reason);
    if (logged_refusals_.size() >= kMaxLoggedRefusals) logged_refusals_.clear();
    if (logged_refusals_.insert(key).second) {
      spdlog::warn("jobs: {} attempt {} refused ({}): entry {}, key id '{}', datacenter '{}': "
                   "not published",
                   job->jid(), job->attempt(), reason, entry.id, job->key_id(),
                   job->datacenter());
    }
  }
  Commit(entry.id, nullptr, "", stop);
}

std::optional<PublishOutcome> JobReader::Publish(const wire::v1::JobEnvelope& job,
                                                const std::string& payload, const BusPlan& plan,
                                                const std::vector<std::string>* expected,
                                                const absl::Notification& stop) {
  bool maybe_on_bus = false;
  std::string logged;
  while (true) {
    PublishOutcome outcome = bus_->Publish({job, payload, plan, expected});
    if (outcome.kind == PublishOutcome::Kind::kPublished) return outcome;
    counters_->publish_retries.fetch_add(1);
    maybe_on_bus = maybe_on_bus || outcome.maybe_on_bus;
    if (outcome.detail != logged) {
      spdlog::warn("jobs: {} attempt {} not published yet: {}; trying again every second "
                   "until its deadline",
                   job.jid(), job.attempt(), outcome.detail);
      logged = outcome.detail;
    }
    if (stop.WaitForNotificationWithTimeout(absl::Seconds(1))) return std::nullopt;
    if (NowMs() > job.deadline_ms()) {
      outcome.maybe_on_bus = maybe_on_bus;
      return outcome;
    }
    bus_->Tick();
  }
}

absl::StatusOr<std::vector<std::string>> JobReader::ReadExpected(
    const wire::v1::JobEnvelope& job, const absl::Notification& stop) {
  const std::string key = options_.ExpectedKey(job.jid(), job.attempt());
  while (true) {
    if (stop.HasBeenNotified()) return absl::CancelledError("stopping");
    if (NowMs() > job.deadline_ms()) {
      return absl::DeadlineExceededError(absl::StrCat("no expected-minions key ", key,
                                                      " before the deadline"));
    }
    RedisConnection* redis = read_redis_.Get();
    if (redis != nullptr) {
      absl::StatusOr<RedisReply> reply = redis->Command({"GET", key});
      if (!reply.ok()) {
        counters_->redis_errors.fetch_add(1);
        read_redis_.Broken(reply.status().message());
      } else if (reply->IsString()) {
        absl::StatusOr<std::vector<std::string>> ids = DecodeExpected(reply->str());
        if (ids.ok()) return ids;
        return absl::InvalidArgumentError(absl::StrCat("expected-minions key ", key, ": ",
                                                       ids.status().message()));
      }
    }
    // jobd writes the key just after the dispatch.
    stop.WaitForNotificationWithTimeout(absl::Milliseconds(kAwaitBlockMs));
  }
}

void JobReader::HandleEntry(const StreamEntry& entry, const absl::Notification& stop) {
  // Size first: nothing larger than a job can be is ever parsed.
  if (const std::string* value = entry.Field(kJobField);
      value != nullptr && value->size() > kMaxJobEntryBytes) {
    Refuse(entry, nullptr, security::Refusal::kTooLarge, stop);
    return;
  }
  absl::StatusOr<wire::v1::JobEnvelope> job = DecodeJob(entry);
  absl::StatusOr<BusPlan> plan = job.ok() ? PlanFor(*job) : absl::StatusOr<BusPlan>(job.status());
  if (!plan.ok()) {
    counters_->malformed_entries.fetch_add(1);
    spdlog::warn("jobs: malformed entry {} skipped: {}", entry.id,
                 std::string(plan.status().message()));
    Commit(entry.id, nullptr, "", stop);
    return;
  }
  // Before the dedup: a forged entry must never take a real dispatch's
  // (jid, attempt).
  if (security::Refusal refusal = Verify(*job, *plan); refusal != security::Refusal::kNone) {
    Refuse(entry, &*job, refusal, stop);
    return;
  }
  absl::StatusOr<bool> handled = state_->WasHandled(job->jid(), job->attempt());
  if (handled.ok() && *handled) {
    counters_->jobs_duplicate.fetch_add(1);
    spdlog::info("jobs: {} attempt {} already handled; entry {} skipped", job->jid(),
                 job->attempt(), entry.id);
    Commit(entry.id, nullptr, "", stop);
    return;
  }
  // A bus that targets the frozen expected set (Salt) reads it first.
  std::optional<std::vector<std::string>> expected;
  if (bus_->NeedsExpected() && job->deadline_ms() >= NowMs()) {
    absl::StatusOr<std::vector<std::string>> read = ReadExpected(*job, stop);
    if (absl::IsCancelled(read.status())) return;  // read again at restart
    if (read.ok()) {
      expected = *std::move(read);
    } else if (!absl::IsDeadlineExceeded(read.status())) {
      counters_->malformed_entries.fetch_add(1);
      spdlog::warn("jobs: {} attempt {} skipped: {}", job->jid(), job->attempt(),
                   std::string(read.status().message()));
      Commit(entry.id, nullptr, "", stop);
      return;
    }
  }
  HandledDispatch dispatch{job->jid(), job->attempt(), job->deadline_ms(), ""};
  wire::v1::RelayEvent event;
  wire::v1::Delivery* delivery = event.mutable_delivery();
  delivery->set_jid(job->jid());
  delivery->set_attempt(job->attempt());
  int64_t now_ms = NowMs();
  delivery->set_at_ms(now_ms);
  if (job->deadline_ms() < now_ms) {
    // Past its deadline: not published now. If this relay was killed while
    // publishing it, the bus may have it: say so, never "not published".
    absl::StatusOr<bool> interrupted = state_->WasPublishing(job->jid(), job->attempt());
    if (!interrupted.ok() || *interrupted) {
      delivery->set_status(wire::v1::Delivery::INTERRUPTED);
      counters_->jobs_interrupted.fetch_add(1);
      spdlog::warn("jobs: {} attempt {} expired {} ms ago; the relay stopped while publishing "
                   "it, so minions may have it (their receipts say which){}",
                   job->jid(), job->attempt(), now_ms - job->deadline_ms(),
                   interrupted.ok() ? "" : " (state unreadable: " +
                                               std::string(interrupted.status().message()) + ")");
    } else {
      delivery->set_status(wire::v1::Delivery::EXPIRED);
      counters_->jobs_expired.fetch_add(1);
      spdlog::info("jobs: {} attempt {} expired {} ms ago; not injected", job->jid(),
                   job->attempt(), now_ms - job->deadline_ms());
    }
  } else {
    if (absl::Status marked = state_->MarkPublishing(job->jid(), job->attempt(),
                                                     job->deadline_ms());
        !marked.ok()) {
      // Publish anyway: the mark only matters if the relay is also killed
      // before this dispatch is committed.
      counters_->state_errors.fetch_add(1);
      spdlog::error("jobs: {} attempt {}: recording the publish intent failed: {}", job->jid(),
                    job->attempt(), marked.ToString());
    }
    std::optional<PublishOutcome> outcome =
        Publish(*job, *entry.Field(kJobField), *plan, expected ? &*expected : nullptr, stop);
    if (!outcome.has_value()) return;  // stopping: read again at restart
    now_ms = NowMs();
    delivery->set_at_ms(now_ms);
    if (outcome->kind == PublishOutcome::Kind::kPublished) {
      dispatch.envelope = *entry.Field(kJobField);
      delivery->set_status(wire::v1::Delivery::DELIVERED);
      delivery->set_messages(outcome->messages);
      for (std::string& id : outcome->unreachable) delivery->add_unreachable(std::move(id));
      counters_->jobs_injected.fetch_add(1);
      if (delivery->unreachable_size() > 0) {
        spdlog::warn("jobs: {} attempt {}: the bus cannot reach {} expected minion(s), e.g. {}",
                     job->jid(), job->attempt(), delivery->unreachable_size(),
                     delivery->unreachable(0));
      }
      spdlog::debug("jobs: injected {} attempt {} in {} message(s)", job->jid(), job->attempt(),
                    outcome->messages);
    } else if (outcome->maybe_on_bus) {
      delivery->set_status(wire::v1::Delivery::INTERRUPTED);
      counters_->jobs_interrupted.fetch_add(1);
      spdlog::warn("jobs: {} attempt {} reached its deadline unpublished ({}); an earlier try "
                   "may have reached the bus",
                   job->jid(), job->attempt(), outcome->detail);
    } else {
      delivery->set_status(wire::v1::Delivery::EXPIRED);
      counters_->jobs_expired.fetch_add(1);
      spdlog::warn("jobs: {} attempt {} reached its deadline unpublished: {}", job->jid(),
                   job->attempt(), outcome->detail);
    }
  }
  Commit(entry.id, &dispatch,
         EncodeRelayEvent(std::move(event), options_.relay_id, options_.datacenter, now_ms),
         stop);
  if (dispatch.envelope.empty()) return;
  if (expected.has_value()) {
    // Read already, for the bus: no second GET.
    handoff_->Push({std::move(dispatch.jid), dispatch.attempt, dispatch.deadline_ms,
                    std::move(dispatch.envelope), *std::move(expected), std::move(plan->list)});
    return;
  }
  awaiting_expected_.push_back({std::move(dispatch), NowMs(), std::move(plan->list)});
}

absl::Status JobReader::FetchExpected(RedisConnection& redis) {
  if (awaiting_expected_.empty()) return absl::OkStatus();
  for (const AwaitingDispatch& awaiting : awaiting_expected_) {
    redis.Append({"GET", options_.ExpectedKey(awaiting.dispatch.jid, awaiting.dispatch.attempt)});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
  if (!replies.ok()) return replies.status();  // all stay awaiting
  int64_t now_ms = NowMs();
  std::vector<AwaitingDispatch> still;
  for (size_t i = 0; i < replies->size(); ++i) {
    AwaitingDispatch& awaiting = awaiting_expected_[i];
    HandledDispatch& dispatch = awaiting.dispatch;
    const RedisReply& reply = (*replies)[i];
    absl::StatusOr<std::vector<std::string>> expected =
        reply.IsString() ? DecodeExpected(reply.str())
                         : absl::StatusOr<std::vector<std::string>>(absl::NotFoundError("no key"));
    if (expected.ok()) {
      handoff_->Push({std::move(dispatch.jid), dispatch.attempt, dispatch.deadline_ms,
                      std::move(dispatch.envelope), *std::move(expected),
                      std::move(awaiting.list)});
      continue;
    }
    // jobd writes the key just after the dispatch: wait for it a while.
    if (reply.IsNil() && now_ms - awaiting.since_ms < kExpectedWaitMs &&
        now_ms <= dispatch.deadline_ms) {
      still.push_back(std::move(awaiting));
      continue;
    }
    // No key (a jobd older than receipts, or the key expired): the dispatch
    // was published once and is not re-sent.
    counters_->dispatches_untracked.fetch_add(1);
    spdlog::warn("jobs: {} attempt {}: no expected-minions key {} ({}); receipts not tracked",
                 dispatch.jid, dispatch.attempt,
                 options_.ExpectedKey(dispatch.jid, dispatch.attempt),
                 reply.IsError() ? std::string(reply.str())
                                 : std::string(expected.status().message()));
  }
  awaiting_expected_.swap(still);
  return absl::OkStatus();
}

void JobReader::Commit(const std::string& entry_id, const HandledDispatch* dispatch,
                       const std::string& event, const absl::Notification& stop) {
  while (true) {
    absl::Status committed = state_->Commit(entry_id, dispatch, event);
    if (committed.ok()) return;
    // The job is already on the bus; re-reading it would inject it twice,
    // so insist on the commit rather than move on.
    spdlog::error("jobs: committing entry {}: {}; retrying", entry_id,
                  std::string(committed.message()));
    if (stop.WaitForNotificationWithTimeout(absl::Seconds(1))) return;
  }
}

void JobReader::FlushOutboxToPrimary() {
  RedisConnection* primary = redis_.Get();
  if (primary == nullptr) return;
  uint64_t failures = redis_.failures();
  absl::Status flushed = FlushOutbox(*primary);
  if (!flushed.ok()) {
    redis_.Broken(flushed.message());
  } else if (redis_.failures() == failures) {
    redis_.Succeeded();  // not after a refused XADD, whose backoff must run
  }
}

absl::Status JobReader::FlushOutbox(RedisConnection& redis) {
  int64_t now_ms = NowMs();
  // A new connection may be to a Redis that lost events it had answered
  // (a failover): everything the outbox holds is written again, after
  // what jobd's mark says it has (docs/PROTOCOL.md 2.4).
  if (redis_.connections() != outbox_connection_) {
    absl::StatusOr<RedisReply> mark = redis.Command({"HGET", mark_key_, mark_field_});
    if (!mark.ok()) return mark.status();
    ApplyDeliveryMark(*mark);
    outbox_written_through_ = 0;
    outbox_connection_ = redis_.connections();
  }
  // The lowest seq held: every event below it was confirmed (it only grows
  // while this runs, so a floor read once stays true).
  absl::StatusOr<std::pair<int64_t, int64_t>> held = state_->OutboxExtent();
  while (true) {
    absl::StatusOr<std::vector<OutboxEvent>> events =
        state_->PendingEvents(kOutboxBatch, outbox_written_through_);
    if (!events.ok()) return absl::OkStatus();  // local read error: retried next round
    if (events->empty()) break;
    uint64_t floor = held.ok() && held->second > 0 ? held->second : events->front().seq;
    for (const OutboxEvent& event : *events) {
      wire::v1::RelayEvent suffix;
      wire::v1::StreamSeq* seq = suffix.mutable_stream_seq();
      seq->set_epoch(options_.writer_epoch);
      seq->set_seq(event.seq);
      seq->set_floor(floor);
      redis.Append(
          {"XADD", events_key_, "*", kEventField, event.event + suffix.SerializeAsString()});
    }
    redis.Append({"HGET", mark_key_, mark_field_});
    absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
    if (!replies.ok()) return replies.status();
    bool all_ok = true;
    for (size_t i = 0; i < events->size(); ++i) {
      if (!(*replies)[i].IsString()) {
        counters_->redis_errors.fetch_add(1);
        redis_.Refused(absl::StrCat("XADD ", events_key_, ": ", (*replies)[i].str()));
        all_ok = false;
        break;
      }
      if (outbox_written_through_ > 0 && (*events)[i].seq <= outbox_highest_written_) {
        counters_->deliveries_rewritten.fetch_add(1);
      }
      outbox_written_through_ = (*events)[i].seq;
      outbox_highest_written_ = std::max(outbox_highest_written_, outbox_written_through_);
    }
    ApplyDeliveryMark(replies->back());
    next_mark_poll_ms_ = now_ms + kMarkPollMs;
    if (!all_ok) return absl::OkStatus();
  }
  // Written and waiting for jobd's confirmation: poll the mark, and write
  // again an event jobd's mark shows skipped for kGapRewriteMs.
  if (outbox_held_ > 0 && now_ms >= next_mark_poll_ms_) {
    next_mark_poll_ms_ = now_ms + kMarkPollMs;
    absl::StatusOr<RedisReply> mark = redis.Command({"HGET", mark_key_, mark_field_});
    if (!mark.ok()) return mark.status();
    ApplyDeliveryMark(*mark);
  }
  absl::StatusOr<std::pair<int64_t, int64_t>> extent = state_->OutboxExtent();
  if (extent.ok()) {
    outbox_held_ = extent->first;
    counters_->unconfirmed_deliveries.store(static_cast<uint64_t>(extent->first));
    bool gap = extent->first > 0 && delivery_mark_.highest > delivery_mark_.through &&
               static_cast<uint64_t>(extent->second) == delivery_mark_.through + 1;
    if (!gap) {
      gap_since_ms_ = 0;
    } else if (gap_since_ms_ == 0) {
      gap_since_ms_ = now_ms;
    } else if (now_ms - gap_since_ms_ >= kGapRewriteMs) {
      spdlog::warn("jobs: jobd committed delivery events up to seq {} but not seq {}: writing "
                   "them again",
                   delivery_mark_.highest, extent->second);
      outbox_written_through_ = static_cast<int64_t>(delivery_mark_.through);
      gap_since_ms_ = 0;
    }
  }
  return absl::OkStatus();
}

void JobReader::ApplyDeliveryMark(const RedisReply& reply) {
  if (!reply.IsString()) return;  // nil: no mark yet
  std::optional<CommitMark> mark = DecodeCommitMark(reply.str());
  if (!mark.has_value() || mark->epoch != options_.writer_epoch) return;
  delivery_mark_ = *mark;
  if (mark->through == 0) return;
  absl::Status deleted = state_->DeleteEventsThrough(static_cast<int64_t>(mark->through));
  if (!deleted.ok()) spdlog::error("jobs: outbox: {}", std::string(deleted.message()));
}

absl::Status JobReader::CheckCursor(RedisConnection& redis, int64_t now_ms) {
  bool new_connection = read_redis_.connections() != cursor_checked_connection_;
  if (!new_connection && now_ms < next_cursor_check_ms_) return absl::OkStatus();
  cursor_checked_connection_ = read_redis_.connections();
  next_cursor_check_ms_ = now_ms + kCursorCheckMs;
  absl::StatusOr<RedisReply> info = redis.Command({"XINFO", "STREAM", jobs_key_});
  if (!info.ok()) return info.status();
  std::string newest = "0-0";  // no stream at all: a Redis that lost it
  if (info->IsError()) {
    if (!absl::StrContains(info->str(), "no such key")) {
      // Not allowed (an ACL without XINFO) or anything else: no check.
      if (!cursor_check_refused_) {
        spdlog::warn("jobs: cannot check the job stream's newest id ({}): a failover that "
                     "loses entries this relay read will not move its cursor back",
                     std::string(info->str()));
        cursor_check_refused_ = true;
      }
      return absl::OkStatus();
    }
  } else {
    for (size_t i = 0; i + 1 < info->size(); i += 2) {
      if (ReplyStr(info->element(i)) == "last-generated-id") {
        newest = std::string(ReplyStr(info->element(i + 1)));
      }
    }
  }
  absl::StatusOr<StreamId> newest_id = StreamId::Parse(newest);
  absl::StatusOr<StreamId> cursor_id = StreamId::Parse(state_->cursor());
  if (!newest_id.ok() || !cursor_id.ok() || !(*newest_id < *cursor_id)) {
    cursor_behind_since_ms_ = 0;
    return absl::OkStatus();
  }
  // A replica catching up (after a failover, or when this link comes back
  // to it) is briefly behind too: only a stream still behind a second
  // later lost entries.
  if (cursor_behind_since_ms_ == 0) {
    cursor_behind_since_ms_ = now_ms;
    next_cursor_check_ms_ = now_ms + 1000;
    return absl::OkStatus();
  }
  spdlog::warn("jobs: the job stream's newest id {} is before this relay's cursor {}: Redis "
               "lost entries (a failover); reading on from {} (jobd writes lost dispatches "
               "again, docs/PROTOCOL.md 2.4)",
               newest, state_->cursor(), newest);
  counters_->job_cursor_rewinds.fetch_add(1);
  cursor_behind_since_ms_ = 0;
  if (absl::Status moved = state_->Commit(newest, nullptr, ""); !moved.ok()) {
    spdlog::error("jobs: moving the cursor back: {}", std::string(moved.message()));
  }
  return absl::OkStatus();
}

}  // namespace muster::relay
