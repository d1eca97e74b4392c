// FakeMinion: a minion reduced to its bus protocol, written straight from
// docs/PROTOCOL.md section 3 with raw ZeroMQ sockets (SUB on the publish
// port, DEALER on the return port), so relay tests also prove the document.
// Single-threaded: call Pump() (or WaitFor with Pump inside) to read what
// arrived.
#ifndef MUSTER_TESTS_RELAY_FAKE_MINION_H_
#define MUSTER_TESTS_RELAY_FAKE_MINION_H_

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/wire.pb.h"

namespace muster::testing {

// (jid, attempt, minion id): how a return is identified.
using ReturnKeyTuple = std::tuple<std::string, uint32_t, std::string>;

class FakeMinion {
 public:
  struct ReceivedJob {
    std::string topic;
    wire::v1::JobEnvelope job;
    std::string bytes;    // frame as received
    bool resent = false;  // a JOB message on the return port, not the PUB
  };

  // Connects (ZeroMQ reconnects by itself if the relay is not up yet).
  FakeMinion(zmq::context_t& context, std::string id, const std::string& publish_endpoint,
             const std::string& return_endpoint);

  // Reads every waiting job frame (PUB, or JOB re-sent on the return port)
  // and ACK; returns how many messages.
  int Pump();
  // Pumps until `done` or `timeout`; true when `done`.
  bool PumpUntil(const std::function<bool()>& done, absl::Duration timeout);

  // Sends one RET message with these returns.
  void SendReturns(const std::vector<wire::v1::Return>& returns);
  // Sends one HB message with this minion's heartbeat.
  void SendHeartbeat(const std::map<std::string, std::string>& grains, uint32_t interval_ms);
  // Sends arbitrary frames on the return port (for garbage tests).
  void SendRaw(const std::vector<std::string>& frames);

  const std::string& id() const { return id_; }
  const std::vector<ReceivedJob>& jobs() const { return jobs_; }
  const std::set<ReturnKeyTuple>& acked() const { return acked_; }
  // Returns the relay rejected, with the reason it gave.
  const std::map<ReturnKeyTuple, std::string>& rejected() const { return rejected_; }
  int malformed_acks() const { return malformed_acks_; }

 private:
  std::string id_;
  zmq::socket_t sub_;
  zmq::socket_t dealer_;
  std::vector<ReceivedJob> jobs_;
  std::set<ReturnKeyTuple> acked_;
  std::map<ReturnKeyTuple, std::string> rejected_;
  int malformed_acks_ = 0;
};

// A return of `minion` for (jid, attempt) whose stdout is `output`.
wire::v1::Return MakeReturn(const std::string& jid, uint32_t attempt,
                            const std::string& minion, const std::string& output);

}  // namespace muster::testing

#endif  // MUSTER_TESTS_RELAY_FAKE_MINION_H_
