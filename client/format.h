// Human-readable rendering of jobs for jobctl: the completeness line, the
// per-datacenter table, progress bars and JSON. Pure functions of the API
// messages, so they are unit-tested without a server.
#ifndef MUSTER_CLIENT_FORMAT_H_
#define MUSTER_CLIENT_FORMAT_H_

#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "proto/job_service.pb.h"

namespace muster::jobctl {

// "expected 3000 · returned 2990 (99.7%) · ok 2985 · failed 5 · missing 10 ·
// unexpected 0"
std::string CompletenessLine(const muster::v1::Completeness& c);

// "COMPLETE", "INCOMPLETE", ...
std::string StateName(muster::v1::JobState state);
// "glob", "list", ...
std::string TargetTypeName(muster::v1::TargetType type);

// Header lines, the completeness line and one row per datacenter.
// One line per attempt of a job: start, how it ended, minions asked, and
// per datacenter whether it was sent and delivered (from DatacenterStatus
// .attempts).
std::string AttemptsTable(const muster::v1::Job& job);

std::string JobSummary(const muster::v1::Job& job);

// "missing (10): a, b, c ... (7 more; --all lists every one)"; empty when
// nothing is missing.
std::string MissingList(const std::vector<std::string>& shown, uint64_t total);

// A bar like "[#########-----.....]  47.3%" where '#' is ok, '!' failed and
// '.' missing, `width` characters between the brackets.
std::string ProgressBar(const muster::v1::Completeness& c, int width);

// The job's live progress: one bar for the total and one per datacenter.
std::vector<std::string> ProgressLines(const muster::v1::Job& job, int width);

// The job submitted line: "jid ... expected N (dc1 10, dc2 12)".
std::string SubmitSummary(const muster::v1::SubmitJobResponse& response);

// A line of `jobctl list`.
std::string JobListLine(const muster::v1::Job& job);

// Protobuf message as one JSON object (proto field names, all fields).
std::string ToJson(const google::protobuf::Message& message);

// "2026-11-28 19:55:01 UTC"; "-" for 0.
std::string FormatTime(int64_t unix_ms);
// "1.2 s", "35 ms", "2 min 5 s".
std::string FormatDuration(int64_t ms);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_FORMAT_H_
