// RelayState: what the job side of relayd must remember across restarts, in
// one SQLite file (WAL) under --state_dir:
//
//   cursor    id of the last job-stream entry the relay has finished;
//   dispatch  (jid, attempt) pairs already handled, kept until their
//             deadline passed, so a re-dispatched pair is never injected twice;
//   published the envelope of each dispatch it published, until its
//             deadline, so that after a restart it can still re-send it to
//             expected minions that never acknowledged receipt;
//   outbox    Delivery events committed with the cursor, kept until jobd's
//             commit mark covers them (docs/PROTOCOL.md 2.4): their seq is
//             their StreamSeq.seq, never reused (AUTOINCREMENT).
//
// Committing cursor, dispatch row and event in one transaction is what makes
// a restart resume exactly after the last handled job (docs/PROTOCOL.md 2.1).
// Not thread-safe: owned by the job thread.
#ifndef MUSTER_RELAY_RELAY_STATE_H_
#define MUSTER_RELAY_RELAY_STATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite/sqlite.h"

namespace muster::relay {

// A dispatch the relay handled (injected or skipped as expired).
struct HandledDispatch {
  std::string jid;
  uint32_t attempt = 0;
  int64_t deadline_ms = 0;
  // The envelope as published (the stream entry's `job` value); empty when
  // the dispatch was not published (expired).
  std::string envelope;
};

// An event waiting in the outbox.
struct OutboxEvent {
  int64_t seq = 0;
  std::string event;  // serialized RelayEvent
};

class RelayState {
 public:
  // Opens or creates the state file at `path`.
  static absl::StatusOr<std::unique_ptr<RelayState>> Open(const std::string& path);

  // The persisted cursor; "0-0" for a new file.
  const std::string& cursor() const { return cursor_; }

  // True if (jid, attempt) was handled and not yet pruned.
  absl::StatusOr<bool> WasHandled(absl::string_view jid, uint32_t attempt);

  // Records, before the dispatch is published, that the relay is about to
  // publish (jid, attempt): a relay killed between publishing and Commit()
  // finds the mark on restart and knows the bus may have the dispatch.
  // Survives a process kill (not a power cut); Commit() of the dispatch
  // removes it (the relay handles entries one at a time, so at most one
  // mark is ever left, by a kill, and the re-read entry clears it).
  absl::Status MarkPublishing(absl::string_view jid, uint32_t attempt, int64_t deadline_ms);
  // True if MarkPublishing(jid, attempt) was called and no Commit() of that
  // dispatch followed (the relay stopped while publishing it).
  absl::StatusOr<bool> WasPublishing(absl::string_view jid, uint32_t attempt);

  // In one transaction: sets the cursor to `entry_id`, records `dispatch`
  // (when not null; this also clears its publishing mark) and queues
  // `event` (when not empty) in the outbox.
  // On error nothing changed, and cursor() keeps its old value.
  absl::Status Commit(absl::string_view entry_id, const HandledDispatch* dispatch,
                      absl::string_view event);

  // Oldest outbox events with seq > `after_seq`, at most `max_events`, in
  // commit order.
  absl::StatusOr<std::vector<OutboxEvent>> PendingEvents(int max_events, int64_t after_seq = 0);
  // How many events the outbox holds, and the lowest seq (0 when empty).
  absl::StatusOr<std::pair<int64_t, int64_t>> OutboxExtent();
  // Removes outbox events with seq <= `last_seq`.
  absl::Status DeleteEventsThrough(int64_t last_seq);

  // The published dispatches whose deadline is at or after `now_ms`, with
  // their envelopes, soonest deadline first.
  absl::StatusOr<std::vector<HandledDispatch>> PublishedSince(int64_t now_ms);

  // Forgets dispatches whose deadline is before `now_ms`; returns how many.
  absl::StatusOr<int64_t> PruneDispatches(int64_t now_ms);

 private:
  explicit RelayState(std::unique_ptr<Database> file) : file_(std::move(file)) {}
  absl::Status Prepare();

  std::unique_ptr<Database> file_;
  std::string cursor_ = "0-0";
  Statement select_dispatch_;
  Statement insert_dispatch_;
  Statement update_cursor_;
  Statement insert_event_;
  Statement select_events_;
  Statement count_events_;
  Statement delete_events_;
  Statement prune_dispatches_;
  Statement insert_published_;
  Statement select_published_;
  Statement prune_published_;
  Statement insert_publishing_;
  Statement select_publishing_;
  Statement delete_publishing_;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RELAY_STATE_H_
