// outbox_journal_bench: what the minion's durable outbox costs
// (minion/outbox_journal.h).
//
// The minion journals each return and fsyncs before sending it. It syncs
// once per batch of completions it drains, not once per return; this
// program shows why: it journals --returns returns of a typical size
// (cmd.run with a short output, about 300 bytes framed) into a journal in
// --dir, syncing after every return and then once per batch of 10, 100 and
// 1,000, and reports returns per second for each, plus the latency of one
// sync (accept record + fdatasync, what a dispatch waits before its
// function starts). Each run uses a fresh directory. It is a report: the
// exit code is 0 whatever the figures.
//
//   bazel-bin/bench/outbox_journal_bench [--dir=/var/tmp] [--returns=2000]
//                                        [--runs=3] [--json_out=FILE]

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_report.h"
#include "minion/outbox_journal.h"

ABSL_FLAG(std::string, dir, "/var/tmp",
          "Where to create the journals (use the disk the minion's --state_dir is on).");
ABSL_FLAG(int, returns, 2000, "Returns journaled per measurement.");
ABSL_FLAG(int, runs, 3, "Runs of each measurement.");
ABSL_FLAG(std::string, json_out, "", "If set, also write the rows as JSON here.");

namespace muster {
namespace {

// The i-th jid: 20 digits, like jobd's (20261202150000000000 + i; that
// number does not fit in 64 bits, so it is built as text).
std::string BenchJid(int i) { return absl::StrCat("2026120215", absl::Dec(i, absl::kZeroPad10)); }

wire::v1::Return TypicalReturn(int i) {
  wire::v1::Return ret;
  ret.set_jid(BenchJid(i));
  ret.set_attempt(1);
  ret.set_minion_id("web-00042.dc1.example.com");
  ret.set_success(true);
  ret.set_stdout(std::string(180, 'o'));
  ret.set_started_at_ms(1800000000000);
  ret.set_ended_at_ms(1800000000150);
  ret.set_function("cmd.run");
  return ret;
}

std::string FreshDir(int run, const std::string& what) {
  std::string dir = absl::StrCat(absl::GetFlag(FLAGS_dir), "/outbox_journal_bench-", getpid(),
                                 "-", what, "-", run);
  std::filesystem::remove_all(dir);
  return dir;
}

// Returns per second when syncing once per `batch` returns.
double ReturnsPerSecond(int run, int batch, int returns) {
  std::string dir = FreshDir(run, absl::StrCat("batch", batch));
  minion::JournalReplay replay;
  auto journal = minion::OutboxJournal::Open(dir, absl::Now(), &replay);
  if (!journal.ok()) {
    std::fprintf(stderr, "%s\n", journal.status().ToString().c_str());
    return 0;
  }
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < returns; ++i) {
    (*journal)->AppendProduced(TypicalReturn(i));
    if ((i + 1) % batch == 0 || i + 1 == returns) {
      if (absl::Status synced = (*journal)->Sync(); !synced.ok()) {
        std::fprintf(stderr, "%s\n", synced.ToString().c_str());
        return 0;
      }
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  journal->reset();
  std::filesystem::remove_all(dir);
  return returns / seconds;
}

// Median milliseconds of one accepted-dispatch record + Sync.
double AcceptSyncMs(int run, int samples) {
  std::string dir = FreshDir(run, "accept");
  minion::JournalReplay replay;
  auto journal = minion::OutboxJournal::Open(dir, absl::Now(), &replay);
  if (!journal.ok()) return 0;
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    minion::journal::v1::AcceptedDispatch dispatch;
    dispatch.set_jid(BenchJid(i));
    dispatch.set_attempt(1);
    dispatch.set_function("cmd.run");
    dispatch.set_deadline_ms(absl::ToUnixMillis(absl::Now() + absl::Minutes(1)));
    auto start = std::chrono::steady_clock::now();
    (*journal)->AppendAccepted(dispatch);
    if (!(*journal)->Sync().ok()) return 0;
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  journal->reset();
  std::filesystem::remove_all(dir);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace
}  // namespace muster

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int returns = std::max(absl::GetFlag(FLAGS_returns), 1);
  const int runs = std::max(absl::GetFlag(FLAGS_runs), 1);
  std::string command = absl::StrCat("outbox_journal_bench --dir=", absl::GetFlag(FLAGS_dir),
                                     " --returns=", returns, " --runs=", runs);
  muster::bench::BenchReport report("outbox_journal_bench", command, {"sync every"});
  for (int batch : {1, 10, 100, 1000}) {
    muster::bench::Row row;
    row.figure = "returns journaled";
    row.labels = {batch == 1 ? "return" : absl::StrCat(batch, " returns")};
    row.unit = "returns/s";
    row.format = "%.0f";
    for (int run = 0; run < runs; ++run) {
      row.values.push_back(muster::ReturnsPerSecond(run, batch, returns));
    }
    report.Add(row);
  }
  muster::bench::Row accept;
  accept.figure = "accept record + sync (median of 200)";
  accept.labels = {"dispatch"};
  accept.unit = "ms";
  for (int run = 0; run < runs; ++run) accept.values.push_back(muster::AcceptSyncMs(run, 200));
  report.Add(accept);
  std::printf("machine: %s\n", muster::bench::MachineInfo().c_str());
  report.Print();
  if (!absl::GetFlag(FLAGS_json_out).empty()) {
    absl::Status written = report.WriteJson(absl::GetFlag(FLAGS_json_out));
    if (!written.ok()) std::fprintf(stderr, "%s\n", written.ToString().c_str());
  }
  return 0;
}
