// RelayProcess: relayd as a child process for integration tests and the
// benchmark, on fixed free ports and a state directory that survive a
// restart; and the Redis side of relay tests (add jobs, read the returns
// and events streams).
#ifndef MUSTER_TESTS_RELAY_PROCESS_H_
#define MUSTER_TESTS_RELAY_PROCESS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redis/redis_connection.h"
#include "common/security/signing_keys.h"
#include "proto/wire.pb.h"
#include "tests/support/process.h"

namespace muster::testing {

class RelayProcess {
 public:
  // `extra_flags` are appended to the defaults (fast heartbeat, short
  // inject delay, and --trusted_key=TestSigningKey() unless `extra_flags`
  // name trusted keys or --insecure); ports are chosen once and kept across
  // restarts.
  RelayProcess(std::string datacenter, std::string redis_address,
               std::vector<std::string> extra_flags = {});

  // Starts relayd and waits (up to 10 s) for its ready line.
  absl::Status Start();
  // SIGTERM and wait.
  int Stop() { return process_.Stop(); }
  // SIGKILL (a crash).
  void Kill() { process_.Kill(); }

  // The ports chosen at construction (kept across restarts); the endpoints
  // are known once Start() read relayd's ready line.
  int publish_port() const { return publish_port_; }
  int return_port() const { return return_port_; }
  const std::string& publish_endpoint() const { return publish_endpoint_; }
  const std::string& return_endpoint() const { return return_endpoint_; }
  const std::string& state_dir() const { return state_dir_; }
  // The relay's CURVE public key (Z85), read from <state_dir>/relay_curve.pub
  // (written at the first start; NotFound with --insecure or before it).
  absl::StatusOr<std::string> public_key() const;
  ChildProcess& process() { return process_; }

 private:
  std::string datacenter_;
  std::string redis_address_;
  std::vector<std::string> extra_flags_;
  int publish_port_;
  int return_port_;
  std::string state_dir_;
  std::string publish_endpoint_;
  std::string return_endpoint_;
  ChildProcess process_;
};

// A dispatch for `datacenter` with a deadline `timeout` from now.
wire::v1::JobEnvelope MakeJob(const std::string& jid, uint32_t attempt,
                              muster::v1::TargetType type, const std::string& expression,
                              const std::string& datacenter,
                              absl::Duration timeout = absl::Minutes(1));

// The key relay tests sign their dispatches with, as jobd would (one per
// test process), and the relayd flag that trusts it.
const security::SigningKey& TestSigningKey();
std::string TestTrustedKeyFlag();

// XADD muster:jobs:{dc} * job <envelope>, signed with TestSigningKey()
// first unless it already carries a signature.
// What jobd does for `jobctl keys accept`: records `minion_id` of
// `datacenter` ACCEPTED with `public_key` in muster:minion_keys:{dc} and
// increments muster:minion_keys_version:{dc}; relays apply it within ~1 s.
absl::Status AcceptMinionKey(RedisConnection& redis, const std::string& datacenter,
                             const std::string& minion_id, const std::string& public_key);

// XADD muster:jobs:{dc} * job <envelope>.
absl::Status AddJob(RedisConnection& redis, const wire::v1::JobEnvelope& job);
// XADD muster:jobs:{datacenter} * job <value>, as given (forgeries).
absl::Status AddJobBytes(RedisConnection& redis, const std::string& datacenter,
                         const std::string& value);

// Every entry of `stream` (XRANGE - +), as the value of its only field.
absl::StatusOr<std::vector<std::string>> ReadStreamValues(RedisConnection& redis,
                                                          const std::string& stream);
// The returns stream's batches / the events stream's events, parsed.
absl::StatusOr<std::vector<wire::v1::ReturnBatch>> ReadReturnBatches(RedisConnection& redis);
absl::StatusOr<std::vector<wire::v1::RelayEvent>> ReadRelayEvents(RedisConnection& redis);

}  // namespace muster::testing

#endif  // MUSTER_TESTS_RELAY_PROCESS_H_
