// jobd end to end, in-process: a real redis-server, a real SQLite file and
// gRPC over loopback. The tests play the relays' part through Redis
// (RelayPlayer) and check what the JobService reports.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "common/sqlite/sqlite.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"
#include "server/event_ingester.h"
#include "server/jobd.h"
#include "server/return_ingester.h"
#include "tests/jobd_relay_player.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster {
namespace {

// Who the test's calls authenticate as (the jobs' submitter): the
// bootstrap token's principal.
constexpr char kCallerPrincipal[] = "admin";

using muster::v1::JobService;
using muster::wire::v1::Delivery;
using testing::RelayPlayer;
using testing::WaitFor;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::vector<std::string> Ids(const std::string& prefix, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back(absl::StrCat(prefix, i));
  return ids;
}

class JobdServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = std::move(*connection);
    relays_ = std::make_unique<RelayPlayer>(redis_connection_.get());
    StartJobd();
  }

  void StartJobd() {
    server::JobdOptions options;
    options.listen = "127.0.0.1:0";
    options.redis = redis_.address();
    options.db_path = db_path_;
    options.default_timeout_ms = 30000;
    const testing::JobdAccess access = testing::JobdAccess::ForDir(db_path_.substr(0, db_path_.rfind('/')));
    options.bootstrap_token_file = access.token_file;
    jobd_ = std::make_unique<server::Jobd>(options);
    ASSERT_TRUE(jobd_->Start().ok());
    auto channel = testing::JobdChannel(absl::StrCat("127.0.0.1:", jobd_->port()), access);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *channel;
    stub_ = JobService::NewStub(channel_);
  }

  void TearDown() override {
    if (jobd_) jobd_->Stop();
  }

  // kNone when `envelope` verifies against the public key jobd wrote beside
  // its key (what relays and minions are given to trust).
  security::Refusal VerifyWithJobdsPublicKey(const wire::v1::JobEnvelope& envelope,
                                             const std::string& datacenter) {
    auto keys = security::TrustedKeys::Create(
        server::DefaultSigningKeyPath(db_path_) + ".pub", {});
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (!keys.ok()) return security::Refusal::kUnknownKey;
    security::DispatchVerifier verifier(keys->get(), datacenter);
    return verifier.Verify(envelope);
  }

  // dc1: web-a0..2 (role web), dc2: web-b0..1 (role web), dc3: db-c0 (role db).
  void AddFleet() {
    int64_t now = NowMs();
    ASSERT_TRUE(relays_->AddMinions("dc1", Ids("web-a", 3), {{"role", "web"}}, now).ok());
    ASSERT_TRUE(relays_->AddMinions("dc2", Ids("web-b", 2), {{"role", "web"}}, now).ok());
    ASSERT_TRUE(relays_->AddMinions("dc3", {"db-c0"}, {{"role", "db"}}, now).ok());
    ASSERT_TRUE(WaitFor([&] { return MinionCount() == 6; }, absl::Seconds(10)));
  }

  uint64_t MinionCount() {
    grpc::ClientContext context;
    v1::ListMinionsRequest request;
    v1::ListMinionsResponse response;
    return stub_->ListMinions(&context, request, &response).ok() ? response.total() : 0;
  }

  v1::SubmitJobResponse Submit(const std::string& expression, uint32_t timeout_ms = 0,
                               v1::TargetType type = v1::GLOB) {
    grpc::ClientContext context;
    v1::SubmitJobRequest request;
    request.mutable_target()->set_type(type);
    request.mutable_target()->set_expression(expression);
    request.set_function("test.ping");
    request.set_timeout_ms(timeout_ms);
    request.set_submitter("tester");
    v1::SubmitJobResponse response;
    grpc::Status status = stub_->SubmitJob(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::Job Get(const std::string& jid) {
    grpc::ClientContext context;
    v1::GetJobRequest request;
    request.set_jid(jid);
    v1::Job job;
    grpc::Status status = stub_->GetJob(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job;
  }

  v1::ListReturnsResponse ListReturns(const std::string& jid,
                                      v1::ListReturnsRequest::Filter filter,
                                      uint32_t page_size = 0, const std::string& token = "",
                                      const std::string& datacenter = "") {
    grpc::ClientContext context;
    v1::ListReturnsRequest request;
    request.set_jid(jid);
    request.set_filter(filter);
    request.set_page_size(page_size);
    request.set_page_token(token);
    request.set_datacenter(datacenter);
    v1::ListReturnsResponse response;
    grpc::Status status = stub_->ListReturns(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  std::string db_path_ = testing::MakeTempDir("jobd") + "/muster.db";
  testing::RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayPlayer> relays_;
  std::unique_ptr<server::Jobd> jobd_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<JobService::Stub> stub_;
};

TEST_F(JobdServiceTest, SubmitFreezesExpectedSetAndWritesOneEnvelopePerDatacenter) {
  AddFleet();
  v1::SubmitJobResponse submitted = Submit("web-*");
  EXPECT_EQ(submitted.jid().size(), 20u);
  EXPECT_EQ(submitted.expected(), 5u);
  ASSERT_EQ(submitted.expected_by_datacenter_size(), 2);
  EXPECT_EQ(submitted.expected_by_datacenter(0).datacenter(), "dc1");
  EXPECT_EQ(submitted.expected_by_datacenter(0).expected(), 3u);
  EXPECT_EQ(submitted.expected_by_datacenter(1).expected(), 2u);

  auto dc1 = relays_->Envelopes("dc1");
  ASSERT_TRUE(dc1.ok());
  ASSERT_EQ(dc1->size(), 1u);
  EXPECT_EQ((*dc1)[0].jid(), submitted.jid());
  EXPECT_EQ((*dc1)[0].attempt(), 1u);
  EXPECT_EQ((*dc1)[0].target().expression(), "web-*");
  EXPECT_EQ((*dc1)[0].datacenter(), "dc1");
  EXPECT_EQ((*dc1)[0].deadline_ms(), (*dc1)[0].created_at_ms() + 30000);
  EXPECT_EQ(relays_->Envelopes("dc2")->size(), 1u);
  EXPECT_TRUE(relays_->Envelopes("dc3")->empty());  // nobody expected there

  v1::Job job = Get(submitted.jid());
  EXPECT_EQ(job.state(), v1::RUNNING);
  EXPECT_EQ(job.completeness().expected(), 5u);
  EXPECT_EQ(job.completeness().missing(), 5u);
  EXPECT_EQ(job.datacenters_size(), 2);
  EXPECT_FALSE(job.datacenters(0).delivered());
  EXPECT_EQ(job.timeout_ms(), 30000u);
  // The principal of the call, never the request's submitter field.
  EXPECT_EQ(job.submitter(), kCallerPrincipal);

  // A grain target and a second jid that sorts after the first.
  v1::SubmitJobResponse db = Submit("role:db", 0, v1::GRAIN);
  EXPECT_EQ(db.expected(), 1u);
  EXPECT_GT(db.jid(), submitted.jid());
  // Nothing matches: recorded, complete at once, nothing dispatched.
  v1::SubmitJobResponse none = Submit("nomatch*");
  EXPECT_EQ(none.expected(), 0u);
  EXPECT_EQ(Get(none.jid()).state(), v1::COMPLETE);
}

// Every dispatch is signed (docs/PROTOCOL.md 8.1) with the key jobd created
// beside its db on first start: one signature per datacenter, each
// verifiable with the public key file, and a changed byte does not verify.
TEST_F(JobdServiceTest, EveryDispatchIsSignedWithTheKeyJobdCreatedBesideItsDb) {
  AddFleet();
  std::string jid = Submit("web-*").jid();
  ASSERT_FALSE(jobd_->signing_key_id().empty());
  for (const char* dc : {"dc1", "dc2"}) {
    auto envelopes = relays_->Envelopes(dc);
    ASSERT_TRUE(envelopes.ok());
    ASSERT_EQ(envelopes->size(), 1u) << dc;
    const wire::v1::JobEnvelope& envelope = (*envelopes)[0];
    EXPECT_EQ(envelope.datacenter(), dc);
    EXPECT_EQ(envelope.key_id(), jobd_->signing_key_id());
    EXPECT_EQ(envelope.nonce().size(), 16u);
    EXPECT_EQ(envelope.signature().size(), 64u);
    EXPECT_EQ(VerifyWithJobdsPublicKey(envelope, dc), security::Refusal::kNone) << dc;
    wire::v1::JobEnvelope forged = envelope;
    forged.set_attempt(envelope.attempt() + 100);
    EXPECT_EQ(VerifyWithJobdsPublicKey(forged, dc), security::Refusal::kBadSignature);
    EXPECT_EQ(VerifyWithJobdsPublicKey(envelope, "dc9"), security::Refusal::kWrongDatacenter);
  }
  // The same key after a restart.
  std::string key_id = jobd_->signing_key_id();
  jobd_->Stop();
  StartJobd();
  EXPECT_EQ(jobd_->signing_key_id(), key_id);
}

// SubmitJob answers once the job is committed and its envelopes are in
// Redis; RUNNING is written afterwards by the dispatcher's thread. Both
// halves: the state reaches the file, and a jobd that stopped before writing
// it (the file still says PENDING) dispatches the job again on start.
TEST_F(JobdServiceTest, RunningReachesTheStoreAndAPendingJobIsDispatchedAgainOnStart) {
  AddFleet();
  std::string jid = Submit("web-*").jid();
  EXPECT_EQ(Get(jid).state(), v1::RUNNING);
  auto stored_state = [&]() -> int64_t {
    auto db = Database::Open(db_path_);
    if (!db.ok()) return -1;
    auto state = (*db)->QueryInt(absl::StrCat("SELECT state FROM jobs WHERE jid='", jid, "'"));
    return state.ok() ? *state : -1;
  };
  EXPECT_TRUE(WaitFor([&] { return stored_state() == v1::RUNNING; }, absl::Seconds(5)))
      << "state in the file: " << stored_state();

  jobd_->Stop();
  {
    auto db = Database::Open(db_path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec(absl::StrCat("UPDATE jobs SET state=", static_cast<int>(v1::PENDING),
                                         " WHERE jid='", jid, "'")).ok());
  }
  ASSERT_EQ(relays_->Envelopes("dc1")->size(), 1u);
  StartJobd();
  // The same attempt again on each datacenter's stream (relays ignore the
  // repeat: they de-duplicate on jid and attempt), and RUNNING once more.
  EXPECT_TRUE(WaitFor([&] { return relays_->Envelopes("dc1")->size() == 2u; }, absl::Seconds(5)));
  auto dc1 = relays_->Envelopes("dc1");
  ASSERT_TRUE(dc1.ok());
  ASSERT_EQ(dc1->size(), 2u);
  EXPECT_EQ((*dc1)[1].jid(), jid);
  EXPECT_EQ((*dc1)[1].attempt(), 1u);
  // Signed again, with a new nonce, by the same key.
  EXPECT_NE((*dc1)[1].nonce(), (*dc1)[0].nonce());
  EXPECT_EQ((*dc1)[1].key_id(), jobd_->signing_key_id());
  EXPECT_EQ(VerifyWithJobdsPublicKey((*dc1)[1], "dc1"), security::Refusal::kNone);
  EXPECT_EQ(Get(jid).state(), v1::RUNNING);
  EXPECT_TRUE(WaitFor([&] { return stored_state() == v1::RUNNING; }, absl::Seconds(5)));
}

TEST_F(JobdServiceTest, RelayEntriesDriveCompletenessPerDatacenter) {
  AddFleet();
  std::string jid = Submit("web-*").jid();
  // A minion that joins after the submit: matched by web-*, not expected.
  ASSERT_TRUE(relays_->AddMinions("dc1", {"web-0new"}, {{"role", "web"}}, NowMs()).ok());
  ASSERT_TRUE(WaitFor([&] { return MinionCount() == 7; }, absl::Seconds(10)));
  ASSERT_TRUE(relays_->Deliver("dc1", jid, 1, Delivery::DELIVERED, 12345).ok());
  ASSERT_TRUE(relays_->Deliver("dc1", jid, 1, Delivery::DELIVERED, 99999).ok());  // first wins
  ASSERT_TRUE(relays_->Deliver("dc2", jid, 1, Delivery::EXPIRED, 777).ok());
  ASSERT_TRUE(relays_->Deliver("dc1", "20000101000000000000", 1, Delivery::DELIVERED, 1).ok());

  std::vector<wire::v1::Return> returns = {
      RelayPlayer::MakeReturn(jid, 1, "web-a0", true),
      RelayPlayer::MakeReturn(jid, 1, "web-a1", false),
      RelayPlayer::MakeReturn(jid, 1, "web-a0", true),   // duplicate
      RelayPlayer::MakeReturn(jid, 1, "web-0new", true),  // unexpected
      RelayPlayer::MakeReturn(jid, 1, "stray-1", true),   // not targeted: dropped
      RelayPlayer::MakeReturn(jid, 2, "web-a2", true),    // attempt never sent: dropped
      RelayPlayer::MakeReturn("20000101000000000000", 1, "web-a2", true),  // unknown job
      RelayPlayer::MakeReturn(jid, 1, "bad id!", true),  // malformed return
  };
  ASSERT_TRUE(relays_->SendReturns("dc1", returns, 2).ok());
  ASSERT_TRUE(relays_->AddRaw("returns", "batch", "\xff\xff not protobuf").ok());
  ASSERT_TRUE(relays_->AddRaw("returns", "other", "x").ok());
  ASSERT_TRUE(relays_->AddRaw("events", "event", "\x0a").ok());
  // Names that break docs/PROTOCOL.md 1: the whole entry is dropped, even
  // its good return (web-a2 stays missing).
  wire::v1::ReturnBatch bad_names;
  bad_names.set_relay_id("relay dc1!");
  bad_names.set_datacenter("dc1");
  *bad_names.add_returns() = RelayPlayer::MakeReturn(jid, 1, "web-a2", true);
  ASSERT_TRUE(relays_->AddRaw("returns", "batch", bad_names.SerializeAsString()).ok());
  bad_names.set_relay_id("relay-dc1");
  bad_names.set_datacenter("dc.1");
  ASSERT_TRUE(relays_->AddRaw("returns", "batch", bad_names.SerializeAsString()).ok());
  wire::v1::RelayEvent bad_event;
  bad_event.set_relay_id("relay/dc1");
  bad_event.set_datacenter("dc1");
  bad_event.set_at_ms(1);
  bad_event.mutable_delivery()->set_jid(jid);
  bad_event.mutable_delivery()->set_attempt(1);
  ASSERT_TRUE(relays_->AddRaw("events", "event", bad_event.SerializeAsString()).ok());

  ASSERT_TRUE(WaitFor(
      [&] {
        auto stats = jobd_->return_ingester().stats();
        return stats.malformed_entries == 4 && stats.returns == 3 &&
               jobd_->event_ingester().stats().malformed_entries == 2 &&
               jobd_->event_ingester().stats().deliveries == 3;
      },
      absl::Seconds(10)));
  server::ReturnIngesterStats stats = jobd_->return_ingester().stats();
  EXPECT_EQ(stats.duplicates, 1u);
  EXPECT_EQ(stats.unexpected, 1u);
  EXPECT_EQ(stats.not_targeted, 1u);
  EXPECT_EQ(stats.never_dispatched, 1u);
  EXPECT_EQ(stats.unknown_job, 1u);
  EXPECT_EQ(stats.malformed_returns, 1u);
  EXPECT_EQ(jobd_->event_ingester().stats().unknown_job, 1u);

  v1::Job job = Get(jid);
  EXPECT_EQ(job.state(), v1::RUNNING);
  EXPECT_EQ(job.completeness().expected(), 5u);
  EXPECT_EQ(job.completeness().returned(), 2u);
  EXPECT_EQ(job.completeness().succeeded(), 1u);
  EXPECT_EQ(job.completeness().failed(), 1u);
  EXPECT_EQ(job.completeness().missing(), 3u);
  EXPECT_EQ(job.completeness().unexpected(), 1u);
  ASSERT_EQ(job.datacenters_size(), 2);
  const v1::DatacenterStatus& dc1 = job.datacenters(0);
  EXPECT_EQ(dc1.datacenter(), "dc1");
  EXPECT_TRUE(dc1.delivered());
  EXPECT_EQ(dc1.delivered_at_ms(), 12345);
  EXPECT_EQ(dc1.relay_id(), "relay-dc1");
  EXPECT_EQ(dc1.completeness().returned(), 2u);
  EXPECT_EQ(dc1.completeness().missing(), 1u);
  EXPECT_EQ(dc1.completeness().unexpected(), 1u);
  const v1::DatacenterStatus& dc2 = job.datacenters(1);
  EXPECT_FALSE(dc2.delivered());
  EXPECT_TRUE(dc2.expired_at_relay());
  EXPECT_EQ(dc2.completeness().missing(), 2u);

  v1::ListReturnsResponse missing = ListReturns(jid, v1::ListReturnsRequest::MISSING);
  ASSERT_EQ(missing.missing_size(), 3);
  EXPECT_EQ(missing.missing(0).minion_id(), "web-a2");
  EXPECT_EQ(missing.missing(1).minion_id(), "web-b0");
  EXPECT_EQ(missing.missing(1).datacenter(), "dc2");
  EXPECT_EQ(ListReturns(jid, v1::ListReturnsRequest::MISSING, 0, "", "dc2").missing_size(), 2);
  v1::ListReturnsResponse page = ListReturns(jid, v1::ListReturnsRequest::MISSING, 2);
  EXPECT_EQ(page.missing_size(), 2);
  EXPECT_EQ(ListReturns(jid, v1::ListReturnsRequest::MISSING, 2, page.next_page_token())
                .missing(0)
                .minion_id(),
            "web-b1");

  v1::ListReturnsResponse all = ListReturns(jid, v1::ListReturnsRequest::ALL);
  ASSERT_EQ(all.returns_size(), 3);
  EXPECT_EQ(all.returns(0).minion_id(), "web-0new");
  EXPECT_FALSE(all.returns(0).expected());
  EXPECT_TRUE(all.returns(1).expected());
  EXPECT_EQ(all.returns(1).stdout(), "true");
  EXPECT_EQ(ListReturns(jid, v1::ListReturnsRequest::FAILED).returns_size(), 1);
  EXPECT_EQ(ListReturns(jid, v1::ListReturnsRequest::SUCCEEDED).returns_size(), 2);
  v1::ListReturnsResponse first = ListReturns(jid, v1::ListReturnsRequest::ALL, 2);
  EXPECT_EQ(first.returns_size(), 2);
  ASSERT_FALSE(first.next_page_token().empty());
  v1::ListReturnsResponse second =
      ListReturns(jid, v1::ListReturnsRequest::ALL, 2, first.next_page_token());
  ASSERT_EQ(second.returns_size(), 1);
  EXPECT_EQ(second.returns(0).minion_id(), "web-a1");
  EXPECT_TRUE(second.next_page_token().empty());

  // The rest answer: COMPLETE, and it survives a jobd restart.
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a2", true)}).ok());
  ASSERT_TRUE(relays_->SendReturns("dc2", {RelayPlayer::MakeReturn(jid, 1, "web-b0", true),
                                           RelayPlayer::MakeReturn(jid, 1, "web-b1", true)})
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).state() == v1::COMPLETE; }, absl::Seconds(10)));
  jobd_->Stop();
  StartJobd();
  job = Get(jid);
  EXPECT_EQ(job.state(), v1::COMPLETE);
  EXPECT_EQ(job.completeness().returned(), 5u);
  EXPECT_EQ(job.completeness().succeeded(), 4u);
  EXPECT_EQ(job.completeness().unexpected(), 1u);
  EXPECT_GT(job.ended_at_ms(), 0);
  EXPECT_EQ(job.datacenters(0).delivered_at_ms(), 12345);
  EXPECT_EQ(ListReturns(jid, v1::ListReturnsRequest::MISSING).missing_size(), 0);
}

// Returns in flight at the deadline: the job ends INCOMPLETE, and when the
// last missing one is recorded it becomes COMPLETE (never "INCOMPLETE with
// nothing missing"), its end moved to that moment; attempt 1's history says
// the same.
TEST_F(JobdServiceTest, LateReturnsThatLeaveNothingMissingMakeAnIncompleteJobComplete) {
  AddFleet();
  std::string jid = Submit("web-a*", 300).jid();
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a0", true)}).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).state() == v1::INCOMPLETE; }, absl::Seconds(10)));
  v1::Job incomplete = Get(jid);
  EXPECT_EQ(incomplete.completeness().missing(), 2u);

  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a1", true)}).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).completeness().returned() == 2; }, absl::Seconds(10)));
  EXPECT_EQ(Get(jid).state(), v1::INCOMPLETE) << "one is still missing";
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a2", false)}).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).completeness().returned() == 3; }, absl::Seconds(10)));
  v1::Job job = Get(jid);
  EXPECT_EQ(job.state(), v1::COMPLETE);
  EXPECT_EQ(job.completeness().missing(), 0u);
  EXPECT_EQ(job.completeness().failed(), 1u);
  EXPECT_GE(job.ended_at_ms(), incomplete.ended_at_ms());
  ASSERT_EQ(job.attempts_size(), 1);
  EXPECT_EQ(job.attempts(0).state(), v1::COMPLETE);
  EXPECT_EQ(job.attempts(0).ended_at_ms(), job.ended_at_ms());
}

// A receipt counts a minion as having the job, except when it declined it
// (the dispatch reached it after its deadline, or no longer matches): that
// minion never had the job and stays "never reached".
TEST_F(JobdServiceTest, DeclinedReceiptsDoNotCountAsReceived) {
  AddFleet();
  std::string jid = Submit("web-a*", 60000).jid();
  muster::wire::v1::ReturnBatch batch;
  batch.set_relay_id("relay-dc1");
  batch.set_datacenter("dc1");
  muster::wire::v1::DispatchReceipts* receipts = batch.add_receipts();
  receipts->set_jid(jid);
  receipts->set_attempt(1);
  receipts->add_minion_ids("web-a0");
  receipts->add_minion_ids("web-a1");
  receipts->add_declined("web-a1");
  ASSERT_TRUE(relays_->AddRaw("returns", "batch", batch.SerializeAsString()).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).completeness().received() == 1; },
                      absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));  // nothing more may be counted
  EXPECT_EQ(Get(jid).completeness().received(), 1u);
  std::map<std::string, bool> received;
  v1::ListReturnsResponse missing = ListReturns(jid, v1::ListReturnsRequest::MISSING);
  for (const v1::MissingMinion& m : missing.missing()) {
    received[m.minion_id()] = m.received();
  }
  EXPECT_EQ(received, (std::map<std::string, bool>{
                          {"web-a0", true}, {"web-a1", false}, {"web-a2", false}}));
  EXPECT_EQ(jobd_->return_ingester().stats().receipts_declined, 1u);
}

TEST_F(JobdServiceTest, TimeoutGivesIncompleteAndRetryMissingTargetsOnlyTheMissing) {
  AddFleet();
  std::string jid = Submit("web-*", 400).jid();
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a0", true),
                                           RelayPlayer::MakeReturn(jid, 1, "web-a1", true)})
                  .ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).state() == v1::INCOMPLETE; }, absl::Seconds(10)));
  v1::Job job = Get(jid);
  EXPECT_EQ(job.completeness().returned(), 2u);
  EXPECT_EQ(job.completeness().missing(), 3u);
  EXPECT_GE(job.ended_at_ms(), job.deadline_ms());

  // A late return is still recorded and counted.
  ASSERT_TRUE(relays_->SendReturns("dc2", {RelayPlayer::MakeReturn(jid, 1, "web-b0", false)}).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).completeness().returned() == 3; }, absl::Seconds(10)));
  EXPECT_EQ(Get(jid).state(), v1::INCOMPLETE);
  EXPECT_EQ(Get(jid).completeness().failed(), 1u);

  grpc::ClientContext context;
  v1::RetryMissingRequest retry;
  retry.set_jid(jid);
  retry.set_timeout_ms(20000);
  v1::RetryMissingResponse retried;
  ASSERT_TRUE(stub_->RetryMissing(&context, retry, &retried).ok());
  EXPECT_EQ(retried.attempt(), 2u);
  EXPECT_EQ(retried.retried(), 2u);
  ASSERT_EQ(retried.retried_by_datacenter_size(), 2);
  job = Get(jid);
  EXPECT_EQ(job.state(), v1::RUNNING);
  EXPECT_EQ(job.attempt(), 2u);
  EXPECT_EQ(job.ended_at_ms(), 0);

  auto dc1 = relays_->Envelopes("dc1");
  ASSERT_EQ(dc1->size(), 2u);
  EXPECT_EQ(dc1->back().attempt(), 2u);
  EXPECT_EQ(dc1->back().target().type(), v1::LIST);
  EXPECT_EQ(dc1->back().target().expression(), "web-a2");
  EXPECT_EQ(relays_->Envelopes("dc2")->back().target().expression(), "web-b1");

  // The failed web-b0 succeeds on attempt 2; the rest answer: COMPLETE.
  ASSERT_TRUE(relays_->SendReturns("dc2", {RelayPlayer::MakeReturn(jid, 2, "web-b0", true),
                                           RelayPlayer::MakeReturn(jid, 2, "web-b1", true)})
                  .ok());
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 2, "web-a2", true)}).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).state() == v1::COMPLETE; }, absl::Seconds(10)));
  job = Get(jid);
  EXPECT_EQ(job.completeness().returned(), 5u);
  EXPECT_EQ(job.completeness().succeeded(), 5u);
  EXPECT_EQ(job.completeness().failed(), 0u);

  grpc::ClientContext again;
  grpc::Status status = stub_->RetryMissing(&again, retry, &retried);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("no missing"), std::string::npos);
}

TEST_F(JobdServiceTest, CancelEndsTheJobAndIsRefusedTwice) {
  AddFleet();
  std::string jid = Submit("web-*").jid();
  grpc::ClientContext context;
  v1::CancelJobRequest request;
  request.set_jid(jid);
  v1::CancelJobResponse response;
  ASSERT_TRUE(stub_->CancelJob(&context, request, &response).ok());
  EXPECT_EQ(response.job().state(), v1::CANCELLED);
  EXPECT_GT(response.job().ended_at_ms(), 0);

  grpc::ClientContext twice;
  EXPECT_EQ(stub_->CancelJob(&twice, request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext retry_context;
  v1::RetryMissingRequest retry;
  retry.set_jid(jid);
  v1::RetryMissingResponse retried;
  grpc::Status status = stub_->RetryMissing(&retry_context, retry, &retried);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("cancelled"), std::string::npos);
  // Returns after the cancel are still recorded.
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a0", true)}).ok());
  ASSERT_TRUE(WaitFor([&] { return Get(jid).completeness().returned() == 1; }, absl::Seconds(10)));
  EXPECT_EQ(Get(jid).state(), v1::CANCELLED);
}

TEST_F(JobdServiceTest, WatchJobStreamsUpdatesUntilTheFinalState) {
  AddFleet();
  std::string jid = Submit("web-a*").jid();
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_jid(jid);
  request.set_interval_ms(50);
  auto reader = stub_->WatchJob(&context, request);
  v1::Job update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.jid(), jid);
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a0", true)}).ok());
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a1", true),
                                           RelayPlayer::MakeReturn(jid, 1, "web-a2", true)})
                  .ok());
  int updates = 1;
  while (reader->Read(&update)) ++updates;
  EXPECT_GE(updates, 2);
  EXPECT_EQ(update.state(), v1::COMPLETE);
  EXPECT_EQ(update.completeness().returned(), 3u);
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(JobdServiceTest, WatchJobSendsTheEndAtOnceWhateverTheInterval) {
  AddFleet();
  std::string jid = Submit("web-a0").jid();
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_jid(jid);
  request.set_interval_ms(60000);  // progress at most once a minute
  auto reader = stub_->WatchJob(&context, request);
  v1::Job update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_NE(update.state(), v1::COMPLETE);
  absl::Time returned = absl::Now();
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "web-a0", true)}).ok());
  ASSERT_TRUE(reader->Read(&update));
  // Not a minute: as soon as jobd committed the return.
  EXPECT_LT(absl::Now() - returned, absl::Seconds(10));
  EXPECT_EQ(update.state(), v1::COMPLETE);
  EXPECT_FALSE(reader->Read(&update));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(JobdServiceTest, ListJobsFiltersAndPagesNewestFirst) {
  AddFleet();
  std::string a = Submit("web-a*").jid();
  std::string b = Submit("web-b*").jid();
  std::string c = Submit("nothing*").jid();  // COMPLETE at once
  grpc::ClientContext context;
  v1::ListJobsRequest request;
  request.set_page_size(2);
  v1::ListJobsResponse response;
  ASSERT_TRUE(stub_->ListJobs(&context, request, &response).ok());
  ASSERT_EQ(response.jobs_size(), 2);
  EXPECT_EQ(response.jobs(0).jid(), c);
  EXPECT_EQ(response.jobs(1).jid(), b);
  ASSERT_FALSE(response.next_page_token().empty());
  grpc::ClientContext next;
  request.set_page_token(response.next_page_token());
  ASSERT_TRUE(stub_->ListJobs(&next, request, &response).ok());
  ASSERT_EQ(response.jobs_size(), 1);
  EXPECT_EQ(response.jobs(0).jid(), a);
  EXPECT_TRUE(response.next_page_token().empty());

  grpc::ClientContext filtered;
  v1::ListJobsRequest running;
  running.add_states(v1::RUNNING);
  running.set_submitter(kCallerPrincipal);
  ASSERT_TRUE(stub_->ListJobs(&filtered, running, &response).ok());
  EXPECT_EQ(response.jobs_size(), 2);
  grpc::ClientContext nobody;
  running.set_submitter("nobody");
  ASSERT_TRUE(stub_->ListJobs(&nobody, running, &response).ok());
  EXPECT_EQ(response.jobs_size(), 0);
}

TEST_F(JobdServiceTest, ListMinionsAndRelaysShowTheInventory) {
  AddFleet();
  ASSERT_TRUE(relays_->MinionsGone("dc1", {"web-a1"}, NowMs()).ok());
  ASSERT_TRUE(relays_->RelayHeartbeat("dc1", NowMs(), 5000).ok());
  ASSERT_TRUE(relays_->RelayHeartbeat("dc2", NowMs() - 60000, 5000).ok());
  ASSERT_TRUE(WaitFor([&] { return jobd_->event_ingester().stats().heartbeats == 2; },
                      absl::Seconds(10)));
  grpc::ClientContext context;
  v1::ListRelaysResponse relays;
  ASSERT_TRUE(stub_->ListRelays(&context, v1::ListRelaysRequest(), &relays).ok());
  ASSERT_EQ(relays.relays_size(), 2);
  EXPECT_EQ(relays.relays(0).relay_id(), "relay-dc1");
  EXPECT_TRUE(relays.relays(0).alive());
  EXPECT_FALSE(relays.relays(1).alive());
  EXPECT_EQ(relays.relays(0).minions_connected(), 7u);
  EXPECT_EQ(relays.relays(0).malformed_dropped(), 3u);
  EXPECT_EQ(relays.relays(0).version(), "test");

  grpc::ClientContext list_context;
  v1::ListMinionsRequest request;
  request.set_datacenter("dc1");
  request.set_page_size(2);
  v1::ListMinionsResponse minions;
  ASSERT_TRUE(stub_->ListMinions(&list_context, request, &minions).ok());
  EXPECT_EQ(minions.total(), 3u);
  ASSERT_EQ(minions.minions_size(), 2);
  EXPECT_EQ(minions.minions(0).id(), "web-a0");
  EXPECT_EQ(minions.minions(0).grains().at("role"), "web");
  EXPECT_EQ(minions.minions(0).relay_id(), "relay-dc1");
  EXPECT_FALSE(minions.minions(1).alive());
  grpc::ClientContext page_context;
  request.set_page_token(minions.next_page_token());
  ASSERT_TRUE(stub_->ListMinions(&page_context, request, &minions).ok());
  ASSERT_EQ(minions.minions_size(), 1);
  EXPECT_EQ(minions.minions(0).id(), "web-a2");

  grpc::ClientContext target_context;
  v1::ListMinionsRequest by_target;
  by_target.mutable_target()->set_type(v1::COMPOUND);
  by_target.mutable_target()->set_expression("G@role:web and not L@web-a0");
  ASSERT_TRUE(stub_->ListMinions(&target_context, by_target, &minions).ok());
  EXPECT_EQ(minions.total(), 4u);
}

TEST_F(JobdServiceTest, HealthIsServing) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext context;
  grpc::ByteBuffer request;  // HealthCheckRequest{service: ""} encodes to nothing
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  bool done = false;
  absl::Mutex mu;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      absl::MutexLock lock(&mu);
                      status = s;
                      done = true;
                    });
  ASSERT_TRUE(WaitFor([&] {
    absl::MutexLock lock(&mu);
    return done;
  }, absl::Seconds(5)));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  EXPECT_EQ(bytes, std::string("\x08\x01"));  // status: SERVING
}

// Each bad request gets INVALID_ARGUMENT (or NOT_FOUND) naming the field.
TEST_F(JobdServiceTest, BadRequestsAreRejectedWithClearMessages) {
  auto submit_error = [&](const std::function<void(v1::SubmitJobRequest*)>& edit) {
    v1::SubmitJobRequest request;
    request.mutable_target()->set_expression("web*");
    request.set_function("test.ping");
    edit(&request);
    grpc::ClientContext context;
    v1::SubmitJobResponse response;
    return stub_->SubmitJob(&context, request, &response);
  };
  auto expect_invalid = [](const grpc::Status& status, const std::string& needle) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find(needle), std::string::npos) << status.error_message();
  };
  expect_invalid(submit_error([](auto* r) { r->clear_target(); }), "target");
  expect_invalid(submit_error([](auto* r) { r->mutable_target()->set_expression(""); }),
                 "target");
  expect_invalid(submit_error([](auto* r) { r->mutable_target()->set_expression("web["); }),
                 "web[");
  expect_invalid(submit_error([](auto* r) {
                   r->mutable_target()->set_type(v1::PCRE);
                   r->mutable_target()->set_expression("(unclosed");
                 }),
                 "target");
  expect_invalid(submit_error([](auto* r) {
                   r->mutable_target()->set_type(static_cast<v1::TargetType>(42));
                 }),
                 "target.type 42");
  expect_invalid(submit_error([](auto* r) {
                   r->mutable_target()->set_type(v1::LIST);
                   r->mutable_target()->set_expression(std::string(65537, 'a'));
                 }),
                 "target.expression: 65537 bytes, at most 65536");
  expect_invalid(submit_error([](auto* r) { r->set_function("Cmd.Run"); }), "'Cmd.Run'");
  expect_invalid(submit_error([](auto* r) { r->set_function("ping"); }), "function");
  expect_invalid(submit_error([](auto* r) { r->set_timeout_ms(86400001); }),
                 "timeout_ms 86400001");
  expect_invalid(submit_error([](auto* r) {
                   for (int i = 0; i < 65; ++i) r->add_args("x");
                 }),
                 "args");
  expect_invalid(submit_error([](auto* r) { r->add_args(std::string(70000, 'x')); }), "args");
  expect_invalid(submit_error([](auto* r) { r->set_submitter(std::string(129, 's')); }),
                 "submitter");

  grpc::ClientContext c1;
  v1::GetJobRequest get;
  get.set_jid("123");
  v1::Job job;
  expect_invalid(stub_->GetJob(&c1, get, &job), "jid '123'");
  grpc::ClientContext c2;
  get.set_jid("20990101000000000000");
  grpc::Status status = stub_->GetJob(&c2, get, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("20990101000000000000"), std::string::npos);

  grpc::ClientContext c3;
  v1::WatchJobRequest watch;
  watch.set_jid("20990101000000000000");
  watch.set_interval_ms(10);
  auto reader = stub_->WatchJob(&c3, watch);
  while (reader->Read(&job)) {
  }
  expect_invalid(reader->Finish(), "interval_ms 10");
  grpc::ClientContext c3b;
  watch.set_interval_ms(0);
  auto missing_reader = stub_->WatchJob(&c3b, watch);
  while (missing_reader->Read(&job)) {
  }
  EXPECT_EQ(missing_reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext c4;
  v1::ListJobsRequest list;
  list.set_page_size(1001);
  v1::ListJobsResponse jobs;
  expect_invalid(stub_->ListJobs(&c4, list, &jobs), "page_size 1001");
  grpc::ClientContext c5;
  list.set_page_size(0);
  list.add_states(static_cast<v1::JobState>(9));
  expect_invalid(stub_->ListJobs(&c5, list, &jobs), "states");
  grpc::ClientContext c6;
  list.clear_states();
  list.set_created_after_ms(10);
  list.set_created_before_ms(5);
  expect_invalid(stub_->ListJobs(&c6, list, &jobs), "created_after_ms");
  grpc::ClientContext c6b;
  list.set_created_after_ms(0);
  list.set_page_token("garbage");
  expect_invalid(stub_->ListJobs(&c6b, list, &jobs), "page_token");

  grpc::ClientContext c7;
  v1::ListReturnsRequest returns;
  returns.set_jid("20990101000000000000");
  returns.set_page_size(10001);
  v1::ListReturnsResponse returns_response;
  expect_invalid(stub_->ListReturns(&c7, returns, &returns_response), "page_size 10001");
  grpc::ClientContext c8;
  returns.set_page_size(0);
  returns.set_datacenter("dc 1");
  expect_invalid(stub_->ListReturns(&c8, returns, &returns_response), "datacenter 'dc 1'");
  grpc::ClientContext c9;
  returns.set_datacenter("");
  EXPECT_EQ(stub_->ListReturns(&c9, returns, &returns_response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c9b;
  returns.set_page_token("no-slash");
  expect_invalid(stub_->ListReturns(&c9b, returns, &returns_response), "page_token");

  grpc::ClientContext c10;
  v1::RetryMissingRequest retry;
  retry.set_jid("20990101000000000000");
  v1::RetryMissingResponse retried;
  EXPECT_EQ(stub_->RetryMissing(&c10, retry, &retried).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c11;
  retry.set_timeout_ms(90000000);
  expect_invalid(stub_->RetryMissing(&c11, retry, &retried), "timeout_ms");
  grpc::ClientContext c12;
  v1::CancelJobRequest cancel;
  cancel.set_jid("x");
  v1::CancelJobResponse cancelled;
  expect_invalid(stub_->CancelJob(&c12, cancel, &cancelled), "jid 'x'");
  grpc::ClientContext c13;
  v1::ListMinionsRequest minions;
  minions.mutable_target()->set_type(v1::GRAIN);
  minions.mutable_target()->set_expression("nocolon");
  v1::ListMinionsResponse minions_response;
  expect_invalid(stub_->ListMinions(&c13, minions, &minions_response), "target");
  grpc::ClientContext c14;
  minions.clear_target();
  minions.set_page_size(20000);
  expect_invalid(stub_->ListMinions(&c14, minions, &minions_response), "page_size 20000");
}

}  // namespace
}  // namespace muster
