// OutboxJournal: the minion's durable memory of what it owes its relay, so
// that a minion killed at any moment neither loses a return nor runs a
// dispatch twice (docs/PROTOCOL.md section 3.5).
//
// One append-only file, `outbox.journal`, in the minion's state directory,
// holding three kinds of record (minion/outbox_journal.proto):
//   accepted  a dispatch (jid, attempt) the minion took on; written and
//             fsynced before its function starts;
//   produced  a return; fsynced before it is first sent;
//   removed   keys the relay acknowledged (or rejected for good); written
//             with one write(2), which survives the process being killed;
//             a power loss may forget it and cost one harmless resend.
// Records are buffered by the Append calls and reach the file in one
// write(2) per Flush / Sync, with one fdatasync per Sync: the socket loop
// syncs once per batch of jobs it accepts and once per batch of returns
// it drains, never once per record.
//
// Open() replays the file: accepted dispatches re-enter the dedup until
// their deadline, produced returns not removed go back to the outbox, and
// accepted dispatches without a return are reported as interrupted (the
// minion died while they ran; the caller answers them as failed rather
// than run them again). The file is then rewritten with only the live
// records, and again whenever it grows past twice its live size (at least
// 1 MiB): a record dies when its return is removed, and an accepted
// dispatch once it has a return and its deadline + margin has passed.
//
// Why a record log and not SQLite: the minion runs on every machine, writes
// a few records per job and only ever appends, replays, or rewrites the
// whole (small) live set; a length-prefixed, checksummed log does exactly
// that in a few hundred lines with no library, and its crash behaviour is
// explicit and tested. Each record is
//
//   fixed32 length | fixed32 crc32c(payload) | payload (JournalRecord)
//
// (little-endian). A crash in the middle of a write leaves a short or
// mismatching last record: replay stops at the first record whose length
// runs past the end, whose checksum differs or which does not parse, warns
// with the offset and byte count, and drops the rest (it is never a crash).
//
// Measured (bench/outbox_journal_bench.cc, 2 cores, ext4 on a virtual disk,
// machine shared with builds): one sync per return journals 340-1,900
// returns/s; one sync per 1,000 returns 156,000-311,000 returns/s. A
// dispatch waits for one record + fdatasync before it starts: median
// 0.16-0.27 ms (docs/OPERATIONS.md, "Minion state").
//
// Not thread-safe: owned by the minion's socket thread. The state
// directory is locked (flock on `LOCK`) so two minions cannot share it.
#ifndef MUSTER_MINION_OUTBOX_JOURNAL_H_
#define MUSTER_MINION_OUTBOX_JOURNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "minion/outbox_journal.pb.h"
#include "proto/wire.pb.h"

namespace muster::minion {

struct JournalOptions {
  // An accepted dispatch with a return is kept until deadline + margin (the
  // dispatch dedup's margin, minion/dispatch_dedup.h).
  absl::Duration dedup_margin = absl::Minutes(10);
  // The file is compacted when it exceeds max(this, 2 x its size after the
  // last compaction).
  uint64_t min_compact_bytes = 1 << 20;
};

// What Open() found.
struct JournalReplay {
  // Every accepted dispatch still remembered (for the dedup), in file order.
  std::vector<journal::v1::AcceptedDispatch> accepted;
  // Accepted dispatches that have no return: the minion stopped while they
  // ran. Also in `accepted`.
  std::vector<journal::v1::AcceptedDispatch> interrupted;
  // Returns produced and not removed, in file order.
  std::vector<wire::v1::Return> returns;
  // A torn or corrupt end of the file that was ignored: its offset, size
  // and why (empty when the file was whole).
  uint64_t ignored_offset = 0;
  uint64_t ignored_bytes = 0;
  std::string ignored_reason;
};

class OutboxJournal {
 public:
  // Creates `dir` (mode 0700) if needed, locks it, replays its journal into
  // `replay` and rewrites the journal compacted (files mode 0600). Fails
  // when the directory cannot be created or locked (another minion uses
  // it), the file cannot be read or written, or it was written by an
  // unknown journal version (left untouched).
  static absl::StatusOr<std::unique_ptr<OutboxJournal>> Open(const std::string& dir,
                                                             absl::Time now,
                                                             JournalReplay* replay,
                                                             JournalOptions options = {});
  ~OutboxJournal();
  OutboxJournal(const OutboxJournal&) = delete;
  OutboxJournal& operator=(const OutboxJournal&) = delete;

  // Buffer one record each; nothing reaches the file before Flush or Sync.
  // A dispatch or return already recorded is not recorded again.
  void AppendAccepted(const journal::v1::AcceptedDispatch& dispatch);
  void AppendProduced(const wire::v1::Return& ret);
  // Keys of returns the minion holds no more (acknowledged or rejected).
  // Unknown keys are ignored.
  void AppendRemoved(const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys);

  // Writes the buffered records with one write(2): on disk once the kernel
  // writes it back, safe from the process being killed. On failure the file
  // is cut back to its previous end and the records stay buffered.
  absl::Status Flush();
  // Flush, then fdatasync: safe from a power loss too. Does nothing when
  // nothing was appended since the last Sync.
  absl::Status Sync();

  // Compacts (see the top comment) when the file has grown enough; `now`
  // decides which dispatches are past deadline + margin.
  absl::Status MaybeCompact(absl::Time now);
  // Compacts now.
  absl::Status Compact(absl::Time now);

  const std::string& path() const { return path_; }
  // Bytes in the file (flushed records only).
  uint64_t file_bytes() const { return file_bytes_; }
  // fdatasync calls so far (for tests and the benchmark).
  uint64_t syncs() const { return syncs_; }
  // Live records: remembered dispatches and held returns.
  size_t dispatches() const { return dispatches_.size(); }
  size_t returns() const { return returns_.size(); }

 private:
  // Where one record lies in the file (or, until flushed, will lie).
  struct Span {
    uint64_t offset = 0;
    uint32_t size = 0;
  };
  struct Dispatch {
    absl::Time deadline;
    Span span;
    bool returned = false;
  };

  OutboxJournal(std::string dir, JournalOptions options, int lock_fd);

  absl::Status Replay(JournalReplay* replay);
  // Applies one record read back or appended at `span` to the live index.
  // Returns false when it added nothing (a duplicate or a no-op).
  bool Index(const journal::v1::JournalRecord& record, Span span);
  void Append(const journal::v1::JournalRecord& record);
  absl::Status OpenForAppend();

  const std::string dir_;
  const std::string path_;
  const JournalOptions options_;
  const int lock_fd_;
  int fd_ = -1;
  uint64_t file_bytes_ = 0;
  uint64_t compacted_bytes_ = 0;
  uint64_t syncs_ = 0;
  bool unsynced_ = false;
  std::string buffer_;
  // "jid/attempt" -> dispatch; "jid/attempt/minion id" -> return record.
  absl::flat_hash_map<std::string, Dispatch> dispatches_;
  absl::flat_hash_map<std::string, Span> returns_;
};

// Reads every record of a journal file without locking or changing it (for
// tests and inspection). Stops at a torn or corrupt tail, reported in
// `ignored_*` of the result's replay-like counters.
struct JournalContents {
  std::vector<journal::v1::JournalRecord> records;
  uint64_t ignored_offset = 0;
  uint64_t ignored_bytes = 0;
  std::string ignored_reason;
};
absl::StatusOr<JournalContents> ReadJournalFile(const std::string& path);

// The CRC-32C (Castagnoli) of `data`, as stored in each record.
uint32_t Crc32c(const char* data, size_t size);

}  // namespace muster::minion

#endif  // MUSTER_MINION_OUTBOX_JOURNAL_H_
