// MasterPublisher: publishes a job into a salt-master the way Salt's own
// LocalClient.pub does (salt/client/__init__.py, 3006.1), so the master
// resolves the targets, caches the job and sends it to its minions.
//
// Wire (salt/channel/client.py, salt/transport/zeromq.py): one ZeroMQ REQ
// frame to the master's request server tcp://<interface>:<ret_port>,
// msgpack {"enc": "clear", "load": LOAD, "version": 2}, where LOAD is
//   {"cmd": "publish", "tgt": [ids], "tgt_type": "list", "fun", "arg": [...],
//    "key": <master key for the user>, "ret": "", "jid", "user",
//    "kwargs"?: {...}}
// and the one-frame answer is msgpack
//   {"enc": "clear", "load": {"jid", "minions": [...], "missing": [...]}}
// or, key refused, {"error": {"name": "AuthenticationError", ...}} (also
// AuthorizationError for an ACL refusal), or, no minion matched,
// {"enc": "clear", "load": {"jid": null, "minions": [], "error": "..."}}.
//
// The key is <cachedir>/.<user>_key, rewritten each time the master starts
// (salt/daemons/masterapi.py mk_key). It is read at the first publish and
// again whenever the master refuses it; the publish is then retried once.
//
// Timeouts: the socket sets ZMQ_IMMEDIATE, so a request is queued only on a
// live connection. No connection within the timeout is Unavailable and the
// job was certainly not published; sent but unanswered is DeadlineExceeded
// and the job may have been published (publishing the same jid again is
// safe: a minion that saw the jid ignores it while it still remembers it).
// After either, the REQ socket is closed (linger 0) and made anew.
// Not thread-safe: one thread owns a publisher.
#ifndef MUSTER_RELAY_SALT_MASTER_PUBLISHER_H_
#define MUSTER_RELAY_SALT_MASTER_PUBLISHER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "relay/salt/master_config.h"

namespace muster::relay::salt {

struct MasterPublisherOptions {
  std::string request_uri;      // tcp://127.0.0.1:4506
  std::string key_file;         // <cachedir>/.<user>_key
  std::string user;             // the load's "user"
  absl::Duration timeout = absl::Seconds(5);  // per request, connect included
};

// Options for publishing to the master described by `config` as `user`
// (empty: the current user). As Salt's client does, root publishing to a
// master that runs as another user uses that user's key.
MasterPublisherOptions PublisherOptionsFor(const MasterConfig& config,
                                           const std::string& user = "");

struct PublishRequest {
  std::string salt_jid;                 // "<20 digits>_<suffix>", chosen by the caller
  std::vector<std::string> targets;     // minion ids (tgt_type "list")
  std::string fun;                      // "test.ping", "state.apply", ...
  nlohmann::json args = nlohmann::json::array();  // positional args, a list
  nlohmann::json kwargs;                // null, or a map sent as "kwargs"
  std::string ret;                      // returners, comma separated; usually ""
};

struct PublishResult {
  std::string salt_jid;                 // as the master answered
  std::vector<std::string> minions;     // the targets the master will send to
  std::vector<std::string> missing;     // targets it has no accepted key for
  absl::Duration round_trip;            // of the last (successful) request
  bool key_reread = false;              // the first key was refused, a new one worked
};

// The bytes of a publish request (the msgpack envelope above).
std::string EncodePublishRequest(const PublishRequest& request, const std::string& key,
                                 const std::string& user);

// Interprets a publish answer. PermissionDenied for AuthenticationError /
// AuthorizationError (the message says which), NotFound when the master
// resolved no minion, Internal for anything else that is not an answer.
absl::StatusOr<PublishResult> DecodePublishReply(const std::string& reply_bytes);

class MasterPublisher {
 public:
  // Requires options.request_uri; nothing is connected until Publish().
  explicit MasterPublisher(MasterPublisherOptions options);
  ~MasterPublisher();
  MasterPublisher(const MasterPublisher&) = delete;
  MasterPublisher& operator=(const MasterPublisher&) = delete;

  // Publishes `request`; returns within about 2 x timeout (one retry after
  // a key refusal). InvalidArgument for a request Salt would reject before
  // sending (bad jid, no targets, empty fun, args not a list); Unavailable,
  // DeadlineExceeded, PermissionDenied, NotFound, Internal as above;
  // FailedPrecondition when the key file cannot be read.
  absl::StatusOr<PublishResult> Publish(const PublishRequest& request);

  // Requests sent over the publisher's life, and key re-reads done.
  int64_t requests_sent() const { return requests_sent_; }
  int64_t key_reads() const { return key_reads_; }

 private:
  absl::Status ReadKey();
  // One request/answer on the REQ socket, which is remade on failure.
  absl::StatusOr<std::string> Exchange(const std::string& request, absl::Duration* round_trip);
  void CloseSocket();

  MasterPublisherOptions options_;
  void* context_ = nullptr;
  void* socket_ = nullptr;
  std::string key_;
  bool key_loaded_ = false;
  int64_t requests_sent_ = 0;
  int64_t key_reads_ = 0;
};

// True when `jid` is a jid Salt accepts (salt.utils.jid.is_jid: 20 digits,
// optionally '_' and a suffix) and its tools can show: the 20 digits are
// Salt's UTC timestamp yyyyMMddHHmmssffffff with a month 01-12 (Muster's
// jids are), and the suffix is [A-Za-z0-9_-]+ (it names files on minions).
bool IsSaltJid(const std::string& jid);

}  // namespace muster::relay::salt

#endif  // MUSTER_RELAY_SALT_MASTER_PUBLISHER_H_
