// Human-readable rendering of jobs for jobctl: the completeness line, the
// per-datacenter table, progress bars and JSON. Pure functions of the API
// messages, so they are unit-tested without a server.
//
// Every string that came from outside (a submitter, a job's function,
// arguments and target, a minion's id and grains, a relay's or datacenter's
// name, a job's output) is printed through common/text/terminal_safe.h, so
// none can drive the terminal; only a job's stdout and stderr can be asked
// for as raw bytes (OutputBytes::kRaw, jobctl --raw).
#ifndef MUSTER_CLIENT_FORMAT_H_
#define MUSTER_CLIENT_FORMAT_H_

#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "proto/job_service.pb.h"

namespace muster::jobctl {

// "expected 3000 · received 2996 · returned 2990 (99.7%) · ok 2985 ·
// failed 5 · missing 10 (6 received, no answer; 4 never reached) ·
// unexpected 0"
std::string CompletenessLine(const muster::v1::Completeness& c);

// "COMPLETE", "INCOMPLETE", ...
std::string StateName(muster::v1::JobState state);
// "glob", "list", ...
std::string TargetTypeName(muster::v1::TargetType type);

// One line per attempt of a job: start, how it ended, minions asked, and
// per datacenter whether it was sent and delivered (from DatacenterStatus
// .attempts).
std::string AttemptsTable(const muster::v1::Job& job);

// "3 unreachable (e.g. a, b, c)": a delivery's unreachable minions, at
// most 5 ids shown ("e.g." when not all are); empty when there are none.
std::string UnreachableText(const muster::v1::AttemptDelivery& delivery);

// One line per datacenter whose latest delivery names unreachable minions:
// "dc1: 3 unreachable (a, b, c): its bus cannot reach them ...".
std::string UnreachableLines(const muster::v1::Job& job);

// Header lines, the completeness line, one row per datacenter, the
// UnreachableLines, and after a retry the AttemptsTable.
std::string JobSummary(const muster::v1::Job& job);

// The missing minions in two lines, those that received the job and did
// not answer, and those it never reached, each like "missing, never
// reached (10): a, b, c ... (7 more; --all lists every one)"; empty when
// nothing is missing. `shown` is a page of ListReturns(MISSING).
std::string MissingLines(const std::vector<muster::v1::MissingMinion>& shown,
                         const muster::v1::Completeness& c);

// Missing minions that received the job (received - returned).
uint64_t ReceivedMissing(const muster::v1::Completeness& c);

// A bar like "[#########-----.....]  47.3%" where '#' is ok, '!' failed and
// '.' missing, `width` characters between the brackets.
std::string ProgressBar(const muster::v1::Completeness& c, int width);

// The job's live progress: one bar for the total and one per datacenter.
std::vector<std::string> ProgressLines(const muster::v1::Job& job, int width);

// The job submitted line: "jid ... expected N (dc1 10, dc2 12)".
std::string SubmitSummary(const muster::v1::SubmitJobResponse& response);

// A line of `jobctl list`.
std::string JobListLine(const muster::v1::Job& job);

// Protobuf message as one JSON object (proto field names, all fields;
// output bytes as common/json/proto_json.h says), with DEL, C1 and bidi
// controls as \u escapes too (TerminalSafeJson): safe on a terminal.
std::string ToJson(const google::protobuf::Message& message);

// How `jobctl returns` prints a job's stdout and stderr: with control
// characters and invalid UTF-8 shown escaped (TerminalSafeBlock; newlines
// and tabs kept), or as the exact bytes (jobctl --raw, for piping).
enum class OutputBytes { kEscaped, kRaw };

// One return of `jobctl returns`: "ID  DC  ok retcode 0  12 ms" and under
// it the stdout, then the stderr, each line indented by four spaces.
std::string ReturnBlock(const muster::v1::Return& r, OutputBytes output);

// A missing minion in `jobctl returns`: "ID  DC  MISSING (never reached)".
std::string MissingReturnLine(const muster::v1::MissingMinion& m);

// A row of `jobctl minions`: id, datacenter, alive, last seen, the grains
// sorted as k=v,k=v.
std::string MinionLine(const muster::v1::Minion& m);

// "2026-11-28 19:55:01 UTC"; "-" for 0.
std::string FormatTime(int64_t unix_ms);
// "1.2 s", "35 ms", "2 min 5 s".
std::string FormatDuration(int64_t ms);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_FORMAT_H_
