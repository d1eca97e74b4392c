// MasterEventReader: listens to a salt-master's event bus for job publishes
// and returns, the way salt.utils.event.MasterEvent does (3006.1).
//
// Wire: the master's EventPublisher (salt/utils/event.py) serves a Unix
// stream socket <sock_dir>/master_event_pub.ipc (salt/transport/ipc.py
// IPCMessagePublisher). A subscriber connects and sends nothing; the master
// writes each event as one msgpack map {"head": {}, "body": BODY}, frames
// back to back with no length prefix (salt/transport/frame.py
// frame_msg_ipc), and BODY (bin) is `tag + "\n\n" + msgpack(data)`, data
// being a map with "_stamp" added. Events are not replayed: what happened
// while no reader was connected is lost, hence the job cache catch-up.
//
// Events surfaced:
//   salt/job/<jid>/new          -> SaltPublishEvent (minions, missing)
//   salt/job/<jid>/ret/<minion> -> SaltReturn
// Everything else is counted and skipped. The master fires a return event
// for every return it gets, including a second one for the same minion and
// jid (a minion that restarted and was sent the jid again reruns it; the
// job cache keeps only the first): callers deduplicate.
//
// Robustness: connect is non-blocking and retried at most once per
// reconnect_interval; EOF (the master stopped) closes the connection and the
// next Poll reconnects, so a master restart is survived. A frame that is not
// msgpack, larger than max_frame_bytes, or nested too deep makes the stream
// unparseable from there: it is counted and the connection is remade. A
// well-framed event whose body or data is malformed is counted and skipped.
// Not thread-safe: one thread owns a reader.
#ifndef MUSTER_RELAY_SALT_EVENT_READER_H_
#define MUSTER_RELAY_SALT_EVENT_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "relay/salt/salt_return.h"

namespace muster::relay::salt {

struct MasterEvent {
  enum class Kind { kPublish, kReturn };
  Kind kind = Kind::kReturn;
  SaltPublishEvent publish;   // kind == kPublish
  SaltReturn ret;             // kind == kReturn
};

struct MasterEventReaderOptions {
  std::string socket_path;                          // <sock_dir>/master_event_pub.ipc
  int64_t max_frame_bytes = 64 << 20;               // salt's max_event_size is 1 MiB by default
  absl::Duration reconnect_interval = absl::Milliseconds(200);
};

struct MasterEventCounters {
  int64_t connects = 0;          // successful connections (the first included)
  int64_t disconnects = 0;       // connections lost or dropped
  int64_t frames = 0;            // frames read
  int64_t publishes = 0;         // salt/job/<jid>/new surfaced
  int64_t returns = 0;           // salt/job/<jid>/ret/<minion> surfaced
  int64_t other_events = 0;      // well-formed, not of interest
  int64_t malformed_frames = 0;  // skipped, or the stream was remade
};

// Parses one event body (tag "\n\n" msgpack data) into `out`. Returns true
// when it is a publish or return event, false for any other well-formed
// event; InvalidArgument when malformed.
absl::StatusOr<bool> ParseEventBody(absl::string_view body, MasterEvent* out);

class MasterEventReader {
 public:
  explicit MasterEventReader(MasterEventReaderOptions options);
  ~MasterEventReader();
  MasterEventReader(const MasterEventReader&) = delete;
  MasterEventReader& operator=(const MasterEventReader&) = delete;

  // Connects if needed, then waits up to `timeout` for events and returns
  // those that arrived (empty on timeout or while the master is down).
  // Returns as soon as at least one event is parsed; never blocks longer
  // than `timeout`.
  std::vector<MasterEvent> Poll(absl::Duration timeout);

  // Connects now if not connected (the next Poll would too). Unavailable
  // with the reason when the socket is not there or refuses.
  absl::Status Connect();

  bool connected() const { return fd_ >= 0; }
  const MasterEventCounters& counters() const { return counters_; }

 private:
  void Disconnect(const std::string& reason);
  // Parses complete frames from buffer_; false when the stream must be remade.
  bool ParseBuffered(std::vector<MasterEvent>* events);

  MasterEventReaderOptions options_;
  int fd_ = -1;
  absl::Time next_connect_ = absl::InfinitePast();
  std::string buffer_;
  size_t parsed_ = 0;  // bytes of buffer_ already consumed
  MasterEventCounters counters_;
};

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_EVENT_READER_H_
