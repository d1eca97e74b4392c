// jobd_bench: jobd's own performance figures against a real redis-server
// and SQLite file, with jobd running as a child process (the real binary).
//
// It fills the inventory with --minions minions over 3 datacenters through
// relay inventory events, then measures:
//   - SubmitJob for a target matching every minion (client-side latency);
//   - return ingestion: jobd is stopped, one job's returns (one per minion,
//     500 per stream entry, as relays write them) are pre-filled in
//     muster:returns, jobd is started, and the rows committed in SQLite are
//     counted from a second connection; the rate is measured from the first
//     committed batch to the last (jobd's part alone: start-up excluded);
//   - GetJob on a job with half of its minions returned;
//   - jobd's peak resident memory (VmHWM) over the runs.
// Prints a table (figure | value | target | PASS/FAIL); --json_out writes
// the same rows as JSON. Exit code 0 whether or not targets are met.
//
//   bazel run -c opt //bench:jobd_bench -- [--minions=100000] [--runs=3]
//                                          [--json_out=/tmp/jobd_bench.json]
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "proto/job_service.grpc.pb.h"
#include "common/sqlite/sqlite.h"
#include "tests/jobd_relay_player.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

ABSL_FLAG(std::string, json_out, "", "If set, also write the result rows as JSON here.");
ABSL_FLAG(int, minions, 100000, "Inventory size (over 3 datacenters).");
ABSL_FLAG(int, runs, 3, "Repetitions of the ingestion and SubmitJob measurements.");
ABSL_FLAG(int, getjob_calls, 200, "GetJob calls timed.");

namespace muster {
namespace {

using testing::RelayPlayer;
const char* const kDatacenters[] = {"dc1", "dc2", "dc3"};

struct Row {
  std::string figure;
  std::string value;
  std::string target;
  bool pass;
};

struct Spread {
  double min, median, max;
};

Spread Summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return {values.front(), values[values.size() / 2], values.back()};
}

std::string Format(const Spread& s, const char* unit, const char* format = "%.1f") {
  return absl::StrCat(absl::StrFormat(format, s.min), " / ", absl::StrFormat(format, s.median),
                      " / ", absl::StrFormat(format, s.max), " ", unit);
}

long PeakRssKb(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class Bench {
 public:
  int Run() {
    if (!redis_.Start().ok()) return Fail("redis-server did not start");
    auto connection = redis_.Connect();
    if (!connection.ok()) return Fail("cannot connect to redis");
    redis_connection_ = std::move(*connection);
    (void)redis_connection_->SetTimeout(absl::Seconds(60));
    RelayPlayer relays(redis_connection_.get());
    port_ = testing::FreePort();
    stub_ = v1::JobService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                                        grpc::InsecureChannelCredentials()));
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

    std::vector<double> submit_ms, ingest_rate;
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
      peak_rss_kb_ = std::max(peak_rss_kb_, PeakRssKb(jobd_->pid()));
      jobd_->Stop();
      int64_t rows_before = CountRows();
      int64_t expected_rows = rows_before + minions + minions / 2;
      for (int d = 0; d < 3; ++d) {
        std::vector<wire::v1::Return> returns;
        for (size_t i = 0; i < ids[d].size(); ++i) {
          returns.push_back(RelayPlayer::MakeReturn(jid, 1, ids[d][i], true));
          if (i % 2 == 0) returns.push_back(RelayPlayer::MakeReturn(half_jid, 1, ids[d][i], true));
        }
        if (!relays.SendReturns(kDatacenters[d], returns, 500).ok()) {
          return Fail("cannot pre-fill returns");
        }
      }
      StartJobd();
      auto db = Database::Open(dir_ + "/muster.db");
      if (!db.ok()) return Fail("cannot open the db");
      int64_t first_rows = -1;
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
      if (!testing::WaitFor([&] { return MinionCount() == static_cast<uint64_t>(minions); },
                            absl::Seconds(30))) {
        return Fail("jobd did not come back");
      }
    }

    std::vector<double> get_ms;
    for (int i = 0; i < absl::GetFlag(FLAGS_getjob_calls); ++i) {
      v1::Job job;
      auto start = std::chrono::steady_clock::now();
      grpc::ClientContext context;
      v1::GetJobRequest request;
      request.set_jid(half_jid);
      if (!stub_->GetJob(&context, request, &job).ok()) return Fail("GetJob failed");
      get_ms.push_back(Ms(start));
      if (job.completeness().returned() != static_cast<uint64_t>((minions + 2) / 3 / 2 * 3) &&
          i == 0) {
        std::printf("note: half job has %lu of %d returned\n",
                    static_cast<unsigned long>(job.completeness().returned()), minions);
      }
    }
    peak_rss_kb_ = std::max(peak_rss_kb_, PeakRssKb(jobd_->pid()));
    jobd_->Stop();

    if (ingest_rate.empty()) return Fail("no ingestion measurement");
    Spread rate = Summarize(ingest_rate);
    Spread submit = Summarize(submit_ms);
    Spread get = Summarize(get_ms);
    std::vector<Row> rows = {
        {"return ingestion, Redis -> committed SQLite (returns/s, min/median/max)",
         Format(rate, "", "%.0f"), ">= 200000", rate.median >= 200000},
        {absl::StrCat("SubmitJob matching ", minions, " minions (ms, min/median/max)"),
         Format(submit, "ms"), "<= 100 ms", submit.median <= 100},
        {"GetJob on a half-returned 100k job (ms, min/median/max)", Format(get, "ms", "%.2f"),
         "<= 10 ms", get.median <= 10},
        {"jobd peak RSS (VmHWM)", absl::StrFormat("%.1f MB", peak_rss_kb_ / 1024.0), "<= 300 MB",
         peak_rss_kb_ > 0 && peak_rss_kb_ <= 300 * 1024},
    };
    Print(rows);
    return 0;
  }

 private:
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
         absl::StrCat("--db=", dir_, "/muster.db"), "--log_level=warn"},
        dir_ + "/jobd.log");
    if (!status.ok()) std::fprintf(stderr, "start jobd: %s\n", status.ToString().c_str());
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

  void Print(const std::vector<Row>& rows) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long memory_mb = sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGE_SIZE) / 1024;
    std::printf("jobd_bench: %d minions over 3 datacenters, %d runs; machine: %ld cores, %ld MB\n",
                absl::GetFlag(FLAGS_minions), absl::GetFlag(FLAGS_runs), cores, memory_mb);
    std::printf("%-72s | %-28s | %-10s | %s\n", "figure", "value", "target", "result");
    std::printf("%s\n", std::string(124, '-').c_str());
    nlohmann::json json = nlohmann::json::array();
    for (const Row& row : rows) {
      std::printf("%-72s | %-28s | %-10s | %s\n", row.figure.c_str(), row.value.c_str(),
                  row.target.c_str(), row.pass ? "PASS" : "FAIL");
      json.push_back({{"figure", row.figure},
                      {"value", row.value},
                      {"target", row.target},
                      {"result", row.pass ? "PASS" : "FAIL"}});
    }
    std::string path = absl::GetFlag(FLAGS_json_out);
    if (!path.empty()) std::ofstream(path) << json.dump(2) << "\n";
  }

  std::string dir_ = testing::MakeTempDir("jobd_bench");
  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  int port_ = 0;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::unique_ptr<testing::ChildProcess> jobd_;
  long peak_rss_kb_ = 0;
};

}  // namespace
}  // namespace muster

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return muster::Bench().Run();
}
