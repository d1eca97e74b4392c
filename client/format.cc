#include "client/format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/json/proto_json.h"
#include "common/text/terminal_safe.h"

namespace muster::jobctl {

using muster::v1::Completeness;
using muster::v1::Job;

namespace {

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 100.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// The first `max_bytes` of well-formed UTF-8 `text`, cut before a whole
// character (never inside one).
std::string Clip(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

// The job's arguments as one field, each made terminal-safe.
std::string SafeArgs(const Job& job) {
  std::vector<std::string> args;
  for (const std::string& arg : job.args()) args.push_back(TerminalSafe(arg));
  return absl::StrJoin(args, " ");
}

// The ids jobctl prints of a delivery's unreachable minions.
constexpr int kUnreachableIdsShown = 5;

}  // namespace

std::string UnreachableText(const muster::v1::AttemptDelivery& delivery) {
  if (delivery.unreachable() == 0) return "";
  std::vector<std::string> ids;
  for (const std::string& id : delivery.unreachable_ids()) {
    if (static_cast<int>(ids.size()) == kUnreachableIdsShown) break;
    ids.push_back(TerminalSafe(id));
  }
  std::string out = absl::StrCat(delivery.unreachable(), " unreachable");
  if (ids.empty()) return out;
  const bool all = ids.size() == delivery.unreachable();
  return absl::StrCat(out, " (", all ? "" : "e.g. ", absl::StrJoin(ids, ", "), ")");
}

std::string CompletenessLine(const Completeness& c) {
  std::string line = absl::StrFormat(
      "expected %d · received %d · returned %d (%.1f%%) · ok %d · failed %d · missing %d",
      c.expected(), c.received(), c.returned(), Percent(c.returned(), c.expected()),
      c.succeeded(), c.failed(), c.missing());
  if (c.missing() > 0) {
    absl::StrAppend(&line, absl::StrFormat(" (%d received, no answer; %d never reached)",
                                           ReceivedMissing(c), c.expected() - c.received()));
  }
  absl::StrAppend(&line, " · unexpected ", c.unexpected());
  return line;
}

uint64_t ReceivedMissing(const Completeness& c) {
  return c.received() > c.returned() ? c.received() - c.returned() : 0;
}

std::string StateName(muster::v1::JobState state) {
  std::string name = muster::v1::JobState_Name(state);
  return name.empty() ? absl::StrCat("STATE_", static_cast<int>(state)) : name;
}

std::string TargetTypeName(muster::v1::TargetType type) {
  switch (type) {
    case muster::v1::LIST:
      return "list";
    case muster::v1::PCRE:
      return "pcre";
    case muster::v1::GRAIN:
      return "grain";
    case muster::v1::COMPOUND:
      return "compound";
    default:
      return "glob";
  }
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC", absl::FromUnixMillis(unix_ms),
                          absl::UTCTimeZone());
}

std::string FormatDuration(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 1000) return absl::StrCat(ms, " ms");
  if (ms < 60000) return absl::StrFormat("%.1f s", ms / 1000.0);
  return absl::StrFormat("%d min %d s", ms / 60000, (ms % 60000) / 1000);
}

std::string JobSummary(const Job& job) {
  std::string out = absl::StrFormat(
      "job %s  %s  %s %s  target %s '%s'  attempt %d\n", TerminalSafe(job.jid()),
      StateName(job.state()), TerminalSafe(job.function()), SafeArgs(job),
      TargetTypeName(job.target().type()), TerminalSafe(job.target().expression()),
      job.attempt());
  absl::StrAppend(&out, "submitted ", FormatTime(job.created_at_ms()));
  if (!job.submitter().empty()) absl::StrAppend(&out, " by ", TerminalSafe(job.submitter()));
  absl::StrAppend(&out, " · timeout ", FormatDuration(job.timeout_ms()));
  if (job.ended_at_ms() != 0) {
    absl::StrAppend(&out, " · ended after ",
                    FormatDuration(job.ended_at_ms() - job.created_at_ms()));
  }
  absl::StrAppend(&out, "\n", CompletenessLine(job.completeness()), "\n");
  if (job.datacenters_size() > 0) {
    absl::StrAppend(&out, "\n",
                    absl::StrFormat("%-12s %9s %9s %9s %9s %7s %8s %10s %11s  %s\n",
                                    "DATACENTER", "EXPECTED", "RECEIVED", "RETURNED", "OK",
                                    "FAILED", "MISSING", "UNREACHED", "UNEXPECTED",
                                    "DELIVERED"));
    for (const auto& dc : job.datacenters()) {
      std::string delivered;
      int64_t sent_at_ms = job.created_at_ms();
      for (const auto& attempt : job.attempts()) {
        if (attempt.attempt() == dc.delivery_attempt()) sent_at_ms = attempt.started_at_ms();
      }
      if (dc.delivered()) {
        delivered = absl::StrCat("+", FormatDuration(dc.delivered_at_ms() - sent_at_ms), " (",
                                 TerminalSafe(dc.relay_id()), ")");
      } else if (dc.expired_at_relay()) {
        delivered = "EXPIRED at relay (relay was cut off past the timeout)";
      } else if (dc.interrupted_at_relay()) {
        delivered = "INTERRUPTED at relay (killed while publishing; see received)";
      } else {
        delivered = "NOT DELIVERED";
      }
      // After a retry, say which attempt the column describes.
      if (job.attempt() > 1 && dc.delivery_attempt() != 0) {
        absl::StrAppend(&delivered, " [attempt ", dc.delivery_attempt(), "]");
      }
      const Completeness& c = dc.completeness();
      absl::StrAppend(&out, absl::StrFormat("%-12s %9d %9d %9d %9d %7d %8d %10d %11d  %s\n",
                                            TerminalSafe(dc.datacenter()), c.expected(),
                                            c.received(),
                                            c.returned(), c.succeeded(), c.failed(),
                                            c.missing(), c.expected() - c.received(),
                                            c.unexpected(), delivered));
    }
  }
  std::string unreachable = UnreachableLines(job);
  if (!unreachable.empty()) absl::StrAppend(&out, "\n", unreachable);
  if (job.attempts_size() > 1) absl::StrAppend(&out, "\n", AttemptsTable(job));
  return out;
}

std::string UnreachableLines(const Job& job) {
  std::string out;
  for (const auto& dc : job.datacenters()) {
    if (dc.unreachable() == 0) continue;
    muster::v1::AttemptDelivery delivery;
    delivery.set_unreachable(dc.unreachable());
    for (const auto& attempt : dc.attempts()) {
      if (attempt.attempt() == dc.delivery_attempt()) delivery = attempt;
    }
    absl::StrAppend(&out, TerminalSafe(dc.datacenter()), ": ", UnreachableText(delivery),
                    ": its bus cannot reach them (Salt: no accepted key at the salt-master); "
                    "they stay missing\n");
  }
  return out;
}

std::string AttemptsTable(const Job& job) {
  std::string out = absl::StrFormat("%-8s %-24s %-26s %9s  %s\n", "ATTEMPT", "STARTED", "STATE",
                                    "ASKED", "PER DATACENTER");
  for (const auto& attempt : job.attempts()) {
    std::vector<std::string> per_dc;
    for (const auto& dc : job.datacenters()) {
      for (const auto& d : dc.attempts()) {
        if (d.attempt() != attempt.attempt()) continue;
        std::string what;
        switch (d.status()) {
          case muster::v1::AttemptDelivery::NOT_SENT:
            what = "not sent";
            break;
          case muster::v1::AttemptDelivery::DELIVERED:
            what = absl::StrCat(d.asked(), " asked, delivered +",
                                FormatDuration(d.at_ms() - attempt.started_at_ms()), " (",
                                TerminalSafe(d.relay_id()), ")");
            break;
          case muster::v1::AttemptDelivery::EXPIRED:
            what = absl::StrCat(d.asked(), " asked, EXPIRED at relay");
            break;
          case muster::v1::AttemptDelivery::INTERRUPTED:
            what = absl::StrCat(d.asked(), " asked, INTERRUPTED at relay");
            break;
          default:
            what = absl::StrCat(d.asked(), " asked, NOT DELIVERED");
        }
        if (d.unreachable() > 0) absl::StrAppend(&what, ", ", UnreachableText(d));
        per_dc.push_back(absl::StrCat(TerminalSafe(dc.datacenter()), " ", what));
      }
    }
    std::string state = StateName(attempt.state());
    if (attempt.ended_at_ms() != 0) {
      absl::StrAppend(&state, " after ",
                      FormatDuration(attempt.ended_at_ms() - attempt.started_at_ms()));
    }
    absl::StrAppend(&out, absl::StrFormat("%-8d %-24s %-26s %9d  %s\n", attempt.attempt(),
                                          FormatTime(attempt.started_at_ms()), state,
                                          attempt.asked(), absl::StrJoin(per_dc, "; ")));
  }
  return out;
}

std::string MissingLines(const std::vector<muster::v1::MissingMinion>& shown,
                         const Completeness& c) {
  if (c.missing() == 0) return "";
  std::vector<std::string> received;
  std::vector<std::string> unreached;
  for (const muster::v1::MissingMinion& m : shown) {
    (m.received() ? received : unreached).push_back(TerminalSafe(m.minion_id()));
  }
  std::string out;
  auto line = [&out](absl::string_view what, const std::vector<std::string>& ids,
                     uint64_t total) {
    if (total == 0) return;
    if (!out.empty()) out += "\n";
    absl::StrAppend(&out, what, " (", total, "): ", absl::StrJoin(ids, ", "));
    if (total > ids.size()) {
      absl::StrAppend(&out, " ... (", total - ids.size(), " more; --all lists every one)");
    }
  };
  line("missing, received the job but did not answer", received, ReceivedMissing(c));
  line("missing, never reached", unreached, c.expected() - c.received());
  return out;
}

std::string ProgressBar(const Completeness& c, int width) {
  width = std::max(width, 10);
  uint64_t expected = std::max<uint64_t>(c.expected(), 1);
  int ok = static_cast<int>(c.succeeded() * width / expected);
  int failed = static_cast<int>(c.failed() * width / expected);
  if (c.failed() > 0 && failed == 0) failed = 1;
  ok = std::min(ok, width - failed);
  std::string bar = absl::StrCat("[", std::string(ok, '#'), std::string(failed, '!'),
                                 std::string(width - ok - failed, '.'), "]");
  return absl::StrFormat("%s %5.1f%%", bar, Percent(c.returned(), c.expected()));
}

std::vector<std::string> ProgressLines(const Job& job, int width) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrFormat("%-10s %s  %d/%d  failed %d  missing %d  %s", "total",
                                  ProgressBar(job.completeness(), width),
                                  job.completeness().returned(),
                                  job.completeness().expected(), job.completeness().failed(),
                                  job.completeness().missing(), StateName(job.state())));
  for (const auto& dc : job.datacenters()) {
    lines.push_back(absl::StrFormat("%-10s %s  %d/%d  %s", TerminalSafe(dc.datacenter()),
                                    ProgressBar(dc.completeness(), width),
                                    dc.completeness().returned(), dc.completeness().expected(),
                                    dc.delivered() ? "delivered" : "NOT DELIVERED"));
  }
  return lines;
}

std::string SubmitSummary(const muster::v1::SubmitJobResponse& response) {
  std::vector<std::string> per_dc;
  for (const auto& dc : response.expected_by_datacenter()) {
    per_dc.push_back(absl::StrCat(TerminalSafe(dc.datacenter()), " ", dc.expected()));
  }
  return absl::StrCat("jid ", TerminalSafe(response.jid()), "  expected ", response.expected(),
                      per_dc.empty() ? "" : absl::StrCat(" (", absl::StrJoin(per_dc, ", "), ")"));
}

std::string JobListLine(const Job& job) {
  const Completeness& c = job.completeness();
  return absl::StrFormat("%-20s  %-10s  %-12s  %-24s  %6d/%-6d ok %-6d failed %-5d missing %d",
                         TerminalSafe(job.jid()), StateName(job.state()),
                         TerminalSafe(job.function()),
                         Clip(TerminalSafe(job.target().expression()), 24), c.returned(),
                         c.expected(),
                         c.succeeded(), c.failed(), c.missing());
}

std::string ToJson(const google::protobuf::Message& message) {
  return TerminalSafeJson(ProtoToJson(message));
}

std::string ReturnBlock(const muster::v1::Return& r, OutputBytes output) {
  std::string out = absl::StrFormat(
      "%s  %s  %s retcode %d  %s%s%s\n", TerminalSafe(r.minion_id()),
      TerminalSafe(r.datacenter()), r.success() ? "ok" : "FAILED", r.retcode(),
      // A Salt minion's return has no start time (started_at_ms 0).
      r.started_at_ms() > 0 && r.ended_at_ms() >= r.started_at_ms()
          ? FormatDuration(r.ended_at_ms() - r.started_at_ms())
          : std::string("duration unknown"),
      r.truncated() ? "  (output truncated)" : "", r.expected() ? "" : "  (unexpected)");
  for (const std::string* text : {&r.stdout(), &r.stderr()}) {
    if (text->empty()) continue;
    std::string body = output == OutputBytes::kRaw ? *text : TerminalSafeBlock(*text);
    while (!body.empty() && body.back() == '\n') body.pop_back();
    absl::StrAppend(&out, "    ", absl::StrJoin(absl::StrSplit(body, '\n'), "\n    "), "\n");
  }
  return out;
}

std::string MissingReturnLine(const muster::v1::MissingMinion& m) {
  return absl::StrCat(TerminalSafe(m.minion_id()), "  ", TerminalSafe(m.datacenter()),
                      "  MISSING ", m.received() ? "(received, no answer)" : "(never reached)");
}

std::string MinionLine(const muster::v1::Minion& m) {
  std::vector<std::pair<std::string, std::string>> grains;
  for (const auto& [key, value] : m.grains()) {
    grains.emplace_back(TerminalSafe(key), TerminalSafe(value));
  }
  std::sort(grains.begin(), grains.end());
  return absl::StrFormat("%-36s %-8s %-6s %-25s %s", TerminalSafe(m.id()),
                         TerminalSafe(m.datacenter()), m.alive() ? "yes" : "NO",
                         FormatTime(m.last_seen_ms()),
                         absl::StrJoin(grains, ",", absl::PairFormatter("=")));
}

}  // namespace muster::jobctl
