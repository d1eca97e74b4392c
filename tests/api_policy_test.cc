// Access control of the control plane (issue 17; docs/SECURITY.md 7.3-7.5)
// against a real secure cluster: jobd with TLS, tokens and a policy file,
// a relay and a fleetsim whose virtual minions have grains. Each principal
// has its own bearer token (made through CreateToken by the bootstrap
// admin) and its own TLS channel. Every refusal is checked three ways: the
// status code and message the caller gets, that nothing was written or
// dispatched, and the audit row an administrator reads with ListAudit.
//
// One cluster serves the suite (starting one takes seconds); the tests run
// in file order and the SIGHUP test puts the first policy back.
#include <signal.h>

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleet = 12;

// carol reads; bob (group ops) may run test.* and grains.items on web
// minions only (by grain); dave (ops too) is the rate limit's victim.
constexpr char kPolicy[] = R"json({
  "groups": {"ops": ["bob", "dave"], "viewers": ["carol"]},
  "rules": [
    {"name": "admins", "who": ["admin"], "rpcs": ["*"]},
    {"name": "ops-web", "who": ["group:ops"],
     "rpcs": ["@read", "SubmitJob", "RetryMissing", "CancelJob"],
     "functions": ["test.*", "grains.items"],
     "targets": {"type": "grain", "expression": "role:web"}},
    {"name": "read-only", "who": ["group:viewers"], "rpcs": ["@read"]}
  ]
})json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class ApiPolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    policy_dir_ = new std::string(MakeTempDir("api-policy"));
    policy_path_ = new std::string(*policy_dir_ + "/policy.json");
    WriteFile(*policy_path_, kPolicy);
    ClusterOptions options;
    DatacenterOptions dc1;
    dc1.name = "dc1";
    dc1.fleet.count = kFleet;
    dc1.fleet.latency_ms_max = 10;
    options.datacenters = {dc1};
    options.jobd_flags = {absl::StrCat("--policy=", *policy_path_), "--submit_rate=0.2",
                          "--submit_burst=4", "--max_watch_streams=3"};
    cluster_ = new Cluster(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
    stubs_ = new std::map<std::string, std::unique_ptr<v1::JobService::Stub>>;
    for (const char* principal : {"bob", "carol", "dave"}) {
      grpc::ClientContext context;
      v1::CreateTokenRequest request;
      request.set_principal(principal);
      v1::CreateTokenResponse response;
      grpc::Status created = cluster_->stub().CreateToken(&context, request, &response);
      ASSERT_TRUE(created.ok()) << created.error_message();
      JobdAccess access = cluster_->jobd_access();
      access.token_file = absl::StrCat(*policy_dir_, "/", principal, ".token");
      WriteFile(access.token_file, response.bearer_token() + "\n");
      auto stub = JobdStub(cluster_->jobd_address(), access);
      ASSERT_TRUE(stub.ok()) << stub.status();
      (*stubs_)[principal] = *std::move(stub);
    }
  }
  static void TearDownTestSuite() {
    delete stubs_;
    delete cluster_;
    delete policy_path_;
    delete policy_dir_;
  }

  static v1::JobService::Stub& As(const std::string& principal) {
    return *(*stubs_)[principal];
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return context;
  }

  static grpc::Status Submit(const std::string& principal, v1::TargetType type,
                             const std::string& expression, const std::string& function,
                             v1::SubmitJobResponse* response,
                             const std::vector<std::string>& args = {}) {
    v1::SubmitJobRequest request;
    request.mutable_target()->set_type(type);
    request.mutable_target()->set_expression(expression);
    request.set_function(function);
    for (const std::string& arg : args) request.add_args(arg);
    request.set_timeout_ms(30000);
    request.set_submitter("mallory");  // never believed
    return As(principal).SubmitJob(Context().get(), request, response);
  }

  // A job of the whole fleet that runs for 30 s (test.sleep), submitted by
  // the admin; "" (and a test failure) if it was refused.
  static std::string SleepingJob() {
    absl::StatusOr<v1::SubmitJobResponse> job =
        cluster_->Submit("*", "test.sleep", {"30"}, absl::Seconds(60));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->jid() : "";
  }

  static void CancelAsAdmin(const std::string& jid) {
    v1::CancelJobRequest cancel;
    cancel.set_jid(jid);
    v1::CancelJobResponse cancelled;
    EXPECT_TRUE(cluster_->stub().CancelJob(Context().get(), cancel, &cancelled).ok());
  }

  // The audit, newest first, as the admin reads it.
  static std::vector<v1::AuditEntry> Audit(const std::string& principal) {
    v1::ListAuditRequest request;
    request.set_principal(principal);
    request.set_page_size(1000);
    v1::ListAuditResponse response;
    grpc::Status status = cluster_->stub().ListAudit(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.entries().begin(), response.entries().end()};
  }

  // The minion ids of dc1 whose grain role has `role`.
  static std::vector<std::string> WithRole(const std::string& role) {
    v1::ListMinionsRequest request;
    request.set_page_size(1000);
    v1::ListMinionsResponse response;
    EXPECT_TRUE(cluster_->stub().ListMinions(Context().get(), request, &response).ok());
    std::vector<std::string> ids;
    for (const v1::Minion& minion : response.minions()) {
      auto it = minion.grains().find("role");
      if (it != minion.grains().end() && it->second == role) ids.push_back(minion.id());
    }
    return ids;
  }

  // The RPCs WhoAmI lists, or nullopt when WhoAmI itself is refused: for
  // polling across a reload that takes WhoAmI away for a moment.
  static std::optional<std::vector<std::string>> TryWhoAmIRpcs(const std::string& principal) {
    v1::WhoAmIResponse response;
    grpc::Status status =
        As(principal).WhoAmI(Context().get(), v1::WhoAmIRequest(), &response);
    if (!status.ok()) return std::nullopt;
    return std::vector<std::string>(response.rpcs().begin(), response.rpcs().end());
  }

  static std::vector<std::string> WhoAmIRpcs(const std::string& principal) {
    v1::WhoAmIResponse response;
    grpc::Status status =
        As(principal).WhoAmI(Context().get(), v1::WhoAmIRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.rpcs().begin(), response.rpcs().end()};
  }

  static Cluster* cluster_;
  static std::string* policy_dir_;
  static std::string* policy_path_;
  static std::map<std::string, std::unique_ptr<v1::JobService::Stub>>* stubs_;
};

Cluster* ApiPolicyTest::cluster_ = nullptr;
std::string* ApiPolicyTest::policy_dir_ = nullptr;
std::string* ApiPolicyTest::policy_path_ = nullptr;
std::map<std::string, std::unique_ptr<v1::JobService::Stub>>* ApiPolicyTest::stubs_ = nullptr;

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

TEST_F(ApiPolicyTest, WhoAmISaysPrincipalGroupsAndRpcs) {
  v1::WhoAmIResponse bob;
  ASSERT_TRUE(As("bob").WhoAmI(Context().get(), v1::WhoAmIRequest(), &bob).ok());
  EXPECT_EQ(bob.principal(), "bob");
  EXPECT_EQ(bob.authenticated_by(), "token");
  EXPECT_EQ(std::vector<std::string>(bob.groups().begin(), bob.groups().end()),
            std::vector<std::string>{"ops"});
  std::vector<std::string> rpcs(bob.rpcs().begin(), bob.rpcs().end());
  EXPECT_TRUE(Contains(rpcs, "SubmitJob"));
  EXPECT_TRUE(Contains(rpcs, "GetJob"));
  EXPECT_FALSE(Contains(rpcs, "ListAudit"));
  EXPECT_FALSE(Contains(rpcs, "ChangeMinionKey"));
  EXPECT_FALSE(Contains(WhoAmIRpcs("carol"), "SubmitJob"));
}

TEST_F(ApiPolicyTest, FunctionOutsideTheRuleIsRefusedNamingTheRule) {
  absl::StatusOr<std::vector<std::string>> before = cluster_->StoredJids();
  ASSERT_TRUE(before.ok());
  v1::SubmitJobResponse response;
  grpc::Status bob = Submit("bob", v1::GLOB, "*", "cmd.run", &response, {"id"});
  EXPECT_EQ(bob.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(bob.error_message(), "rule 'ops-web' allows SubmitJob but not function 'cmd.run'");
  grpc::Status carol = Submit("carol", v1::GLOB, "*", "cmd.run", &response, {"id"});
  EXPECT_EQ(carol.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(carol.error_message(), "rule 'read-only' names carol but does not allow SubmitJob");
  EXPECT_EQ(*cluster_->StoredJids(), *before);

  std::vector<v1::AuditEntry> rows = Audit("bob");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::DENIED);
  EXPECT_EQ(rows[0].rpc(), "SubmitJob");
  EXPECT_EQ(rows[0].function(), "cmd.run");
  EXPECT_EQ(rows[0].target(), "glob:*");
  EXPECT_EQ(rows[0].rule(), "ops-web");
  EXPECT_EQ(rows[0].reason(), bob.error_message());
  EXPECT_TRUE(absl::StartsWith(rows[0].peer(), "ipv4:127.0.0.1:")) << rows[0].peer();
}

TEST_F(ApiPolicyTest, TargetScopeIsCheckedOnTheFrozenExpectedSetByGrains) {
  std::vector<std::string> web = WithRole("web");
  std::vector<std::string> db = WithRole("db");
  ASSERT_FALSE(web.empty());
  ASSERT_FALSE(db.empty());
  absl::StatusOr<std::vector<std::string>> before = cluster_->StoredJids();
  ASSERT_TRUE(before.ok());

  // Looks like a web target, but names a db minion too.
  std::string sneaky = absl::StrCat("G@role:web or L@", db[0]);
  v1::SubmitJobResponse response;
  grpc::Status refused = Submit("bob", v1::COMPOUND, sneaky, "test.ping", &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(refused.error_message(),
            absl::StrCat("rule 'ops-web' allows SubmitJob of test.ping, but 1 of ",
                         web.size() + 1, " expected minions are outside its targets, e.g. ",
                         db[0]));
  // Nothing written (so nothing dispatched).
  EXPECT_EQ(*cluster_->StoredJids(), *before);
  std::vector<v1::AuditEntry> rows = Audit("bob");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::DENIED);
  EXPECT_EQ(rows[0].target(), absl::StrCat("compound:", sneaky));
  EXPECT_EQ(rows[0].expected(), web.size() + 1);
  EXPECT_EQ(rows[0].jid(), "");

  // The web minions alone are fine, and the job is bob's whatever the
  // request said.
  grpc::Status allowed = Submit("bob", v1::GRAIN, "role:web", "test.ping", &response);
  ASSERT_TRUE(allowed.ok()) << allowed.error_message();
  EXPECT_EQ(response.expected(), web.size());
  absl::StatusOr<v1::Job> job = cluster_->WaitForEnd(response.jid(), absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::COMPLETE);
  EXPECT_EQ(job->submitter(), "bob");
  rows = Audit("bob");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::ALLOWED);
  EXPECT_EQ(rows[0].jid(), response.jid());
  EXPECT_EQ(rows[0].rule(), "ops-web");
  EXPECT_EQ(rows[0].expected(), web.size());
}

TEST_F(ApiPolicyTest, ReadOnlyPrincipalCanReadButNotCancel) {
  absl::StatusOr<v1::SubmitJobResponse> job =
      cluster_->Submit("*", "test.sleep", {"20"}, absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  v1::GetJobRequest get;
  get.set_jid(job->jid());
  v1::Job seen;
  grpc::Status read = As("carol").GetJob(Context().get(), get, &seen);
  ASSERT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(seen.submitter(), "admin");
  v1::CancelJobRequest cancel;
  cancel.set_jid(job->jid());
  v1::CancelJobResponse cancelled;
  grpc::Status refused = As("carol").CancelJob(Context().get(), cancel, &cancelled);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(refused.error_message(), "rule 'read-only' names carol but does not allow CancelJob");
  absl::StatusOr<v1::Job> still = cluster_->GetJob(job->jid());
  ASSERT_TRUE(still.ok());
  EXPECT_NE(still->state(), v1::CANCELLED);

  std::vector<v1::AuditEntry> rows = Audit("carol");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].rpc(), "CancelJob");
  EXPECT_EQ(rows[0].jid(), job->jid());
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::DENIED);
  // Allowed reads leave no row.
  for (const v1::AuditEntry& row : rows) EXPECT_NE(row.rpc(), "GetJob");
  // The audit itself is for administrators.
  v1::ListAuditResponse audit;
  EXPECT_EQ(As("carol").ListAudit(Context().get(), v1::ListAuditRequest(), &audit).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  ASSERT_TRUE(cluster_->stub().CancelJob(Context().get(), cancel, &cancelled).ok());
  rows = Audit("admin");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].rpc(), "CancelJob");
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::ALLOWED);
}

TEST_F(ApiPolicyTest, SubmitRateLimitGivesResourceExhausted) {
  // --submit_burst=4, --submit_rate=0.2: dave's fifth call in a row is
  // refused (a new token takes 5 s).
  v1::SubmitJobResponse response;
  int ok = 0;
  grpc::Status last;
  for (int i = 0; i < 5; ++i) {
    last = Submit("dave", v1::GRAIN, "role:web", "test.ping", &response);
    if (last.ok()) ++ok;
  }
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(last.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(last.error_message().find("rate limit"), std::string::npos) << last.error_message();
  // Another principal has its own bucket.
  EXPECT_TRUE(Submit("bob", v1::GRAIN, "role:web", "test.ping", &response).ok());
  std::vector<v1::AuditEntry> rows = Audit("dave");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::DENIED);
  EXPECT_EQ(rows[0].reason(), last.error_message());
}

TEST_F(ApiPolicyTest, WatchStreamLimitGivesResourceExhausted) {
  absl::StatusOr<v1::SubmitJobResponse> job =
      cluster_->Submit("*", "test.sleep", {"30"}, absl::Seconds(60));
  ASSERT_TRUE(job.ok()) << job.status();
  v1::WatchJobRequest request;
  request.set_jid(job->jid());
  // --max_watch_streams=3: three streams open (each has its first message).
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::Job>>> streams;
  for (int i = 0; i < 3; ++i) {
    contexts.push_back(Context());
    streams.push_back(As("carol").WatchJob(contexts.back().get(), request));
    v1::Job first;
    ASSERT_TRUE(streams.back()->Read(&first)) << "stream " << i;
  }
  grpc::ClientContext fourth_context;
  std::unique_ptr<grpc::ClientReader<v1::Job>> fourth =
      As("bob").WatchJob(&fourth_context, request);
  v1::Job message;
  EXPECT_FALSE(fourth->Read(&message));
  grpc::Status refused = fourth->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("at most 3"), std::string::npos)
      << refused.error_message();
  std::vector<v1::AuditEntry> rows = Audit("bob");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].rpc(), "WatchJob");
  EXPECT_EQ(rows[0].jid(), job->jid());
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::DENIED);
  EXPECT_EQ(rows[0].reason(), refused.error_message());
  // Closing the streams gives the slots back.
  for (auto& context : contexts) context->TryCancel();
  for (auto& stream : streams) stream->Finish();
  EXPECT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        auto stream = As("bob").WatchJob(&context, request);
        v1::Job first;
        bool opened = stream->Read(&first);
        context.TryCancel();
        stream->Finish();
        return opened;
      },
      absl::Seconds(10)));
  v1::CancelJobRequest cancel;
  cancel.set_jid(job->jid());
  v1::CancelJobResponse cancelled;
  EXPECT_TRUE(cluster_->stub().CancelJob(Context().get(), cancel, &cancelled).ok());
}

TEST_F(ApiPolicyTest, BadTokensAreAuditedAtMostOncePerHostPerSecond) {
  JobdAccess access = cluster_->jobd_access();
  access.token_file = absl::StrCat(*policy_dir_, "/forged.token");
  // The right shape, an id nobody has, a made-up secret.
  const std::string id = "00000000deadbeef";
  WriteFile(access.token_file, absl::StrCat("mst_", id, "_", std::string(64, 'a'), "\n"));
  auto forged = JobdStub(cluster_->jobd_address(), access);
  ASSERT_TRUE(forged.ok()) << forged.status();
  absl::Time start = absl::Now();
  for (int i = 0; i < 20; ++i) {
    v1::Job job;
    v1::GetJobRequest request;
    request.set_jid("20261206000000000001");
    grpc::Status status = (*forged)->GetJob(Context().get(), request, &job);
    ASSERT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  }
  int64_t seconds = absl::ToInt64Seconds(absl::Now() - start) + 1;
  v1::ListAuditRequest request;
  request.add_decisions(v1::AuditEntry::UNAUTHENTICATED);
  request.set_page_size(1000);
  v1::ListAuditResponse response;
  ASSERT_TRUE(cluster_->stub().ListAudit(Context().get(), request, &response).ok());
  int rows = 0;
  for (const v1::AuditEntry& row : response.entries()) {
    if (!absl::StrContains(row.reason(), id)) continue;
    ++rows;
    EXPECT_EQ(row.principal(), "");
    EXPECT_EQ(row.rpc(), "GetJob");
  }
  EXPECT_GE(rows, 1);
  EXPECT_LE(rows, seconds + 1);  // one per second it spanned, at most
}

TEST_F(ApiPolicyTest, JobctlAuditShowsTheRowsAnAdminAsksFor) {
  std::string command = RunfilePath("client/jobctl");
  absl::StrAppend(&command, " --server=", cluster_->jobd_address());
  for (const std::string& flag : cluster_->jobd_access().JobctlFlags()) {
    absl::StrAppend(&command, " '", flag, "'");
  }
  absl::StrAppend(&command, " --principal=carol --denied --limit=2 audit");
  ChildProcess jobctl;
  std::string log = absl::StrCat(*policy_dir_, "/jobctl-audit.log");
  ASSERT_TRUE(jobctl.Start({"/bin/sh", "-c", command + " 2>&1"}, log).ok());
  absl::StatusOr<int> code = jobctl.Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  std::string output = jobctl.ReadLog();
  EXPECT_EQ(*code, 0) << output;
  // A header, carol's two newest refusals (ListAudit, then CancelJob), and
  // the hint that there are more.
  std::vector<std::string> lines =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(output), '\n');
  ASSERT_EQ(lines.size(), 4u) << output;
  EXPECT_TRUE(absl::StartsWith(lines[0], "SEQ")) << output;
  for (size_t i = 1; i <= 2; ++i) {
    EXPECT_NE(lines[i].find(" carol "), std::string::npos) << lines[i];
    EXPECT_NE(lines[i].find(" DENIED "), std::string::npos) << lines[i];
  }
  EXPECT_NE(lines[1].find(" ListAudit "), std::string::npos) << output;
  EXPECT_NE(lines[2].find("does not allow CancelJob"), std::string::npos) << output;
  EXPECT_EQ(lines[3], "(more: --limit=4)");
}

// An open WatchJob stream is not a pass for its lifetime: jobd checks the
// caller again every second (docs/SECURITY.md 7.5). A token revoked while
// its stream is open ends the stream UNAUTHENTICATED, audited.
TEST_F(ApiPolicyTest, AnOpenWatchStreamEndsWhenItsTokenIsRevoked) {
  grpc::ClientContext create_context;
  v1::CreateTokenRequest create;
  create.set_principal("carol");
  v1::CreateTokenResponse created;
  ASSERT_TRUE(cluster_->stub().CreateToken(&create_context, create, &created).ok());
  JobdAccess access = cluster_->jobd_access();
  access.token_file = absl::StrCat(*policy_dir_, "/carol-revoked.token");
  WriteFile(access.token_file, created.bearer_token() + "\n");
  auto stub = JobdStub(cluster_->jobd_address(), access);
  ASSERT_TRUE(stub.ok()) << stub.status();

  const std::string jid = SleepingJob();
  ASSERT_FALSE(jid.empty());
  v1::WatchJobRequest request;
  request.set_jid(jid);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::unique_ptr<grpc::ClientReader<v1::Job>> stream = (*stub)->WatchJob(&context, request);
  v1::Job message;
  ASSERT_TRUE(stream->Read(&message));

  grpc::ClientContext revoke_context;
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(created.token().token_id());
  v1::RevokeTokenResponse revoked;
  ASSERT_TRUE(cluster_->stub().RevokeToken(&revoke_context, revoke, &revoked).ok());
  absl::Time revoked_at = absl::Now();
  while (stream->Read(&message)) {
  }
  grpc::Status ended = stream->Finish();
  EXPECT_LT(absl::Now() - revoked_at, absl::Seconds(5)) << "the stream outlived its token";
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAUTHENTICATED) << ended.error_message();
  EXPECT_NE(ended.error_message().find("revoked"), std::string::npos) << ended.error_message();
  std::vector<v1::AuditEntry> rows = Audit("");
  bool audited = false;
  for (const v1::AuditEntry& row : rows) {
    audited = audited || (row.rpc() == "WatchJob" &&
                          row.decision() == v1::AuditEntry::UNAUTHENTICATED &&
                          row.reason().find("revoked") != std::string::npos);
  }
  EXPECT_TRUE(audited);
  // The suite's own carol token still watches.
  grpc::ClientContext again_context;
  again_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto again = As("carol").WatchJob(&again_context, request);
  EXPECT_TRUE(again->Read(&message));
  again_context.TryCancel();
  again->Finish();
  CancelAsAdmin(jid);
}

// A policy reload (SIGHUP) that takes WatchJob away from a principal ends
// its open streams PERMISSION_DENIED, audited DENIED; the others go on.
TEST_F(ApiPolicyTest, APolicyReloadEndsTheStreamsItNoLongerAllows) {
  const std::string jid = SleepingJob();
  ASSERT_FALSE(jid.empty());
  v1::WatchJobRequest request;
  request.set_jid(jid);
  grpc::ClientContext carol_context;
  carol_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto carol = As("carol").WatchJob(&carol_context, request);
  grpc::ClientContext bob_context;
  bob_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto bob = As("bob").WatchJob(&bob_context, request);
  v1::Job message;
  ASSERT_TRUE(carol->Read(&message));
  ASSERT_TRUE(bob->Read(&message));

  std::string changed = kPolicy;
  std::string from = R"("who": ["group:viewers"], "rpcs": ["@read"])";
  changed.replace(changed.find(from), from.size(),
                  R"("who": ["group:viewers"], "rpcs": ["GetJob", "ListJobs"])");
  WriteFile(*policy_path_, changed);
  ASSERT_EQ(kill(cluster_->jobd_pid(), SIGHUP), 0);
  absl::Time reloaded_at = absl::Now();
  while (carol->Read(&message)) {
  }
  grpc::Status ended = carol->Finish();
  EXPECT_LT(absl::Now() - reloaded_at, absl::Seconds(10)) << "the stream outlived its right";
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::PERMISSION_DENIED) << ended.error_message();
  std::vector<v1::AuditEntry> rows = Audit("carol");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].rpc(), "WatchJob");
  EXPECT_EQ(rows[0].jid(), jid);
  EXPECT_EQ(rows[0].decision(), v1::AuditEntry::DENIED);

  // bob's rule did not change: his stream is still open, and ends with the
  // job (cancelled below).
  CancelAsAdmin(jid);
  v1::Job last;
  while (bob->Read(&message)) last = message;
  EXPECT_TRUE(bob->Finish().ok());
  EXPECT_EQ(last.state(), v1::CANCELLED);

  // The first policy back. Until jobd has read it, carol's rule is the
  // changed one, which does not allow WhoAmI either: a refusal while
  // waiting is not a failure.
  WriteFile(*policy_path_, kPolicy);
  ASSERT_EQ(kill(cluster_->jobd_pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        std::optional<std::vector<std::string>> rpcs = TryWhoAmIRpcs("carol");
        return rpcs.has_value() && Contains(*rpcs, "WatchJob");
      },
      absl::Seconds(10)));
}

TEST_F(ApiPolicyTest, SighupReloadsAChangedPolicyAndKeepsItOnAnInvalidOne) {
  ASSERT_FALSE(Contains(WhoAmIRpcs("carol"), "CancelJob"));
  std::string changed = kPolicy;
  std::string from = R"("who": ["group:viewers"], "rpcs": ["@read"])";
  changed.replace(changed.find(from), from.size(),
                  R"("who": ["group:viewers"], "rpcs": ["@read", "CancelJob"])");
  WriteFile(*policy_path_, changed);
  ASSERT_EQ(kill(cluster_->jobd_pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitFor([&] { return Contains(WhoAmIRpcs("carol"), "CancelJob"); },
                      absl::Seconds(10)));

  std::string log = absl::StrCat(cluster_->dir(), "/jobd.log");
  WriteFile(*policy_path_, R"({"rules": [{"name": "x", "who": ["carol"], "rpcs": ["Everything"]}]})");
  ASSERT_EQ(kill(cluster_->jobd_pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(log), "policy not reloaded"); },
                      absl::Seconds(10)));
  EXPECT_TRUE(absl::StrContains(ReadFile(log), "unknown RPC 'Everything'"));
  // The policy in force stays.
  EXPECT_TRUE(Contains(WhoAmIRpcs("carol"), "CancelJob"));
  EXPECT_TRUE(Contains(WhoAmIRpcs("bob"), "SubmitJob"));

  WriteFile(*policy_path_, kPolicy);
  ASSERT_EQ(kill(cluster_->jobd_pid(), SIGHUP), 0);
  EXPECT_TRUE(WaitFor([&] { return !Contains(WhoAmIRpcs("carol"), "CancelJob"); },
                      absl::Seconds(10)));
}

}  // namespace
}  // namespace muster::testing
