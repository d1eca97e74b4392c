// AckWatch: notices a relay that takes returns and never acknowledges them.
//
// ZMTP heartbeats (common/bus/bus_link.h) catch a connection that went
// silent. This is the line behind them: returns went out and nothing came
// back on the return connection for `timeout` (the relay acknowledges
// within milliseconds, spooling when Redis is down), so the connection is
// treated as dead and re-made. It covers heartbeats turned off
// (--bus_heartbeat_timeout_ms=0), where a blackholed connection with data in
// flight is not probed by TCP keepalive. While the DEALER has no connection
// nothing is sent (ZMQ_IMMEDIATE), so a relay that is simply down never
// triggers it.
//
// Time is passed in. Not thread-safe: owned by the socket thread.
#ifndef MUSTER_MINION_ACK_WATCH_H_
#define MUSTER_MINION_ACK_WATCH_H_

#include <optional>

#include "absl/time/time.h"

namespace muster::minion {

class AckWatch {
 public:
  // `timeout` zero turns the watch off.
  explicit AckWatch(absl::Duration timeout) : timeout_(timeout) {}

  // Returns were handed to the connection at `now`.
  void Sent(absl::Time now);
  // The relay answered on the return connection (an ACK, or a re-sent job)
  // at `now`; `outbox_empty`: nothing is left to acknowledge.
  void Heard(absl::Time now, bool outbox_empty);
  // The connection was re-made: what is owed is sent again, and the wait
  // starts again from the next send.
  void Reset() { waiting_since_.reset(); }
  // True (once) when returns have waited `timeout` at `now` with nothing
  // heard; the watch then starts over.
  bool Expired(absl::Time now);
  // When Expired() may next turn true (nullopt: not waiting).
  std::optional<absl::Time> Deadline() const;

 private:
  const absl::Duration timeout_;
  std::optional<absl::Time> waiting_since_;
};

}  // namespace muster::minion

#endif  // MUSTER_MINION_ACK_WATCH_H_
