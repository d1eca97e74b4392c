// jobd_bench: jobd's own performance figures against a real redis-server
// and SQLite file, with jobd running as a child process (the real binary).
//
// It fills the inventory with --minions minions over 3 datacenters through
// relay inventory events, then measures:
//   - SubmitJob for a target matching every minion (client-side latency);
//   - return ingestion: jobd is stopped, one job's returns (one per minion,
//     in a random order as a fleet answers, --sorted_returns for id order;
//     500 per stream entry, as relays write them) are pre-filled in
//     muster:returns, jobd is started, and the rows committed in SQLite are
//     counted from a second connection; the rate is measured from the first
//     committed batch to the last (jobd's part alone: start-up excluded),
//     with jobd's CPU time per return;
//   - GetJob on a job with half of its minions returned;
//   - jobd's peak resident memory (VmHWM) over the runs;
//   - the SPEC's memory case: --finished_jobs more jobs of the whole
//     inventory, each fed all its returns through the returns stream and
//     waited to COMPLETE, then jobd's resident memory (VmRSS and VmHWM) and
//     GetJob on the oldest of them (finished jobs keep only counters in
//     memory; their per-minion state is in SQLite).
// Prints a table (figure | unit | min | median | max | target | result,
// bench/bench_report.h); --json_out writes the same rows as JSON. Exit code 0 whether or not targets are met.
//
//   bazel run -c opt //bench:jobd_bench -- [--minions=100000] [--runs=3]
//                                          [--json_out=/tmp/jobd_bench.json]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/bench_report.h"
#include "proto/job_service.grpc.pb.h"
#include "common/sqlite/sqlite.h"
#include "tests/jobd_relay_player.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

ABSL_FLAG(std::string, json_out, "", "If set, also write the result rows as JSON here.");
ABSL_FLAG(int, minions, 100000, "Inventory size (over 3 datacenters).");
ABSL_FLAG(bool, insecure, false,
          "Start jobd with --insecure (dispatches unsigned), to compare with the default "
          "(every dispatch signed).");
ABSL_FLAG(int, runs, 3, "Repetitions of the ingestion and SubmitJob measurements.");
ABSL_FLAG(bool, sorted_returns, false,
          "Pre-fill the returns in minion id order (the best case for SQLite's B-trees) "
          "instead of a random order, which is how a fleet answers.");
ABSL_FLAG(int, getjob_calls, 200, "GetJob calls timed.");
ABSL_FLAG(int, finished_jobs, 100,
          "Jobs of the whole inventory run to COMPLETE for the memory figure (0: skip).");

namespace muster {
namespace {

using testing::RelayPlayer;
const char* const kDatacenters[] = {"dc1", "dc2", "dc3"};

class Bench {
 public:
  explicit Bench(std::string command) : command_(std::move(command)) {}
  // The SQLite file grows to hundreds of MB with --finished_jobs: remove
  // the directory once jobd is gone.
  ~Bench() {
    jobd_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int Run() {
    if (!redis_.Start().ok()) return Fail("redis-server did not start");
    auto connection = redis_.Connect();
    if (!connection.ok()) return Fail("cannot connect to redis");
    redis_connection_ = std::move(*connection);
    (void)redis_connection_->SetTimeout(absl::Seconds(60));
    RelayPlayer relays(redis_connection_.get());
    port_ = testing::FreePort();
    const int minions = absl::GetFlag(FLAGS_minions);
    std::vector<std::vector<std::string>> ids(3);
    for (int i = 0; i < minions; ++i) {
      ids[i % 3].push_back(absl::StrFormat("web-%06d.%s.example.com", i, kDatacenters[i % 3]));
    }
    int64_t now = absl::ToUnixMillis(absl::Now());
    for (int d = 0; d < 3; ++d) {
      if (!relays.AddMinions(kDatacenters[d], ids[d], {{"role", "web"}, {"os", "linux"}}, now)
               .ok()) {
        return Fail("cannot write inventory events");
      }
    }
    StartJobd();
    if (!testing::WaitFor([&] { return MinionCount() == static_cast<uint64_t>(minions); },
                          absl::Seconds(60))) {
      return Fail("jobd did not load the inventory");
    }

    std::vector<double> submit_ms, ingest_rate, ingest_cpu_us;
    std::mt19937_64 shuffle(20261206);
    std::string half_jid;
    for (int run = 0; run < absl::GetFlag(FLAGS_runs); ++run) {
      // Submit two 100k jobs: one to ingest fully, one to be half returned.
      std::string jid;
      for (int k = 0; k < 2; ++k) {
        auto start = std::chrono::steady_clock::now();
        v1::SubmitJobResponse submitted;
        if (!Submit(&submitted) || submitted.expected() != static_cast<uint64_t>(minions)) {
          return Fail("SubmitJob failed or matched the wrong count");
        }
        submit_ms.push_back(Ms(start));
        (k == 0 ? jid : half_jid) = submitted.jid();
      }
      peak_rss_kb_ = std::max(peak_rss_kb_, testing::PeakResidentKb(jobd_->pid()));
      jobd_->Stop();
      int64_t rows_before = CountRows();
      int64_t expected_rows = rows_before + minions + minions / 2;
      for (int d = 0; d < 3; ++d) {
        std::vector<wire::v1::Return> returns;
        for (size_t i = 0; i < ids[d].size(); ++i) {
          returns.push_back(RelayPlayer::MakeReturn(jid, 1, ids[d][i], true));
          if (i % 2 == 0) returns.push_back(RelayPlayer::MakeReturn(half_jid, 1, ids[d][i], true));
        }
        if (!absl::GetFlag(FLAGS_sorted_returns)) {
          std::shuffle(returns.begin(), returns.end(), shuffle);
        }
        if (!relays.SendReturns(kDatacenters[d], returns, 500).ok()) {
          return Fail("cannot pre-fill returns");
        }
      }
      StartJobd();
      auto db = Database::Open(dir_ + "/muster.db");
      if (!db.ok()) return Fail("cannot open the db");
      int64_t first_rows = -1;
      double cpu_at_first = 0;
      auto first_time = std::chrono::steady_clock::now();
      auto last_time = first_time;
      bool done = testing::WaitFor(
          [&] {
            auto count = (*db)->QueryInt("SELECT count(*) FROM returns");
            if (!count.ok()) return false;
            auto t = std::chrono::steady_clock::now();
            if (first_rows < 0 && *count > rows_before) {
              first_rows = *count;
              first_time = t;
              cpu_at_first = testing::CpuSeconds(jobd_->pid());
            }
            last_time = t;
            return *count >= expected_rows;
          },
          absl::Seconds(120));
      if (!done || first_rows < 0) return Fail("ingestion did not finish");
      double seconds = std::chrono::duration<double>(last_time - first_time).count();
      if (seconds > 0 && expected_rows > first_rows) {
        ingest_rate.push_back((expected_rows - first_rows) / seconds);
      }
      // Over the same span as the rate: a cost that the machine's other
      // load hardly moves, unlike the rate.
      if (expected_rows > first_rows) {
        ingest_cpu_us.push_back((testing::CpuSeconds(jobd_->pid()) - cpu_at_first) * 1e6 /
                                static_cast<double>(expected_rows - first_rows));
      }
      if (!testing::WaitFor([&] { return MinionCount() == static_cast<uint64_t>(minions); },
                            absl::Seconds(30))) {
        return Fail("jobd did not come back");
      }
    }

    std::vector<double> get_ms;
    for (int i = 0; i < absl::GetFlag(FLAGS_getjob_calls); ++i) {
      auto start = std::chrono::steady_clock::now();
      absl::StatusOr<v1::Job> got = GetJob(half_jid);
      if (!got.ok()) return Fail("GetJob failed");
      get_ms.push_back(Ms(start));
      const v1::Job& job = *got;
      if (job.completeness().returned() != static_cast<uint64_t>((minions + 2) / 3 / 2 * 3) &&
          i == 0) {
        std::printf("note: half job has %lu of %d returned\n",
                    static_cast<unsigned long>(job.completeness().returned()), minions);
      }
    }
    peak_rss_kb_ = std::max(peak_rss_kb_, testing::PeakResidentKb(jobd_->pid()));

    FinishedJobs finished;
    if (absl::GetFlag(FLAGS_finished_jobs) > 0) {
      std::optional<FinishedJobs> measured = RunFinishedJobs(relays, ids);
      if (!measured.has_value()) return Fail("the finished-jobs phase failed");
      finished = *measured;
    }
    jobd_->Stop();

    if (ingest_rate.empty()) return Fail("no ingestion measurement");
    bench::BenchReport report("jobd_bench", command_);
    report.Add({"return ingestion, Redis -> committed SQLite", {}, "returns/s", ingest_rate,
                bench::Target::AtLeast(200000, "returns/s"), "%.0f"});
    report.Add({"jobd CPU per return ingested (user + system)", {}, "us", ingest_cpu_us,
                bench::Target::None(), "%.2f"});
    report.Add({absl::StrCat("SubmitJob matching ", minions, " minions"), {}, "ms", submit_ms,
                bench::Target::AtMost(100, "ms"), "%.1f"});
    report.Add({"GetJob on a half-returned 100k job", {}, "ms", get_ms,
                bench::Target::AtMost(10, "ms"), "%.2f"});
    std::vector<double> peak_mb;
    if (peak_rss_kb_ > 0) peak_mb.push_back(peak_rss_kb_ / 1024.0);
    report.Add({"jobd peak RSS (VmHWM)", {}, "MB", peak_mb, bench::Target::AtMost(300, "MB"),
                "%.1f"});
    if (finished.jobs > 0) {
      std::string with = absl::StrCat(finished.jobs, " finished ", minions, "-minion jobs");
      report.Add({absl::StrCat("jobd RSS (VmRSS) with ", with), {}, "MB",
                  {finished.rss_kb / 1024.0}, bench::Target::AtMost(300, "MB"), "%.1f"});
      report.Add({absl::StrCat("jobd peak RSS (VmHWM) after ", with), {}, "MB",
                  {finished.peak_kb / 1024.0}, bench::Target::AtMost(300, "MB"), "%.1f"});
      report.Add({absl::StrCat("GetJob on the oldest of ", with), {}, "ms", finished.getjob_ms,
                  bench::Target::AtMost(10, "ms"), "%.2f"});
      report.Add({"return ingestion while running them, returns stream -> COMPLETE", {},
                  "returns/s", {finished.returns_per_second}, bench::Target::None(), "%.0f"});
    }
    Print(report);
    return 0;
  }

 private:
  struct FinishedJobs {
    int jobs = 0;
    int64_t rss_kb = 0;
    int64_t peak_kb = 0;
    std::vector<double> getjob_ms;
    double returns_per_second = 0;
  };

  // Runs --finished_jobs jobs of the whole inventory to COMPLETE, one after
  // the other: submit, write every minion's return to the returns stream
  // (500 per entry, as relays do), wait for COMPLETE. Then measures memory
  // and GetJob on the oldest job.
  std::optional<FinishedJobs> RunFinishedJobs(RelayPlayer& relays,
                                              const std::vector<std::vector<std::string>>& ids) {
    FinishedJobs result;
    const int jobs = absl::GetFlag(FLAGS_finished_jobs);
    std::string oldest;
    uint64_t expected = 0;
    for (const auto& dc : ids) expected += dc.size();
    auto start = std::chrono::steady_clock::now();
    for (int j = 0; j < jobs; ++j) {
      v1::SubmitJobResponse submitted;
      if (!Submit(&submitted) || submitted.expected() != expected) return std::nullopt;
      if (j == 0) oldest = submitted.jid();
      for (int d = 0; d < 3; ++d) {
        std::vector<wire::v1::Return> returns;
        returns.reserve(ids[d].size());
        for (const std::string& id : ids[d]) {
          returns.push_back(RelayPlayer::MakeReturn(submitted.jid(), 1, id, true));
        }
        if (!relays.SendReturns(kDatacenters[d], returns, 500).ok()) return std::nullopt;
      }
      bool complete = testing::WaitFor(
          [&] {
            absl::StatusOr<v1::Job> job = GetJob(submitted.jid());
            return job.ok() && job->state() == v1::COMPLETE &&
                   job->completeness().returned() == expected;
          },
          absl::Seconds(120));
      if (!complete) {
        std::fprintf(stderr, "jobd_bench: job %d (%s) did not complete\n", j + 1,
                     submitted.jid().c_str());
        return std::nullopt;
      }
      if ((j + 1) % 10 == 0) {
        std::printf("   %d of %d finished jobs, jobd RSS %.1f MB\n", j + 1, jobs,
                    testing::ResidentKb(jobd_->pid()) / 1024.0);
        std::fflush(stdout);
      }
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.jobs = jobs;
    result.returns_per_second = static_cast<double>(expected) * jobs / seconds;
    result.rss_kb = testing::ResidentKb(jobd_->pid());
    for (int i = 0; i < absl::GetFlag(FLAGS_getjob_calls); ++i) {
      auto called = std::chrono::steady_clock::now();
      absl::StatusOr<v1::Job> job = GetJob(oldest);
      if (!job.ok() || job->completeness().returned() != expected) return std::nullopt;
      result.getjob_ms.push_back(Ms(called));
    }
    result.peak_kb = testing::PeakResidentKb(jobd_->pid());
    return result;
  }

  absl::StatusOr<v1::Job> GetJob(const std::string& jid) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetJobRequest request;
    request.set_jid(jid);
    v1::Job job;
    grpc::Status status = stub_->GetJob(&context, request, &job);
    if (!status.ok()) return absl::UnavailableError(status.error_message());
    return job;
  }

  static double Ms(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  int Fail(const std::string& what) {
    std::fprintf(stderr, "jobd_bench: %s\n", what.c_str());
    if (jobd_) std::fprintf(stderr, "%s\n", jobd_->ReadLog().c_str());
    return 1;
  }

  void StartJobd() {
    jobd_ = std::make_unique<testing::ChildProcess>();
    absl::Status status = jobd_->Start(
        {testing::RunfilePath("server/jobd"), absl::StrCat("--listen=127.0.0.1:", port_),
         absl::StrCat("--redis=", redis_.address_string()),
         absl::StrCat("--db=", dir_, "/muster.db"), "--log_level=warn",
         absl::StrCat("--insecure=", absl::GetFlag(FLAGS_insecure) ? "true" : "false"),
         absl::StrCat("--bootstrap_token_file=", access_.token_file)},
        dir_ + "/jobd.log");
    if (!status.ok()) std::fprintf(stderr, "start jobd: %s\n", status.ToString().c_str());
    if (stub_ == nullptr) {
      // TLS with jobd's self-signed certificate and the admin token, both
      // written at its first start (plaintext with --insecure).
      auto stub = testing::JobdStub(absl::StrCat("127.0.0.1:", port_), access_);
      if (!stub.ok()) {
        std::fprintf(stderr, "jobd client: %s\n", stub.status().ToString().c_str());
        return;
      }
      stub_ = *std::move(stub);
    }
  }

  uint64_t MinionCount() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::ListMinionsRequest request;
    request.set_page_size(1);
    v1::ListMinionsResponse response;
    return stub_->ListMinions(&context, request, &response).ok() ? response.total() : 0;
  }

  bool Submit(v1::SubmitJobResponse* response) {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    request.mutable_target()->set_expression("web-*");
    request.set_function("test.ping");
    request.set_timeout_ms(3600 * 1000);
    request.set_submitter("bench");
    return stub_->SubmitJob(&context, request, response).ok();
  }

  int64_t CountRows() {
    auto db = Database::Open(dir_ + "/muster.db");
    if (!db.ok()) return 0;
    auto count = (*db)->QueryInt("SELECT count(*) FROM returns");
    return count.ok() ? *count : 0;
  }

  void Print(const bench::BenchReport& report) {
    std::printf("jobd_bench: %d minions over 3 datacenters, %d runs (min / median / max are "
                "over all SubmitJob and GetJob calls)\ncommand: %s\nmachine: %s\n",
                absl::GetFlag(FLAGS_minions), absl::GetFlag(FLAGS_runs), command_.c_str(),
                bench::MachineInfo().c_str());
    report.Print();
    std::string path = absl::GetFlag(FLAGS_json_out);
    if (path.empty()) return;
    if (absl::Status written = report.WriteJson(path); !written.ok()) {
      std::fprintf(stderr, "jobd_bench: %s\n", written.ToString().c_str());
    }
  }

  std::string dir_ = testing::MakeTempDir("jobd_bench");
  testing::JobdAccess access_ = testing::JobdAccess::ForDir(dir_, absl::GetFlag(FLAGS_insecure));
  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  int port_ = 0;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::unique_ptr<testing::ChildProcess> jobd_;
  int64_t peak_rss_kb_ = 0;
  std::string command_;
};

}  // namespace
}  // namespace muster

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return muster::Bench(absl::StrJoin(argv, argv + argc, " ")).Run();
}
