// Fault suite, bad input: while a job's returns stream in, a peer floods
// dc1's relay return port with malformed bus frames (an authenticated peer:
// a CURVE client whose key is accepted, so the frames reach the relay's
// parser; a peer without CURVE cannot even complete a handshake), and malformed entries
// are written to the returns, events and job streams. Each is dropped and
// counted (a parsable RET holding a bad return is answered with a
// rejection instead); the job, and one submitted after the flood, end with every
// return present exactly once, and no component dies.
#include <zmq.hpp>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "common/bus/bus_security.h"
#include "proto/wire.pb.h"
#include "tests/fault_audit.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 1000;
constexpr int kFloodRounds = 300;
// A length-delimited field 1 claiming 16 bytes but holding 5: never parses.
const std::string kTruncated("\x0a\x10short", 7);

// The bus messages of one flood round that are malformed: each breaks one
// rule of docs/PROTOCOL.md section 3.2, is dropped and counted.
std::vector<std::vector<std::string>> MalformedFrames() {
  wire::v1::ReturnBatch empty_batch;
  return {
      {"RET"},                                          // one frame
      {"RET", kTruncated},                              // does not parse
      {"HB", kTruncated},                               // does not parse
      {"NOPE", "payload"},                              // unknown type
      {"RET", empty_batch.SerializeAsString(), "x"},    // three frames
      {"RET", empty_batch.SerializeAsString()},         // no returns
  };
}

// The RET messages of one flood round that parse but hold one return the
// relay can never accept (docs/PROTOCOL.md 3.3): each is answered with an
// ACK rejecting it.
std::vector<std::vector<std::string>> RejectedReturns(const std::string& jid) {
  wire::v1::ReturnBatch bad_minion;
  wire::v1::Return* ret = bad_minion.add_returns();
  ret->set_jid(jid);
  ret->set_attempt(1);
  ret->set_minion_id("not a valid id!");
  ret->set_success(true);
  wire::v1::ReturnBatch no_jid;
  no_jid.add_returns()->set_minion_id("sim-00001.dc1.example.com");
  wire::v1::ReturnBatch attempt_zero;
  wire::v1::Return* zero = attempt_zero.add_returns();
  zero->set_jid(jid);
  zero->set_minion_id("sim-00002.dc1.example.com");
  return {
      {"RET", bad_minion.SerializeAsString()},    // invalid minion id
      {"RET", no_jid.SerializeAsString()},        // empty jid
      {"RET", attempt_zero.SerializeAsString()},  // attempt 0
  };
}

// XADDs one entry with a single field.
void AddEntry(RedisConnection& redis, const std::string& stream, const std::string& field,
              const std::string& value) {
  auto reply = redis.Command({"XADD", stream, "*", field, value});
  ASSERT_TRUE(reply.ok() && reply->IsString()) << stream;
}

TEST(FaultMalformedTest, MalformedFramesAndEntriesDuringJobChangeNothing) {
  ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter);
  for (DatacenterOptions& dc : options.datacenters) dc.fleet.latency_ms_max = 2000;
  Cluster cluster(options);
  absl::Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started;
  FaultAudit audit(cluster, "malformed frames and stream entries flood");

  auto first = cluster.Submit("*", "test.ping", {}, absl::Seconds(60));
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string jid = first->jid();

  // Bus: a peer that speaks nonsense on dc1's return port.
  zmq::context_t context(1);
  // The key of dc1's fleetsim's first socket: accepted for its minions.
  absl::StatusOr<security::CurveKeyPair> keys = cluster.AdmittedBusKeys("dc1");
  ASSERT_TRUE(keys.ok()) << keys.status();
  auto curve_peer = [&](zmq::socket_t& socket) {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, 0);
    ASSERT_TRUE(bus::ApplyCurveClient(socket, *keys, cluster.RelayPublicKey("dc1")).ok());
    socket.connect(cluster.relay("dc1").return_endpoint());
  };
  zmq::socket_t peer(context, zmq::socket_type::dealer);
  curve_peer(peer);
  std::vector<std::vector<std::string>> malformed = MalformedFrames();
  std::vector<std::vector<std::string>> rejected = RejectedReturns(jid);
  size_t bus_messages = 0;  // malformed ones
  size_t rejected_returns = 0;
  auto send = [&](const std::vector<std::string>& message) {
    for (size_t i = 0; i < message.size(); ++i) {
      peer.send(zmq::buffer(message[i]),
                i + 1 < message.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  };
  for (int round = 0; round < kFloodRounds; ++round) {
    for (const std::vector<std::string>& message : malformed) {
      send(message);
      ++bus_messages;
    }
    for (const std::vector<std::string>& message : rejected) {
      send(message);
      ++rejected_returns;
    }
  }
  // One payload over the 4 MiB + 64 KiB limit, from another connection:
  // libzmq (ZMQ_MAXMSGSIZE) closes that connection before the relay reads
  // it, so it is neither parsed nor counted, and the relay's memory does
  // not grow with it.
  zmq::socket_t big(context, zmq::socket_type::dealer);
  curve_peer(big);
  big.send(zmq::str_buffer("RET"), zmq::send_flags::sndmore);
  big.send(zmq::buffer(std::string(5 << 20, 'x')), zmq::send_flags::none);
  // And a peer without CURVE: its nonsense never gets past the handshake.
  zmq::socket_t plain(context, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(cluster.relay("dc1").return_endpoint());
  for (const std::vector<std::string>& message : malformed) {
    for (size_t i = 0; i < message.size(); ++i) {
      plain.send(zmq::buffer(message[i]), i + 1 < message.size() ? zmq::send_flags::sndmore
                                                                 : zmq::send_flags::none);
    }
  }

  // Streams: entries jobd and the relays must skip.
  RedisConnection& redis = cluster.redis_connection();
  wire::v1::ReturnBatch unknown_job;
  wire::v1::Return* stray = unknown_job.add_returns();
  stray->set_jid("99999999999999999999");
  stray->set_attempt(1);
  stray->set_minion_id("sim-00001.dc1.example.com");
  wire::v1::JobEnvelope no_jid;
  no_jid.set_attempt(1);
  no_jid.set_function("test.ping");
  for (int i = 0; i < 100; ++i) {
    AddEntry(redis, "muster:returns", "batch", kTruncated);
    AddEntry(redis, "muster:returns", "junk", "value");
    AddEntry(redis, "muster:returns", "batch", unknown_job.SerializeAsString());
    AddEntry(redis, "muster:events", "event", kTruncated);
    AddEntry(redis, "muster:events", "junk", "value");
    AddEntry(redis, "muster:jobs:dc2", "job", kTruncated);
    AddEntry(redis, "muster:jobs:dc2", "junk", "value");
    AddEntry(redis, "muster:jobs:dc2", "job", no_jid.SerializeAsString());
  }

  // dc1's relay counted the bus flood, dc2's the bad job entries (their
  // heartbeats carry the counters).
  uint64_t dropped_dc1 = 0, dropped_dc2 = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto relays = cluster.ListRelays();
        if (!relays.ok()) return false;
        for (const v1::Relay& relay : *relays) {
          if (relay.relay_id() == "relay-dc1") dropped_dc1 = relay.malformed_dropped();
          if (relay.relay_id() == "relay-dc2") dropped_dc2 = relay.malformed_dropped();
        }
        return dropped_dc1 >= bus_messages && dropped_dc2 >= 300;
      },
      absl::Seconds(20)))
      << "relay-dc1 dropped " << dropped_dc1 << " of " << bus_messages
      << " bus messages, relay-dc2 " << dropped_dc2 << " of 300 job entries";
  // Every bad return was answered, with a rejection and no key.
  size_t answered = 0;
  size_t acked = 0;
  peer.set(zmq::sockopt::rcvtimeo, 1000);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (answered < rejected_returns && absl::Now() < deadline) {
    zmq::message_t type;
    zmq::message_t payload;
    if (!peer.recv(type) || !type.more() || !peer.recv(payload)) continue;
    wire::v1::ReturnAck ack;
    ASSERT_TRUE(ack.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
    answered += ack.rejected_size();
    acked += ack.keys_size();
  }
  EXPECT_EQ(answered, rejected_returns);
  EXPECT_EQ(acked, 0u);

  // A job after the flood still flows everywhere.
  auto second = cluster.Submit("*", "test.echo", {"after", "flood"}, absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  absl::Status exact =
      audit.WaitAndCheck({jid, second->jid()}, AllMinions(cluster), absl::Seconds(60));
  EXPECT_TRUE(exact.ok()) << exact;
  audit.Report();
}

}  // namespace
}  // namespace muster::testing
