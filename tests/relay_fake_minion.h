// FakeMinion: a minion reduced to its bus protocol, written straight from
// docs/PROTOCOL.md section 3 with raw ZeroMQ sockets (SUB on the publish
// port, DEALER on the return port), so relay tests also prove the document.
// Single-threaded: call Pump() (or WaitFor with Pump inside) to read what
// arrived. With CurveClientKeys both sockets are CURVE clients
// (docs/PROTOCOL.md 8.4), as every minion of a secure relay must be. As
// PROTOCOL 8.4 asks of a minion, a SUB refused at the handshake (a key not
// yet accepted: libzmq does not retry such a connection) is made again
// after kResubscribeDelay, so a key accepted later starts receiving jobs.
#ifndef MUSTER_TESTS_RELAY_FAKE_MINION_H_
#define MUSTER_TESTS_RELAY_FAKE_MINION_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/redis/redis_connection.h"
#include "absl/time/time.h"
#include "proto/wire.pb.h"

namespace muster::testing {

// (jid, attempt, minion id): how a return is identified.
using ReturnKeyTuple = std::tuple<std::string, uint32_t, std::string>;

// A minion's CURVE setup: the relay's public key it pins and its own pair
// (all Z85).
struct CurveClientKeys {
  std::string server_public_z85;
  std::string public_z85;
  std::string secret_z85;
};
// A fresh key pair pinning `server_public_z85`.
CurveClientKeys NewCurveClientKeys(const std::string& server_public_z85);

class FakeMinion {
 public:
  static constexpr absl::Duration kResubscribeDelay = absl::Milliseconds(100);

  struct ReceivedJob {
    std::string topic;
    wire::v1::JobEnvelope job;
    std::string bytes;    // frame as received
    bool resent = false;  // a JOB message on the return port, not the PUB
  };

  // Connects (ZeroMQ reconnects by itself if the relay is not up yet).
  // Without `curve`, plain sockets (a relay run with --insecure).
  FakeMinion(zmq::context_t& context, std::string id, const std::string& publish_endpoint,
             const std::string& return_endpoint,
             std::optional<CurveClientKeys> curve = std::nullopt);

  // Reads every waiting job frame (PUB, or JOB re-sent on the return port)
  // and ACK; returns how many messages.
  int Pump();
  // True once the SUB's handshake with the relay succeeded (for a CURVE
  // client: its key was admitted); Pump() updates it.
  bool subscribed() const { return subscribed_; }
  // SUB handshakes the relay refused (ZAP) so far.
  int subscribe_refusals() const { return subscribe_refusals_; }
  // Pumps until `done` or `timeout`; true when `done`.
  bool PumpUntil(const std::function<bool()>& done, absl::Duration timeout);

  // Sends one RET message with these returns.
  void SendReturns(const std::vector<wire::v1::Return>& returns);
  // Sends one HB message with this minion's heartbeat.
  void SendHeartbeat(const std::map<std::string, std::string>& grains, uint32_t interval_ms);
  // Sends arbitrary frames on the return port (for garbage tests).
  void SendRaw(const std::vector<std::string>& frames);

  const std::string& id() const { return id_; }
  // The public key this minion presents (empty without CURVE).
  const std::string& public_key() const { return public_key_; }
  const std::vector<ReceivedJob>& jobs() const { return jobs_; }
  const std::set<ReturnKeyTuple>& acked() const { return acked_; }
  // Returns the relay rejected, with the reason it gave.
  const std::map<ReturnKeyTuple, std::string>& rejected() const { return rejected_; }
  int malformed_acks() const { return malformed_acks_; }

 private:
  // (Re)creates the SUB socket and its monitor, and connects it.
  void ConnectSub();
  // Reads the SUB's monitor events; re-creates a refused SUB when due.
  void WatchSub();

  zmq::context_t* context_;
  std::string id_;
  std::string publish_endpoint_;
  std::optional<CurveClientKeys> curve_;
  std::string public_key_;
  zmq::socket_t sub_;
  zmq::socket_t sub_monitor_;
  bool subscribed_ = false;
  int subscribe_refusals_ = 0;
  absl::Time resubscribe_at_ = absl::InfiniteFuture();
  zmq::socket_t dealer_;
  std::vector<ReceivedJob> jobs_;
  std::set<ReturnKeyTuple> acked_;
  std::map<ReturnKeyTuple, std::string> rejected_;
  int malformed_acks_ = 0;
};

class RelayProcess;

// A FakeMinion of `relay` (started, secure) with a fresh key that is
// accepted for `id` the way an operator does it (AcceptMinionKey in
// `redis`), once its SUB is admitted; Unavailable if not within `timeout`.
absl::StatusOr<std::unique_ptr<FakeMinion>> AcceptedFakeMinion(
    zmq::context_t& context, const RelayProcess& relay, RedisConnection& redis,
    const std::string& datacenter, const std::string& id,
    absl::Duration timeout = absl::Seconds(10));

// A return of `minion` for (jid, attempt) whose stdout is `output`.
wire::v1::Return MakeReturn(const std::string& jid, uint32_t attempt,
                            const std::string& minion, const std::string& output);

}  // namespace muster::testing

#endif  // MUSTER_TESTS_RELAY_FAKE_MINION_H_
