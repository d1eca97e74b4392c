// WitnessLog: what a minion (or each of fleetsim's virtual minions) really
// received, ran and returned, and which of its returns the relay
// acknowledged, written by the minion itself so a fault campaign's checker
// can build the truth from records Muster's servers do not control. A
// testing aid, off unless --witness_log is given; not part of the protocol.
//
// One ASCII line per event, space-separated:
//
//   <unix_us> <event> <jid> <attempt> <minion_id> [<detail>]
//
//   recv  a dispatch accepted for the first time (target matched, not a
//         duplicate, not expired); written before its receipt is sent
//   dup   a repeated delivery of an accepted dispatch (not run again)
//   run   the function starts (real minion only)
//   ret   the return was produced, detail `ok` or `fail`; written once per
//         (jid, attempt, minion), before the return is first sent
//   ack   the relay acknowledged the return (first ack only), detail `ok`
//   rej   the relay rejected the return; detail its reason word
//   decl  a dispatch by name declined: detail `target` (not for this
//         minion) or `expired`
//
// The file is an AppendFile (minion/append_file.h): every line, or every
// batch of whole lines, leaves in a single write(2): threads and processes
// share the file without a lock and never interleave inside a line. Bytes of
// a field outside '!'..'~' (and '%') are written %XX, so a line always has
// its five or six fields. A line is in the page cache when the call returns
// (no fsync: a SIGKILLed process loses nothing, a power loss may).
#ifndef MUSTER_MINION_WITNESS_LOG_H_
#define MUSTER_MINION_WITNESS_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "minion/append_file.h"

namespace muster::minion {

enum class WitnessKind { kRecv, kDup, kRun, kRet, kAck, kRej, kDecl };

// The event word of a line: "recv", "dup", ...
absl::string_view WitnessKindName(WitnessKind kind);

class WitnessLog {
 public:
  // Opens `path` for appending, creating it if needed.
  static absl::StatusOr<std::unique_ptr<WitnessLog>> Open(const std::string& path);
  // Open(path), or null (witnessing off) when `path` is empty.
  static absl::StatusOr<std::unique_ptr<WitnessLog>> OpenUnlessEmpty(const std::string& path);
  // Appends one line stamped `at`. Thread-safe. A failed write is dropped
  // and counted.
  void Record(absl::Time at, WitnessKind kind, absl::string_view jid, uint32_t attempt,
              absl::string_view minion_id, absl::string_view detail = {});

  // Appends `lines` (whole lines, each ending in '\n') with one write(2).
  // Thread-safe.
  void WriteLines(absl::string_view lines);

  uint64_t failed_writes() const { return file_->failed_writes(); }

 private:
  explicit WitnessLog(std::unique_ptr<AppendFile> file) : file_(std::move(file)) {}

  const std::unique_ptr<AppendFile> file_;
};

// Lines gathered by one thread and written in one write(2) by Flush (or
// when about 1 MiB is pending, or on destruction). With a null log every
// call is a no-op, so callers need no test of their own.
// Not thread-safe: one per thread and batch.
class WitnessBatch {
 public:
  explicit WitnessBatch(WitnessLog* log) : log_(log) {}
  ~WitnessBatch() { Flush(); }
  WitnessBatch(const WitnessBatch&) = delete;
  WitnessBatch& operator=(const WitnessBatch&) = delete;

  bool on() const { return log_ != nullptr; }
  void Add(absl::Time at, WitnessKind kind, absl::string_view jid, uint32_t attempt,
           absl::string_view minion_id, absl::string_view detail = {}) {
    if (log_ != nullptr) Append(at, kind, jid, attempt, minion_id, detail);
  }
  // Writes the pending lines (if any) now.
  void Flush();

 private:
  void Append(absl::Time at, WitnessKind kind, absl::string_view jid, uint32_t attempt,
              absl::string_view minion_id, absl::string_view detail);

  WitnessLog* const log_;
  std::string lines_;
};

// One parsed line of a witness log.
struct WitnessEvent {
  int64_t at_us = 0;
  WitnessKind kind = WitnessKind::kRecv;
  std::string jid;
  uint32_t attempt = 0;
  std::string minion_id;
  std::string detail;  // Empty when the line has none.
};

// Appends the line of `event` (with its '\n') to `out`.
void AppendWitnessLine(const WitnessEvent& event, std::string* out);

// Parses one line (without its newline); InvalidArgument names the line.
absl::StatusOr<WitnessEvent> ParseWitnessLine(absl::string_view line);

struct WitnessReadStats {
  uint64_t lines = 0;
  // Bytes after the last '\n' (a write cut short), skipped; 0 normally.
  uint64_t torn_tail_bytes = 0;
};

// Calls `on_event` for each line of the file at `path`, in file order. An
// unterminated last line is skipped and counted in `stats` (if not null).
// NotFound when the file cannot be opened; InvalidArgument (with the line
// number) at the first malformed whole line.
absl::Status ReadWitnessLog(const std::string& path,
                            const std::function<void(const WitnessEvent&)>& on_event,
                            WitnessReadStats* stats = nullptr);

}  // namespace muster::minion

#endif  // MUSTER_MINION_WITNESS_LOG_H_
