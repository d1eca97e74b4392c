#include "tests/dashboard_fixture.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/dashboard/dashboard_server.h"
#include "tests/support/jobd_access.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

HttpReply ToReply(const httplib::Result& result) {
  HttpReply reply;
  if (!result) return reply;
  reply.status = result->status;
  reply.body = result->body;
  reply.content_type = result->get_header_value("Content-Type");
  if (absl::StartsWith(reply.content_type, "application/json")) {
    reply.json = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  }
  return reply;
}

}  // namespace

void DashboardFixture::SetUp() {
  ASSERT_TRUE(redis_.Start().ok());
  auto connection = redis_.Connect();
  ASSERT_TRUE(connection.ok());
  redis_connection_ = std::move(*connection);
  relays_ = std::make_unique<RelayPlayer>(redis_connection_.get());
  server::JobdOptions options;
  options.listen = "127.0.0.1:0";
  options.http_listen = "127.0.0.1:0";
  options.redis = redis_.address();
  const std::string dir = MakeTempDir("dashboard");
  options.db_path = dir + "/muster.db";
  const JobdAccess access = JobdAccess::ForDir(dir);
  options.bootstrap_token_file = access.token_file;
  jobd_ = std::make_unique<server::Jobd>(options);
  absl::Status started = jobd_->Start();
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_GT(jobd_->http_port(), 0);
  auto channel = JobdChannel(absl::StrCat("127.0.0.1:", jobd_->port()), access);
  ASSERT_TRUE(channel.ok()) << channel.status();
  stub_ = v1::JobService::NewStub(*channel);
}

void DashboardFixture::TearDown() {
  if (jobd_) jobd_->Stop();
}

HttpReply DashboardFixture::Get(const std::string& path) {
  httplib::Client client("127.0.0.1", jobd_->http_port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  return ToReply(client.Get(path.c_str()));
}

HttpReply DashboardFixture::Post(const std::string& path, bool with_header) {
  httplib::Client client("127.0.0.1", jobd_->http_port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  httplib::Headers headers;
  if (with_header) headers.emplace(dashboard::kPostHeader, "1");
  return ToReply(client.Post(path.c_str(), headers, "", "text/plain"));
}

std::vector<std::string> DashboardFixture::Ids(const std::string& prefix, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back(absl::StrCat(prefix, i));
  return ids;
}

void DashboardFixture::AddMinions(const std::string& datacenter, const std::string& prefix,
                                  int count, const std::map<std::string, std::string>& grains) {
  ASSERT_TRUE(relays_->AddMinions(datacenter, Ids(prefix, count), grains, NowMs()).ok());
  minions_ += count;
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        v1::ListMinionsRequest request;
        v1::ListMinionsResponse response;
        return stub_->ListMinions(&context, request, &response).ok() &&
               response.total() == static_cast<uint64_t>(minions_);
      },
      absl::Seconds(10)));
}

std::string DashboardFixture::Submit(const std::string& glob, uint32_t timeout_ms) {
  grpc::ClientContext context;
  v1::SubmitJobRequest request;
  request.mutable_target()->set_type(v1::GLOB);
  request.mutable_target()->set_expression(glob);
  request.set_function("test.ping");
  request.set_timeout_ms(timeout_ms);
  request.set_submitter("dashboard-test");
  v1::SubmitJobResponse response;
  grpc::Status status = stub_->SubmitJob(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.jid();
}

v1::Job DashboardFixture::GetJob(const std::string& jid) {
  grpc::ClientContext context;
  v1::GetJobRequest request;
  request.set_jid(jid);
  v1::Job job;
  grpc::Status status = stub_->GetJob(&context, request, &job);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return job;
}

bool DashboardFixture::WaitForJob(const std::string& jid,
                                  const std::function<bool(const v1::Job&)>& done) {
  return WaitFor([&] { return done(GetJob(jid)); }, absl::Seconds(10));
}

void DashboardFixture::SendReturns(const std::string& datacenter, const std::string& jid,
                                   const std::vector<std::string>& ids,
                                   const std::vector<std::string>& failed, uint32_t attempt) {
  std::vector<wire::v1::Return> returns;
  for (const std::string& id : ids) {
    bool ok = std::find(failed.begin(), failed.end(), id) == failed.end();
    returns.push_back(RelayPlayer::MakeReturn(jid, attempt, id, ok));
  }
  ASSERT_TRUE(relays_->SendReturns(datacenter, returns).ok());
}

}  // namespace muster::testing
