// DashboardFixture: an in-process jobd (real redis-server, real SQLite
// file, gRPC and the HTTP dashboard on free loopback ports) whose relays are
// played through Redis with RelayPlayer, writing exactly what relayd
// writes. The dashboard and jobd metrics tests drive it over HTTP.
#ifndef MUSTER_TESTS_DASHBOARD_FIXTURE_H_
#define MUSTER_TESTS_DASHBOARD_FIXTURE_H_

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

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
};

class DashboardFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // HTTP on the dashboard port (5 s deadline).
  HttpReply Get(const std::string& path);
  // POST with the dashboard's header (or without it).
  HttpReply Post(const std::string& path, bool with_header = true);

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
  std::unique_ptr<v1::JobService::Stub> stub_;
  int minions_ = 0;  // inventory size so far
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_DASHBOARD_FIXTURE_H_
