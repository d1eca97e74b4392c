// Relay: the whole of relayd in one object, the bridge between Redis and
// one datacenter's ZeroMQ bus (docs/PROTOCOL.md, docs/OPERATIONS.md).
// relayd_main.cc runs one; tests may run one in-process on port 0.
//
// Two threads, each owning its sockets and state file: the job thread
// (JobReader: job stream -> PUB socket, cursor and dedup in relay_state.db)
// and the return thread (ReturnCollector: ROUTER socket -> returns and
// events streams, spool in relay_spool.db, inventory). They share only the
// atomic RelayCounters and the DispatchHandoff queue. The optional /metrics
// endpoint's HTTP threads only read those counters. Unless --insecure, both
// sockets are CURVE servers with the relay's key pair (relay_curve.key),
// and two more threads guard them: the ZAP handler (which keys may
// connect) and the key registry's (minion keys from and to Redis); both
// sockets' threads read the registry (relay/key_registry.h).
//
// Start order: check the options, create the state directory, load the
// CURVE key pair and the key registry, start the ZAP handler (it must be
// there before a CURVE socket binds), open the job side (state file, PUB
// socket) and the return side (spool, ROUTER socket), serve /metrics, then
// start the threads. Stop() reverses it: the job and return threads finish
// their round (the return thread writes or spools, and acknowledges, what
// it already received) and are joined, the registry thread writes what it
// holds, then /metrics stops, the sockets and files close, and the ZAP
// handler stops last. Redis being down is never fatal: the job thread
// waits for it, the return thread spools, the registry keeps its local
// copy.
#ifndef MUSTER_RELAY_RELAY_H_
#define MUSTER_RELAY_RELAY_H_

#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "relay/delivery_tracker.h"
#include "relay/relay_counters.h"
#include "relay/relay_options.h"

namespace muster::metrics {
class MetricsEndpoint;
}

namespace muster::relay {

class JobBus;
class JobReader;
class KeyRegistry;
class ReturnBus;
class SaltMasterStatus;
class ReturnCollector;
class ZapHandler;

class Relay {
 public:
  explicit Relay(RelayOptions options);
  // Stop()s.
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Requires: Start() was never called (a Relay runs once). Checks the options (InvalidArgument, see
  // ValidateRelayOptions), creates options.state_dir if missing, opens the
  // state and spool files, binds (or connects) both sockets, serves
  // /metrics when options.metrics_listen is set, and starts both threads.
  // Any failure (Unavailable: a directory, file or port that cannot be
  // used) leaves nothing running.
  absl::Status Start();
  // Stops and joins both threads, then closes /metrics, sockets and files.
  // Returns within about one Redis round trip. Safe to call more than once,
  // and before or after a failed Start().
  void Stop();
  // Has the job thread check the trusted key file now (relayd's SIGHUP);
  // it is also checked every 2 s. Thread-safe; a no-op when not started.
  void CheckTrustedKeys();

  // After a successful Start(): the endpoint minions subscribe to (the
  // bound address with its real port, or the forwarder with bus_connect),
  // the return endpoint, and the /metrics port (0 when metrics are off).
  const std::string& publish_endpoint() const { return publish_endpoint_; }
  const std::string& return_endpoint() const { return return_endpoint_; }
  int metrics_port() const { return metrics_port_; }
  // The relay's counters; readable at any time from any thread.
  const RelayCounters& counters() const { return counters_; }
  // The CURVE public key minions pin (Z85); empty with --insecure.
  const std::string& public_key() const { return public_key_; }

 private:
  // Creates the state directory and opens both sides; no thread starts.
  absl::Status Open();
  // Makes the bus's two halves (relay/datacenter_bus.h) for --bus.
  absl::Status OpenBus();
  // Unless --insecure: loads (or creates) the CURVE key pair, the key
  // registry, and starts the ZAP handler.
  absl::Status OpenBusSecurity();

  // Not const: Open() fills curve_keys from the key file.
  RelayOptions options_;
  // Declared first: destroyed after every socket of the readers.
  zmq::context_t context_{1};
  RelayCounters counters_;
  DispatchHandoff handoff_;
  std::unique_ptr<KeyRegistry> registry_;
  std::unique_ptr<ZapHandler> zap_;
  std::unique_ptr<SaltMasterStatus> salt_status_;  // --bus=salt only
  std::unique_ptr<JobBus> job_bus_;
  std::unique_ptr<ReturnBus> return_bus_;
  std::unique_ptr<JobReader> jobs_;
  std::unique_ptr<ReturnCollector> returns_;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_;
  std::string publish_endpoint_;
  std::string return_endpoint_;
  int metrics_port_ = 0;
  std::string public_key_;
  absl::Notification stop_;
  std::thread registry_thread_;
  std::thread job_thread_;
  std::thread return_thread_;
  bool started_ = false;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_RELAY_H_
