#include "relay/job_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/bus/bus_protocol.h"
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
constexpr int64_t kPruneIntervalMs = 60 * 1000;
// Large enough that a list target of 100,000 ids is never cut by the
// high-water mark; PUB drops (never blocks) past it.
constexpr int kPublishHighWaterMark = 1000000;

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
                                                             zmq::context_t& context,
                                                             RelayCounters* counters,
                                                             DispatchHandoff* handoff) {
  ASSIGN_OR_RETURN(std::unique_ptr<RelayState> state, RelayState::Open(options.StatePath()));
  zmq::socket_t publisher(context, zmq::socket_type::pub);
  publisher.set(zmq::sockopt::sndhwm, kPublishHighWaterMark);
  publisher.set(zmq::sockopt::linger, 1000);
  try {
    bus::ApplyBusLinkOptions(options.bus_link, publisher);
    // Only ACCEPTED minion keys may subscribe (relay/zap_handler.h).
    if (!options.insecure) ServeCurve(publisher, options.curve_secret_z85, kPublishZapDomain);
    if (options.bus_connect.empty()) {
      publisher.bind(options.publish_endpoint);
    } else {
      publisher.connect(options.bus_connect);
    }
  } catch (const zmq::error_t& error) {
    return absl::UnavailableError(absl::StrCat(
        "publish socket ",
        options.bus_connect.empty() ? options.publish_endpoint : options.bus_connect, ": ",
        error.what()));
  }
  return std::unique_ptr<JobReader>(
      new JobReader(options, std::move(publisher), std::move(state), counters, handoff));
}

JobReader::JobReader(const RelayOptions& options, zmq::socket_t publisher,
                     std::unique_ptr<RelayState> state, RelayCounters* counters,
                     DispatchHandoff* handoff)
    : options_(options),
      publisher_(std::move(publisher)),
      state_(std::move(state)),
      counters_(counters),
      handoff_(handoff),
      redis_(options.RedisLinkNamed("jobs", &counters->redis_reconnects)),
      jobs_key_(options.JobsKey()),
      events_key_(options.EventsKey()) {
  publish_endpoint_ = options.bus_connect.empty()
                          ? publisher_.get(zmq::sockopt::last_endpoint)
                          : options.bus_connect;
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
      awaiting_expected_.push_back({std::move(dispatch), NowMs()});
    }
  } else {
    spdlog::error("jobs: reading published dispatches: {}",
                  std::string(published.status().message()));
  }
  if (stop.WaitForNotificationWithTimeout(absl::Milliseconds(options_.inject_delay_ms))) return;
  int64_t next_prune_ms = 0;
  while (!stop.HasBeenNotified()) {
    RedisConnection* redis = redis_.Get();
    if (redis == nullptr) {
      stop.WaitForNotificationWithTimeout(
          std::max(redis_.next_attempt() - absl::Now(), absl::Milliseconds(10)));
      continue;
    }
    absl::Status flushed = FlushOutbox(*redis);
    if (flushed.ok()) flushed = FetchExpected(*redis);
    if (!flushed.ok()) {
      redis_.Broken(flushed.message());
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
      redis_.Broken(reply.status().message());
      continue;
    }
    absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamRead(*reply);
    if (!entries.ok()) {
      // An error reply (LOADING after a restart, or the key is not a
      // stream): back off and ask again, logged once per outage.
      counters_->redis_errors.fetch_add(1);
      redis_.Refused(absl::StrCat("XREAD ", jobs_key_, ": ", entries.status().message()));
      continue;
    }
    redis_.Succeeded();
    for (const StreamEntry& entry : *entries) {
      if (stop.HasBeenNotified()) break;
      HandleEntry(entry, stop);
    }
    if (!entries->empty()) {
      flushed = FlushOutbox(*redis);
      if (flushed.ok()) flushed = FetchExpected(*redis);
      if (!flushed.ok()) redis_.Broken(flushed.message());
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

absl::StatusOr<std::optional<std::vector<std::string>>> JobReader::ListedMinions(
    const wire::v1::JobEnvelope& job) const {
  const muster::v1::TargetType type = job.target().type();
  if (type == muster::v1::LIST || type == muster::v1::COMPOUND) {
    ASSIGN_OR_RETURN(Target target,
                     Target::Parse(type == muster::v1::LIST ? TargetKind::kList
                                                            : TargetKind::kCompound,
                                   job.target().expression()));
    if (const std::vector<std::string>* ids = target.ListIds(); ids != nullptr) {
      std::vector<std::string> valid;
      valid.reserve(ids->size());
      for (const std::string& id : *ids) {
        // An id no minion can have reaches nobody; it is not worth a frame.
        if (ValidateMinionId(id).ok()) valid.push_back(id);
      }
      return std::optional<std::vector<std::string>>(std::move(valid));
    }
  }
  return std::optional<std::vector<std::string>>();
}

size_t JobReader::Publish(const wire::v1::JobEnvelope& job, const std::string& payload,
                          const std::optional<std::vector<std::string>>& listed) {
  if (!listed.has_value()) {
    publisher_.send(zmq::buffer(bus::kBroadcastTopic.data(), bus::kBroadcastTopic.size()),
                    zmq::send_flags::sndmore);
    publisher_.send(zmq::buffer(payload), zmq::send_flags::none);
    return 1;
  }
  // One small envelope per minion: a retry of 50,000 missing minions must not
  // send the 50,000-id list to each of them.
  wire::v1::JobEnvelope single = job;
  single.mutable_target()->set_type(muster::v1::LIST);
  std::string topic;
  std::string frame;
  for (const std::string& id : *listed) {
    single.mutable_target()->set_expression(id);
    single.SerializeToString(&frame);
    topic = bus::MinionTopic(id);
    publisher_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    publisher_.send(zmq::buffer(frame), zmq::send_flags::none);
  }
  return listed->size();
}

void JobReader::HandleEntry(const StreamEntry& entry, const absl::Notification& stop) {
  absl::StatusOr<wire::v1::JobEnvelope> job = DecodeJob(entry);
  using Listed = std::optional<std::vector<std::string>>;
  absl::StatusOr<Listed> listed =
      job.ok() ? ListedMinions(*job) : absl::StatusOr<Listed>(job.status());
  if (!listed.ok()) {
    counters_->malformed_entries.fetch_add(1);
    spdlog::warn("jobs: malformed entry {} skipped: {}", entry.id,
                 std::string(listed.status().message()));
    Commit(entry.id, nullptr, "", stop);
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
    size_t messages = Publish(*job, *entry.Field(kJobField), *listed);
    dispatch.envelope = *entry.Field(kJobField);
    delivery->set_status(wire::v1::Delivery::DELIVERED);
    delivery->set_messages(static_cast<uint32_t>(messages));
    counters_->jobs_injected.fetch_add(1);
    spdlog::debug("jobs: injected {} attempt {} in {} message(s)", job->jid(), job->attempt(),
                  messages);
  }
  Commit(entry.id, &dispatch,
         EncodeRelayEvent(std::move(event), options_.relay_id, options_.datacenter, now_ms),
         stop);
  if (!dispatch.envelope.empty()) {
    awaiting_expected_.push_back({std::move(dispatch), NowMs()});
  }
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
    wire::v1::ExpectedMinions expected;
    absl::StatusOr<std::string> inflated =
        reply.IsString() ? compress::ZlibDecompress(reply.str(), kMaxExpectedBytes)
                         : absl::StatusOr<std::string>(absl::NotFoundError("no key"));
    if (inflated.ok() && expected.ParseFromString(*inflated)) {
      handoff_->Push({std::move(dispatch.jid), dispatch.attempt, dispatch.deadline_ms,
                      std::move(dispatch.envelope),
                      {expected.minion_ids().begin(), expected.minion_ids().end()}});
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
                                 : inflated.ok() ? "not ExpectedMinions"
                                                 : std::string(inflated.status().message()));
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

absl::Status JobReader::FlushOutbox(RedisConnection& redis) {
  while (true) {
    absl::StatusOr<std::vector<OutboxEvent>> events = state_->PendingEvents(kOutboxBatch);
    if (!events.ok()) return absl::OkStatus();  // local read error: retried next round
    if (events->empty()) return absl::OkStatus();
    for (const OutboxEvent& event : *events) {
      redis.Append({"XADD", events_key_, "*", kEventField, event.event});
    }
    absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
    if (!replies.ok()) return replies.status();
    int64_t written_through = 0;
    for (size_t i = 0; i < replies->size(); ++i) {
      if (!(*replies)[i].IsString()) {
        counters_->redis_errors.fetch_add(1);
        redis_.Refused(absl::StrCat("XADD ", events_key_, ": ", (*replies)[i].str()));
        break;
      }
      written_through = (*events)[i].seq;
    }
    if (written_through > 0) {
      absl::Status deleted = state_->DeleteEventsThrough(written_through);
      if (!deleted.ok()) {
        spdlog::error("jobs: outbox: {}", std::string(deleted.message()));
        return absl::OkStatus();
      }
    }
    if (written_through != events->back().seq) return absl::OkStatus();
  }
}

}  // namespace muster::relay
