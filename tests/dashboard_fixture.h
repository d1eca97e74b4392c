// DashboardFixture: an in-process jobd (real redis-server, real SQLite
// file, gRPC and the dashboard on free loopback ports) whose relays are
// played through Redis with RelayPlayer, writing exactly what relayd
// writes. The dashboard and jobd metrics tests drive it over HTTP.
//
// jobd runs secure (docs/SECURITY.md 7): gRPC over TLS with its
// self-signed pair, the bootstrap admin token, the dashboard over HTTPS.
// The fixture's gRPC stub calls as admin; Get/Post use a dashboard session
// of admin (logged in at SetUp) with its CSRF token and the dashboard's own
// Origin. A test can change jobd's options in Configure() (a policy, a
// client CA, --insecure).
#ifndef MUSTER_TESTS_DASHBOARD_FIXTURE_H_
#define MUSTER_TESTS_DASHBOARD_FIXTURE_H_

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "proto/job_service.grpc.pb.h"
#include "server/jobd.h"
#include "tests/jobd_relay_player.h"
#include "tests/support/redis_server.h"

namespace muster::testing {

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
  std::string content_type;
  nlohmann::json json;  // parsed body when it is JSON, else null
  std::multimap<std::string, std::string> headers;

  // The first value of header `name` (exact case as httplib keeps it), or "".
  std::string Header(const std::string& name) const;
};

// A logged-in dashboard session: its cookie value and CSRF token.
struct WebSession {
  std::string cookie;
  std::string csrf_token;
};

class DashboardFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Called by SetUp() before jobd starts.
  virtual void Configure(server::JobdOptions& options) {}

  // One request to the dashboard (HTTPS, verifying jobd's certificate;
  // HTTP when insecure; 5 s deadline) with exactly `headers`.
  HttpReply Request(const std::string& method, const std::string& path,
                    const httplib::Headers& headers, const std::string& body = "",
                    const std::string& content_type = "text/plain");
  // POST /login with `token` as the form does; the session when jobd set
  // a cookie. On an insecure jobd: GET /api/session.
  absl::StatusOr<WebSession> Login(const std::string& token);
  HttpReply GetAs(const WebSession& session, const std::string& path);
  // A POST from the dashboard's page: the session's cookie, its CSRF
  // token (unless !with_csrf) and the dashboard's Origin.
  HttpReply PostAs(const WebSession& session, const std::string& path, bool with_csrf = true);
  // GET as admin's session, also sending admin's bearer token (/metrics).
  HttpReply Get(const std::string& path);
  // PostAs admin's session.
  HttpReply Post(const std::string& path, bool with_csrf = true);
  // "https://127.0.0.1:PORT", the dashboard's own origin.
  std::string Origin() const;
  // A gRPC stub that calls with `token` (jobd's TLS; insecure channel
  // when insecure).
  std::unique_ptr<v1::JobService::Stub> StubWithToken(const std::string& token) const;

  // Inventory minions `{prefix}0 .. {prefix}{count-1}` in `datacenter`,
  // and waits until jobd lists them all.
  void AddMinions(const std::string& datacenter, const std::string& prefix, int count,
                  const std::map<std::string, std::string>& grains = {{"role", "web"}});
  // SubmitJob over gRPC (test.ping, `timeout_ms`); the jid.
  std::string Submit(const std::string& glob, uint32_t timeout_ms = 60000);
  v1::Job GetJob(const std::string& jid);
  // Polls GetJob until `done` (10 s).
  bool WaitForJob(const std::string& jid, const std::function<bool(const v1::Job&)>& done);
  // Sends one return per id (success unless in `failed`) through Redis.
  void SendReturns(const std::string& datacenter, const std::string& jid,
                   const std::vector<std::string>& ids,
                   const std::vector<std::string>& failed = {}, uint32_t attempt = 1);

  static std::vector<std::string> Ids(const std::string& prefix, int count);

  RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  std::unique_ptr<RelayPlayer> relays_;
  std::unique_ptr<server::Jobd> jobd_;
  std::unique_ptr<v1::JobService::Stub> stub_;  // as admin
  server::JobdOptions options_;
  std::string admin_token_;  // the bootstrap token
  WebSession admin_;
  int minions_ = 0;  // inventory size so far
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_DASHBOARD_FIXTURE_H_
