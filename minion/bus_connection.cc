#include "minion/bus_connection.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/bus/bus_protocol.h"
#include "common/bus/bus_security.h"

namespace muster::minion {
namespace {

// Reconnection backs off from 100 ms to this, so a fleet does not hammer a
// relay that is down.
constexpr int kReconnectMaxMs = 5000;
// How long unsent messages may hold up closing the socket at shutdown.
constexpr int kLingerMs = 1000;
// A lost or refused connection with no handshake since is re-made after
// this, doubling up to kRemakeMax.
constexpr absl::Duration kRemakeFirst = absl::Seconds(1);
constexpr absl::Duration kRemakeMax = absl::Seconds(15);
constexpr int kMonitoredEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;

std::atomic<uint64_t> next_monitor_id{1};

void SetCommonOptions(const bus::BusLinkOptions& link, zmq::socket_t& socket) {
  socket.set(zmq::sockopt::linger, kLingerMs);
  socket.set(zmq::sockopt::reconnect_ivl_max, kReconnectMaxMs);
  bus::ApplyBusLinkOptions(link, bus::BusSide::kClient, socket);
}

// Makes `monitor` receive the connection events of `socket`.
absl::Status Monitor(zmq::socket_t& socket, zmq::socket_t& monitor) {
  std::string endpoint = absl::StrCat("inproc://muster-bus-monitor-", next_monitor_id++);
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), kMonitoredEvents) != 0) {
    return absl::InternalError(
        absl::StrCat("zmq_socket_monitor: ", zmq_strerror(zmq_errno())));
  }
  monitor.connect(endpoint);
  return absl::OkStatus();
}

}  // namespace

bool BusConnection::ReadMonitorEvents(Link& link, bool* lost, bool* refused) {
  bool handshake = false;
  std::vector<zmq::message_t> frames;
  while (BusConnection::ReceiveMessage(link.monitor, &frames)) {
    if (frames.empty() || frames[0].size() < sizeof(uint16_t)) continue;
    uint16_t event = 0;
    std::memcpy(&event, frames[0].data(), sizeof(event));
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      link.connected = true;
      link.remake_at = absl::InfiniteFuture();
      link.backoff = kRemakeFirst;
      handshake = true;
      continue;
    }
    // A disconnection, or a refused handshake (followed by one).
    bool was_connected = link.connected;
    link.connected = false;
    if (link.remake_at == absl::InfiniteFuture()) {
      if (link.backoff < kRemakeFirst) link.backoff = kRemakeFirst;
      link.remake_at = absl::Now() + link.backoff;
    }
    if (event == ZMQ_EVENT_DISCONNECTED) {
      if (lost != nullptr && was_connected) *lost = true;
    } else if (refused != nullptr) {
      *refused = true;
    }
  }
  return handshake;
}

absl::Status BusConnection::Connect(Link& link) {
  const bool jobs = &link == &jobs_link_;
  try {
    zmq::socket_t socket(context_, jobs ? zmq::socket_type::sub : zmq::socket_type::dealer);
    SetCommonOptions(link_options_, socket);
    if (curve_.has_value()) {
      absl::Status applied =
          bus::ApplyCurveClient(socket, curve_->own, curve_->relay_public_z85);
      if (!applied.ok()) return applied;
    }
    socket.set(zmq::sockopt::maxmsgsize, bus::kMaxMinionFrameBytes);
    if (jobs) {
      // Subscriptions travel upstream as messages on the SUB's outgoing
      // pipe, which is bounded by ZMQ_SNDHWM (default 1,000): when the
      // connection (or a reconnection) replays them, libzmq silently drops
      // those past the mark. fleetsim subscribes one socket to "*" plus the
      // "@id@" topic of each of its minions (thousands), so the SUB's send
      // queue is unbounded: a SUB sends nothing but subscriptions, so it
      // holds at most one message per topic. Jobs themselves are bounded by
      // ZMQ_RCVHWM here (a full queue stops reading the TCP connection, it
      // does not drop) and by the relay's PUB send mark per subscriber
      // (1,000,000, relay/job_reader.cc), past which the PUB drops: a
      // subscriber loses a job only when more than about 1.1 million
      // messages for it are waiting unread. A real minion has two topics and
      // reads as fast as jobs arrive.
      socket.set(zmq::sockopt::sndhwm, 0);
      socket.set(zmq::sockopt::rcvhwm, 100000);
    } else {
      socket.set(zmq::sockopt::immediate, 1);
      socket.set(zmq::sockopt::sndhwm, 10000);
    }
    zmq::socket_t monitor(context_, zmq::socket_type::pair);
    absl::Status monitored = Monitor(socket, monitor);
    if (!monitored.ok()) return monitored;
    if (jobs) {
      for (const std::string& topic : topics_) {
        socket.set(zmq::sockopt::subscribe, zmq::buffer(topic.data(), topic.size()));
      }
    }
    socket.connect(link.endpoint);
    if (link.socket.handle() != nullptr) {
      // Silence the old socket's monitor first: its last events are about
      // a connection that no longer matters.
      zmq_socket_monitor(link.socket.handle(), nullptr, 0);
      link.socket.set(zmq::sockopt::linger, 0);
    }
    link.socket = std::move(socket);
    link.monitor = std::move(monitor);
  } catch (const zmq::error_t& error) {
    if (error.num() == EINVAL) return absl::InvalidArgumentError(error.what());
    return absl::UnavailableError(error.what());
  }
  link.connected = false;
  return absl::OkStatus();
}

absl::Status BusConnection::Remake(Link& link) {
  absl::Status made = Connect(link);
  if (made.ok()) return made;
  return absl::Status(made.code(), absl::StrCat("re-making the connection to ", link.endpoint,
                                                ": ", made.message()));
}

absl::Status BusConnection::RemakeDue(absl::Time now) {
  absl::Status status;
  for (Link* link : {&jobs_link_, &returns_link_}) {
    if (now < link->remake_at) continue;
    absl::Status remade = Remake(*link);
    if (remade.ok()) ++remakes_;
    status.Update(remade);
    link->backoff = std::min(2 * link->backoff, kRemakeMax);
    link->remake_at = now + link->backoff;
  }
  return status;
}

std::optional<absl::Time> BusConnection::NextRemake() const {
  absl::Time next = std::min(jobs_link_.remake_at, returns_link_.remake_at);
  if (next == absl::InfiniteFuture()) return std::nullopt;
  return next;
}

BusConnection::BusConnection(zmq::context_t& context, const bus::BusLinkOptions& link,
                             const CurveClientKeys* curve, std::vector<std::string> topics)
    : context_(context),
      link_options_(link),
      curve_(curve != nullptr ? std::optional<CurveClientKeys>(*curve) : std::nullopt),
      topics_(std::move(topics)) {}

absl::StatusOr<std::unique_ptr<BusConnection>> BusConnection::Open(
    zmq::context_t& context, const RelayAddress& relay,
    const std::vector<std::string>& topics, const bus::BusLinkOptions& link,
    const CurveClientKeys* curve) {
  std::unique_ptr<BusConnection> connection(new BusConnection(context, link, curve, topics));
  connection->jobs_link_.endpoint = absl::StrCat("tcp://", relay.host, ":", relay.publish_port);
  connection->returns_link_.endpoint =
      absl::StrCat("tcp://", relay.host, ":", relay.return_port);
  for (Link* opened : {&connection->jobs_link_, &connection->returns_link_}) {
    absl::Status connected = connection->Connect(*opened);
    if (!connected.ok()) {
      return absl::Status(connected.code(),
                          absl::StrCat("relay ", relay.host, " ports ", relay.publish_port, "/",
                                       relay.return_port, ": ", connected.message()));
    }
  }
  return connection;
}

void BusConnection::Subscribe(absl::string_view topic) {
  topics_.emplace_back(topic);
  jobs_link_.socket.set(zmq::sockopt::subscribe, zmq::buffer(topic.data(), topic.size()));
}

bool BusConnection::HandleReturnsMonitorEvents(bool* lost, bool* refused) {
  return ReadMonitorEvents(returns_link_, lost, refused);
}

void BusConnection::HandleJobsMonitorEvents(bool* lost, bool* refused) {
  ReadMonitorEvents(jobs_link_, lost, refused);
}

absl::Status BusConnection::ReconnectReturns() { return Remake(returns_link_); }

bool BusConnection::Send(absl::string_view type,
                         const google::protobuf::MessageLite& payload) {
  if (!payload.SerializeToString(&send_buffer_)) return false;
  return SendEncoded(type, send_buffer_);
}

bool BusConnection::SendEncoded(absl::string_view type, absl::string_view payload) {
  try {
    zmq::socket_t& returns = returns_link_.socket;
    if (!returns.send(zmq::buffer(type.data(), type.size()),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    // The first frame is queued, so the second one goes too (ZeroMQ sends
    // multipart messages atomically).
    return returns
        .send(zmq::buffer(payload.data(), payload.size()),
              zmq::send_flags::dontwait)
        .has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

bool BusConnection::ReceiveMessage(zmq::socket_t& socket, std::vector<zmq::message_t>* frames,
                                   uint64_t* truncated) {
  try {
    while (true) {
      frames->clear();
      zmq::message_t frame;
      if (!socket.recv(frame, zmq::recv_flags::dontwait)) return false;
      bool more = frame.more();
      frames->push_back(std::move(frame));
      while (more) {
        // The rest of a multipart message is already there; waiting for a
        // part that is not could only glue the next message onto this one.
        zmq::message_t next;
        if (!socket.recv(next, zmq::recv_flags::dontwait)) break;
        more = next.more();
        frames->push_back(std::move(next));
      }
      if (!more) return true;
      if (truncated != nullptr) ++*truncated;
    }
  } catch (const zmq::error_t&) {
    // EINTR, or a socket being closed: nothing to hand out now.
    frames->clear();
    return false;
  }
}

std::vector<absl::string_view> FrameViews(const std::vector<zmq::message_t>& frames) {
  std::vector<absl::string_view> views;
  views.reserve(frames.size());
  for (const zmq::message_t& frame : frames) {
    views.emplace_back(static_cast<const char*>(frame.data()), frame.size());
  }
  return views;
}

}  // namespace muster::minion
