#include "tests/dashboard_fixture.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
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
  for (const auto& [name, value] : result->headers) reply.headers.emplace(name, value);
  if (absl::StartsWith(reply.content_type, "application/json")) {
    reply.json = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  }
  return reply;
}

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

// `text` as an application/x-www-form-urlencoded value.
std::string FormEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += absl::StrCat("%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

std::string HttpReply::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

void DashboardFixture::SetUp() {
  ASSERT_TRUE(redis_.Start().ok());
  auto connection = redis_.Connect();
  ASSERT_TRUE(connection.ok());
  redis_connection_ = std::move(*connection);
  relays_ = std::make_unique<RelayPlayer>(redis_connection_.get());
  std::string dir = MakeTempDir("dashboard");
  options_.listen = "127.0.0.1:0";
  options_.http_listen = "127.0.0.1:0";
  options_.redis = redis_.address();
  options_.db_path = dir + "/muster.db";
  options_.bootstrap_token_file = dir + "/admin.token";
  Configure(options_);
  jobd_ = std::make_unique<server::Jobd>(options_);
  absl::Status started = jobd_->Start();
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_GT(jobd_->http_port(), 0);
  if (!options_.insecure) {
    admin_token_ = ReadFileText(options_.bootstrap_token_file);
    ASSERT_FALSE(admin_token_.empty()) << "no bootstrap token in " << options_.bootstrap_token_file;
  }
  stub_ = StubWithToken(admin_token_);
  absl::StatusOr<WebSession> admin = Login(admin_token_);
  ASSERT_TRUE(admin.ok()) << admin.status();
  admin_ = *admin;
}

void DashboardFixture::TearDown() {
  if (jobd_) jobd_->Stop();
}

std::unique_ptr<v1::JobService::Stub> DashboardFixture::StubWithToken(
    const std::string& token) const {
  std::string target = absl::StrCat("127.0.0.1:", jobd_->port());
  if (options_.insecure) {
    return v1::JobService::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = jobd_->tls()->cert_pem;
  return v1::JobService::NewStub(grpc::CreateChannel(
      target, grpc::CompositeChannelCredentials(grpc::SslCredentials(ssl),
                                                grpc::AccessTokenCredentials(token))));
}

std::string DashboardFixture::Origin() const {
  return absl::StrCat(options_.insecure ? "http" : "https", "://127.0.0.1:", jobd_->http_port());
}

HttpReply DashboardFixture::Request(const std::string& method, const std::string& path,
                                    const httplib::Headers& headers, const std::string& body,
                                    const std::string& content_type) {
  std::unique_ptr<httplib::ClientImpl> client;
  if (options_.insecure) {
    client = std::make_unique<httplib::ClientImpl>("127.0.0.1", jobd_->http_port());
  } else {
    auto ssl = std::make_unique<httplib::SSLClient>("127.0.0.1", jobd_->http_port());
    ssl->set_ca_cert_path(jobd_->tls()->cert_path.c_str());
    ssl->enable_server_certificate_verification(true);
    client = std::move(ssl);
  }
  client->set_connection_timeout(5);
  client->set_read_timeout(5);
  if (method == "POST") {
    return ToReply(client->Post(path.c_str(), headers, body, content_type.c_str()));
  }
  return ToReply(client->Get(path.c_str(), headers));
}

absl::StatusOr<WebSession> DashboardFixture::Login(const std::string& token) {
  HttpReply reply;
  if (options_.insecure) {
    reply = Request("GET", "/api/session", {});
  } else {
    reply = Request("POST", "/login", {{"Origin", Origin()}},
                    absl::StrCat("token=", FormEncode(token)),
                    "application/x-www-form-urlencoded");
  }
  std::string cookie = reply.Header("Set-Cookie");
  std::string prefix = absl::StrCat(dashboard::kSessionCookie, "=");
  if (!absl::StartsWith(cookie, prefix)) {
    return absl::UnauthenticatedError(
        absl::StrCat("login refused: HTTP ", reply.status, " ", reply.body.substr(0, 300)));
  }
  WebSession session;
  session.cookie = cookie.substr(prefix.size(), cookie.find(';') - prefix.size());
  HttpReply info = GetAs(session, "/api/session");
  if (info.status != 200 || !info.json.contains("csrf_token")) {
    return absl::InternalError(absl::StrCat("/api/session: HTTP ", info.status, " ", info.body));
  }
  session.csrf_token = info.json["csrf_token"];
  return session;
}

HttpReply DashboardFixture::GetAs(const WebSession& session, const std::string& path) {
  return Request("GET", path, {{"Cookie", absl::StrCat(dashboard::kSessionCookie, "=", session.cookie)}});
}

HttpReply DashboardFixture::PostAs(const WebSession& session, const std::string& path,
                                   bool with_csrf) {
  httplib::Headers headers = {
      {"Cookie", absl::StrCat(dashboard::kSessionCookie, "=", session.cookie)},
      {"Origin", Origin()}};
  if (with_csrf) headers.emplace(dashboard::kCsrfHeader, session.csrf_token);
  return Request("POST", path, headers);
}

HttpReply DashboardFixture::Get(const std::string& path) {
  return Request("GET", path,
                 {{"Cookie", absl::StrCat(dashboard::kSessionCookie, "=", admin_.cookie)},
                  {"Authorization", absl::StrCat("Bearer ", admin_token_)}});
}

HttpReply DashboardFixture::Post(const std::string& path, bool with_csrf) {
  return PostAs(admin_, path, with_csrf);
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
