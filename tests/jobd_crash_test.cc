// Crash safety of return ingestion: jobd (the real binary) is SIGKILLed
// while it ingests a large pre-filled returns stream, restarted, and every
// return must then be stored exactly once and counted exactly once.
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"
#include "common/sqlite/sqlite.h"
#include "tests/jobd_relay_player.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster {
namespace {

using testing::RelayPlayer;
using testing::WaitFor;

constexpr int kMinionsPerDatacenter = 100000;
const char* const kDatacenters[] = {"dc1", "dc2"};
constexpr int kTotal = 2 * kMinionsPerDatacenter;

class JobdCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = std::move(*connection);
    ASSERT_TRUE(redis_connection_->SetTimeout(absl::Seconds(30)).ok());
    relays_ = std::make_unique<RelayPlayer>(redis_connection_.get());
    port_ = testing::FreePort();
  }

  void StartJobd() {
    jobd_ = std::make_unique<testing::ChildProcess>();
    ASSERT_TRUE(jobd_
                    ->Start({testing::RunfilePath("server/jobd"),
                             absl::StrCat("--listen=127.0.0.1:", port_),
                             absl::StrCat("--redis=", redis_.address_string()),
                             absl::StrCat("--db=", dir_, "/muster.db"),
                             access_.JobdFlags()[0], "--returns_batch_entries=2"},
                            dir_ + "/jobd.log")
                    .ok());
    if (stub_ == nullptr) {
      // jobd writes its certificate and the admin token at its first start.
      auto stub = testing::JobdStub(absl::StrCat("127.0.0.1:", port_), access_);
      ASSERT_TRUE(stub.ok()) << stub.status();
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

  bool GetJob(const std::string& jid, v1::Job* job) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    v1::GetJobRequest request;
    request.set_jid(jid);
    return stub_->GetJob(&context, request, job).ok();
  }

  std::string dir_ = testing::MakeTempDir("jobd_crash");
  testing::JobdAccess access_ = testing::JobdAccess::ForDir(dir_);
  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayPlayer> relays_;
  int port_ = 0;
  std::unique_ptr<v1::JobService::Stub> stub_;
  std::unique_ptr<testing::ChildProcess> jobd_;
};

TEST_F(JobdCrashTest, SigkillDuringIngestionLosesAndDuplicatesNothing) {
  int64_t now = absl::ToUnixMillis(absl::Now());
  std::vector<std::vector<std::string>> ids(2);
  for (int d = 0; d < 2; ++d) {
    for (int i = 0; i < kMinionsPerDatacenter; ++i) {
      ids[d].push_back(absl::StrCat("m", d, "-", i, ".example.com"));
    }
    ASSERT_TRUE(relays_->AddMinions(kDatacenters[d], ids[d], {{"role", "web"}}, now).ok());
  }
  StartJobd();
  ASSERT_TRUE(WaitFor([&] { return MinionCount() == kTotal; }, absl::Seconds(30)))
      << jobd_->ReadLog();

  grpc::ClientContext context;
  v1::SubmitJobRequest submit;
  submit.mutable_target()->set_expression("m*");
  submit.set_function("test.ping");
  submit.set_timeout_ms(3600 * 1000);
  v1::SubmitJobResponse submitted;
  ASSERT_TRUE(stub_->SubmitJob(&context, submit, &submitted).ok());
  ASSERT_EQ(submitted.expected(), static_cast<uint64_t>(kTotal));
  const std::string jid = submitted.jid();
  jobd_->Stop();  // graceful: the returns below are read only after the restart

  // 200,000 returns in 400 entries, plus 2,000 resent ones (duplicates).
  for (int d = 0; d < 2; ++d) {
    std::vector<wire::v1::Return> returns;
    for (int i = 0; i < kMinionsPerDatacenter; ++i) {
      returns.push_back(RelayPlayer::MakeReturn(jid, 1, ids[d][i], i % 10 != 0));
    }
    ASSERT_TRUE(relays_->SendReturns(kDatacenters[d], returns, 500).ok());
    returns.resize(1000);
    ASSERT_TRUE(relays_->SendReturns(kDatacenters[d], returns, 500).ok());
  }

  // Kill as soon as the first batch is committed: watch the file itself
  // (WAL lets a reader in beside jobd's writer).
  StartJobd();
  auto watcher = Database::Open(dir_ + "/muster.db");
  ASSERT_TRUE(watcher.ok());
  int64_t committed_at_kill = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto count = (*watcher)->QueryInt("SELECT count(*) FROM returns");
        committed_at_kill = count.ok() ? *count : 0;
        return committed_at_kill > 0;
      },
      absl::Seconds(30)))
      << jobd_->ReadLog();
  jobd_->Kill();
  EXPECT_LT(committed_at_kill, kTotal) << "killed too late to matter";
  watcher->reset();

  StartJobd();
  v1::Job job;
  ASSERT_TRUE(WaitFor([&] { return GetJob(jid, &job) && job.state() == v1::COMPLETE; },
                      absl::Seconds(45)))
      << "returned " << job.completeness().returned() << "\n" << jobd_->ReadLog();
  EXPECT_EQ(job.completeness().returned(), static_cast<uint64_t>(kTotal));
  EXPECT_EQ(job.completeness().failed(), static_cast<uint64_t>(kTotal / 10));
  EXPECT_EQ(job.completeness().missing(), 0u);
  EXPECT_EQ(job.completeness().unexpected(), 0u);

  // Every entry ends up acknowledged.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto reply = redis_connection_->Command({"XPENDING", "muster:returns", "jobd"});
        return reply.ok() && reply->IsArray() && reply->size() > 0 &&
               reply->element(0)->integer == 0;
      },
      absl::Seconds(10)));
  jobd_->Stop();

  // Exactly once on disk.
  auto db = Database::Open(dir_ + "/muster.db");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM returns"), kTotal);
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(DISTINCT minion) FROM returns"), kTotal);
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM returns WHERE success = 0"), kTotal / 10);
}

}  // namespace
}  // namespace muster
