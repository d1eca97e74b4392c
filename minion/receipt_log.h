// ReceiptLog: when each fleetsim socket received each dispatch, for the
// end-to-end benchmark's "last virtual minion received the job" figure.
//
// A DispatchLog (minion/dispatch_log.h): one line per socket per dispatch
// it accepts (a frame that passed dedup and expiry):
//
//   <jid> <attempt> <received unix microseconds> <matched minions>
//
// `matched minions` counts the socket's minions the target matched (silent
// ones included: they receive, they only never answer). A virtual minion
// receives a job when its socket does, so the last receipt of a dispatch is
// the largest time among its lines with matched > 0.
#ifndef MUSTER_MINION_RECEIPT_LOG_H_
#define MUSTER_MINION_RECEIPT_LOG_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "minion/dispatch_log.h"

namespace muster::minion {

// Record(jid, attempt, received, matched_minions).
using ReceiptLog = DispatchLog;

// One line: at_us is when the socket received the dispatch, count its
// matched minions (0 when the target matched none of them).
inline absl::StatusOr<DispatchLogLine> ParseReceipt(absl::string_view line) {
  return ParseDispatchLogLine(line);
}

}  // namespace muster::minion

#endif  // MUSTER_MINION_RECEIPT_LOG_H_
