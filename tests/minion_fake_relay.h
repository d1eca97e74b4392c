// FakeRelay: a relay reduced to its bus protocol, written straight from
// docs/PROTOCOL.md section 3 with raw ZeroMQ sockets, so the minion and
// fleetsim tests also prove the document while relayd is written apart.
//
// The publish socket is an XPUB (wire-compatible with the relay's PUB) so a
// test can wait until subscribers have really subscribed instead of
// republishing. Single-threaded: PumpUntil() reads the return port.
//
// Secure by default (PROTOCOL 8): both sockets are CURVE servers with the
// fake relay's own key pair, and it plays jobd's part too: Publish() signs
// each envelope with its own Ed25519 key. CommandAgainst() passes the
// minion both public keys. Without EnableZap() every client key is let in;
// with it, PumpUntil() also answers the ZAP requests (so a handshake waits
// for the test to pump), refusing the keys given to RefuseKey(), and the
// return port's messages carry the sender's key (KeyOf).
#ifndef MUSTER_TESTS_MINION_FAKE_RELAY_H_
#define MUSTER_TESTS_MINION_FAKE_RELAY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/security/curve_keys.h"
#include "common/security/signing_keys.h"
#include "proto/wire.pb.h"

namespace muster::testing {

// A job envelope for tests: deadline = now + timeout.
wire::v1::JobEnvelope MakeTestJob(const std::string& jid, const std::string& function,
                                  const std::vector<std::string>& args,
                                  const std::string& target_expression,
                                  v1::TargetType target_type = v1::GLOB,
                                  uint32_t timeout_ms = 10000);

class FakeRelay;

// argv of `binary` (a workspace path, e.g. "minion/minion") pointed at
// `relay`'s ports and trusting its keys (--insecure when the relay is),
// followed by `extra` flags.
std::vector<std::string> CommandAgainst(const FakeRelay& relay, const std::string& binary,
                                        const std::vector<std::string>& extra);

class FakeRelay {
 public:
  // `secure` false: no CURVE, and minions get --insecure.
  explicit FakeRelay(bool secure = true);
  ~FakeRelay();

  bool secure() const { return secure_; }
  // jobd's signing key (what Publish signs with) and the relay's CURVE pair.
  const security::SigningKey& signing_key() const { return signing_key_; }
  const security::CurveKeyPair& curve_keys() const { return curve_keys_; }
  // `job` signed with signing_key() (PROTOCOL 8.1).
  wire::v1::JobEnvelope Sign(wire::v1::JobEnvelope job) const;

  // Binds XPUB and ROUTER on 127.0.0.1; port 0 picks free ports. Binding
  // again after Close() on the same ports is a relay restart.
  absl::Status Start(int publish_port = 0, int return_port = 0);
  // Before Start(): authenticate connections (see the top of this file).
  void EnableZap() { zap_enabled_ = true; }
  // Refuses (or accepts again) connections with this CURVE public key.
  void RefuseKey(const std::string& public_z85) { refused_keys_.insert(public_z85); }
  void AcceptKey(const std::string& public_z85) { refused_keys_.erase(public_z85); }
  // ZAP requests answered, and how many were refused.
  int zap_requests() const { return zap_requests_; }
  int zap_refusals() const { return zap_refusals_; }
  // The CURVE key (Z85) that the latest heartbeat of `minion_id` came
  // with; empty without ZAP or when none came.
  std::string KeyOf(const std::string& minion_id) const;

  // Closes both sockets (a relay going down). Collected data is kept.
  void Close();

  int publish_port() const { return publish_port_; }
  int return_port() const { return return_port_; }

  // Publishes a job with topic "*" or "@<id>@", signed first unless it
  // carries a signature already.
  void Publish(const std::string& topic, const wire::v1::JobEnvelope& job);
  // Publishes `job` exactly as given (forgeries).
  void PublishAsIs(const std::string& topic, const wire::v1::JobEnvelope& job);
  // Re-sends `job` exactly as given to `minion_id` on the return port
  // (frames JOB, "@<id>@", envelope: PROTOCOL 3.6), to the connection its
  // latest heartbeat came from. False when none has heartbeated.
  bool SendJob(const std::string& minion_id, const wire::v1::JobEnvelope& job);
  // Publishes arbitrary frames (for garbage tests).
  void PublishRaw(const std::vector<std::string>& frames);

  // Reads the return port and the subscriptions until `done` or `timeout`.
  // Acks every RET at once while auto_ack is on. True when `done`.
  bool PumpUntil(const std::function<bool()>& done, absl::Duration timeout);
  // Reads for exactly `duration` (to check that nothing more arrives).
  void PumpFor(absl::Duration duration);

  // Ack returns as they arrive (default on).
  void set_auto_ack(bool on) { auto_ack_ = on; }
  // Acks every return received so far.
  void AckAll();
  // Answers every return received so far with a rejection (`reason`), as a
  // relay does for a return it can never accept (docs/PROTOCOL.md 3.3).
  void RejectAll(const std::string& reason);

  // How many times `topic` was subscribed to (XPUB verbose: each socket).
  int subscriptions(const std::string& topic) const;

  // Every return received, in order, duplicates included.
  const std::vector<wire::v1::Return>& returns() const { return returns_; }
  // Returns received for `jid`, duplicates included.
  std::vector<wire::v1::Return> ReturnsFor(const std::string& jid) const;
  const std::vector<wire::v1::MinionHeartbeat>& heartbeats() const { return heartbeats_; }
  // Every receipt received (RCV), in order.
  const std::vector<wire::v1::Receipt>& receipts() const { return receipts_; }
  // The latest heartbeat of `minion_id`, or null.
  const wire::v1::MinionHeartbeat* LatestHeartbeat(const std::string& minion_id) const;
  int ret_messages() const { return ret_messages_; }
  int malformed() const { return malformed_; }

 private:
  void ReadReturnPort();
  void AnswerZap();
  void ReadSubscriptions();
  void Ack(const std::string& identity, const std::vector<wire::v1::Return>& returns);
  void SendAck(const std::string& identity, const wire::v1::ReturnAck& ack);

  const bool secure_;
  const security::SigningKey signing_key_;
  security::CurveKeyPair curve_keys_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> publisher_;
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<zmq::socket_t> zap_;
  bool zap_enabled_ = false;
  std::set<std::string> refused_keys_;
  int zap_requests_ = 0;
  int zap_refusals_ = 0;
  // Minion id -> sender key of its latest heartbeat.
  std::map<std::string, std::string> keys_;
  int publish_port_ = 0;
  int return_port_ = 0;
  bool auto_ack_ = true;
  std::map<std::string, int> subscriptions_;
  std::vector<wire::v1::Return> returns_;
  // Identity that sent each return in returns_, for AckAll.
  std::vector<std::string> return_identities_;
  std::vector<wire::v1::MinionHeartbeat> heartbeats_;
  std::vector<wire::v1::Receipt> receipts_;
  // Minion id -> identity of the connection of its latest heartbeat.
  std::map<std::string, std::string> identities_;
  int ret_messages_ = 0;
  int malformed_ = 0;
};

}  // namespace muster::testing

#endif  // MUSTER_TESTS_MINION_FAKE_RELAY_H_
