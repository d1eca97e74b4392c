#include "relay/salt/master_publisher.h"

#include <zmq.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "relay/salt/msgpack_codec.h"
#include "relay/salt/salt_return.h"
#include "spdlog/spdlog.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

constexpr int64_t kMaxReplyBytes = 16 << 20;

int PollMs(absl::Duration left) {
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
}

bool IsJidSuffixChar(char c) { return absl::ascii_isalnum(c) || c == '_' || c == '-'; }

}  // namespace

bool IsSaltJid(const std::string& jid) {
  if (jid.size() != 20 && (jid.size() <= 21 || jid[20] != '_')) return false;
  for (int i = 0; i < 20; ++i) {
    if (!absl::ascii_isdigit(jid[i])) return false;
  }
  // salt.utils.jid.jid_to_time indexes the month names with digits 4-5: a
  // cached jid with another month makes the master's jobs.list_jobs and
  // jobs.lookup_jid runners fail (IndexError) for every job.
  const int month = (jid[4] - '0') * 10 + (jid[5] - '0');
  if (month < 1 || month > 12) return false;
  for (size_t i = 21; i < jid.size(); ++i) {
    if (!IsJidSuffixChar(jid[i])) return false;
  }
  return true;
}

MasterPublisherOptions PublisherOptionsFor(const MasterConfig& config, const std::string& user) {
  MasterPublisherOptions options;
  options.request_uri = config.RequestUri();
  options.user = user.empty() ? CurrentUserName() : user;
  // salt.client.LocalClient.__read_master_key: root uses the key of the
  // user the master runs as.
  std::string key_user = options.user;
  if (key_user == "root" && !config.user.empty() && config.user != "root") {
    key_user = config.user;
  }
  options.key_file = config.KeyFilePath(key_user);
  return options;
}

std::string EncodePublishRequest(const PublishRequest& request, const std::string& key,
                                 const std::string& user) {
  json load = {
      {"cmd", "publish"},  {"tgt", request.targets}, {"fun", request.fun},
      {"arg", request.args}, {"key", key},           {"tgt_type", "list"},
      {"ret", request.ret}, {"jid", request.salt_jid}, {"user", user},
  };
  if (request.kwargs.is_object() && !request.kwargs.empty()) load["kwargs"] = request.kwargs;
  return EncodeMsgpack(json{{"enc", "clear"}, {"load", std::move(load)}, {"version", 2}});
}

absl::StatusOr<PublishResult> DecodePublishReply(const std::string& reply_bytes) {
  absl::StatusOr<json> reply = DecodeMsgpack(reply_bytes);
  if (!reply.ok()) {
    return absl::InternalError(absl::StrCat("salt master answer: ", reply.status().message()));
  }
  if (reply->is_string()) {
    // handle_message's own refusals: "bad load", "payload and load must be a dict".
    return absl::InternalError(
        absl::StrCat("salt master refused the request: ", reply->get<std::string>()));
  }
  if (!reply->is_object()) return absl::InternalError("salt master answer is not a map");
  if (auto error = reply->find("error"); error != reply->end()) {
    std::string name = "error";
    std::string message = MsgpackValueToJsonText(*error);
    if (error->is_object()) {
      if (auto n = error->find("name"); n != error->end() && n->is_string()) name = *n;
      if (auto m = error->find("message"); m != error->end() && m->is_string()) message = *m;
    }
    if (name == "AuthenticationError" || name == "AuthorizationError") {
      return absl::PermissionDeniedError(absl::StrCat("salt master: ", name, ": ", message));
    }
    return absl::InternalError(absl::StrCat("salt master: ", name, ": ", message));
  }
  auto load = reply->find("load");
  if (load == reply->end() || !load->is_object()) {
    return absl::InternalError(absl::StrCat("salt master answer has no load: ",
                                            MsgpackValueToJsonText(*reply)));
  }
  if (auto error = load->find("error"); error != load->end()) {
    const std::string text = error->is_string() ? error->get<std::string>()
                                                : MsgpackValueToJsonText(*error);
    if (text.rfind("Master could not resolve minions", 0) == 0) {
      return absl::NotFoundError(absl::StrCat("salt master: ", text));
    }
    return absl::InternalError(absl::StrCat("salt master: ", text));
  }
  auto jid = load->find("jid");
  if (jid == load->end() || !jid->is_string()) {
    return absl::InternalError(absl::StrCat("salt master answer has no jid: ",
                                            MsgpackValueToJsonText(*load)));
  }
  PublishResult result;
  result.salt_jid = jid->get<std::string>();
  result.minions = StringListField(*load, "minions");
  result.missing = StringListField(*load, "missing");
  return result;
}

MasterPublisher::MasterPublisher(MasterPublisherOptions options)
    : options_(std::move(options)), context_(zmq_ctx_new()) {}

MasterPublisher::~MasterPublisher() {
  CloseSocket();
  if (context_ != nullptr) zmq_ctx_term(context_);
}

void MasterPublisher::CloseSocket() {
  if (socket_ == nullptr) return;
  int linger = 0;
  zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_close(socket_);
  socket_ = nullptr;
}

absl::Status MasterPublisher::ReadKey() {
  ++key_reads_;
  std::ifstream in(options_.key_file);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("salt master key ", options_.key_file, ": cannot read (the relay must run "
                     "as the user the key belongs to, and the master must have started)"));
  }
  std::string key;
  std::getline(in, key, '\0');
  if (key.empty() || key.size() > 4096) {
    return absl::FailedPreconditionError(
        absl::StrCat("salt master key ", options_.key_file, ": ", key.size(), " bytes"));
  }
  key_ = std::move(key);
  key_loaded_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> MasterPublisher::Exchange(const std::string& request,
                                                      absl::Duration* round_trip) {
  if (context_ == nullptr) return absl::InternalError("zmq context could not be created");
  if (socket_ == nullptr) {
    socket_ = zmq_socket(context_, ZMQ_REQ);
    if (socket_ == nullptr) {
      return absl::InternalError(absl::StrCat("zmq_socket(REQ): ", zmq_strerror(zmq_errno())));
    }
    int one = 1;
    int zero = 0;
    int64_t max_reply = kMaxReplyBytes;
    zmq_setsockopt(socket_, ZMQ_IMMEDIATE, &one, sizeof(one));
    zmq_setsockopt(socket_, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(socket_, ZMQ_MAXMSGSIZE, &max_reply, sizeof(max_reply));
    if (zmq_connect(socket_, options_.request_uri.c_str()) != 0) {
      const std::string error = zmq_strerror(zmq_errno());
      CloseSocket();
      return absl::InvalidArgumentError(
          absl::StrCat("salt master request uri ", options_.request_uri, ": ", error));
    }
  }
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options_.timeout;
  zmq_pollitem_t item = {socket_, 0, ZMQ_POLLOUT, 0};
  while (true) {
    if (zmq_send(socket_, request.data(), request.size(), ZMQ_DONTWAIT) >= 0) break;
    if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) {
      const std::string error = zmq_strerror(zmq_errno());
      CloseSocket();
      return absl::UnavailableError(absl::StrCat("salt master ", options_.request_uri,
                                                 ": send failed: ", error));
    }
    item.revents = 0;
    if (absl::Now() >= deadline ||
        (zmq_poll(&item, 1, PollMs(deadline - absl::Now())) <= 0 && absl::Now() >= deadline)) {
      CloseSocket();
      return absl::UnavailableError(absl::StrCat(
          "salt master unreachable: no connection to ", options_.request_uri, " within ",
          absl::FormatDuration(options_.timeout), " (not published)"));
    }
  }
  ++requests_sent_;
  item = {socket_, 0, ZMQ_POLLIN, 0};
  while (true) {
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    if (zmq_msg_recv(&reply, socket_, ZMQ_DONTWAIT) >= 0) {
      std::string bytes(static_cast<const char*>(zmq_msg_data(&reply)), zmq_msg_size(&reply));
      const bool more = zmq_msg_more(&reply);
      zmq_msg_close(&reply);
      *round_trip = absl::Now() - start;
      if (more) {
        CloseSocket();
        return absl::InternalError("salt master answered with more than one frame");
      }
      return bytes;
    }
    zmq_msg_close(&reply);
    if (zmq_errno() != EAGAIN && zmq_errno() != EINTR) {
      const std::string error = zmq_strerror(zmq_errno());
      CloseSocket();
      return absl::UnavailableError(absl::StrCat("salt master ", options_.request_uri,
                                                 ": receive failed: ", error));
    }
    item.revents = 0;
    if (absl::Now() >= deadline ||
        (zmq_poll(&item, 1, PollMs(deadline - absl::Now())) <= 0 && absl::Now() >= deadline)) {
      CloseSocket();
      return absl::DeadlineExceededError(absl::StrCat(
          "salt master ", options_.request_uri, " did not answer within ",
          absl::FormatDuration(options_.timeout), " (the job may have been published)"));
    }
  }
}

absl::StatusOr<PublishResult> MasterPublisher::Publish(const PublishRequest& request) {
  if (!IsSaltJid(request.salt_jid)) {
    return absl::InvalidArgumentError(
        absl::StrCat("salt jid '", request.salt_jid, "' is not 20 digits [_suffix]"));
  }
  if (request.targets.empty()) return absl::InvalidArgumentError("publish: no targets");
  if (request.fun.empty()) return absl::InvalidArgumentError("publish: no function");
  if (!request.args.is_array()) return absl::InvalidArgumentError("publish: args is not a list");
  if (!request.kwargs.is_null() && !request.kwargs.is_object()) {
    return absl::InvalidArgumentError("publish: kwargs is not a map");
  }
  if (!key_loaded_) {
    if (absl::Status read = ReadKey(); !read.ok()) return read;
  }
  bool reread = false;
  while (true) {
    absl::Duration round_trip;
    absl::StatusOr<std::string> reply =
        Exchange(EncodePublishRequest(request, key_, options_.user), &round_trip);
    if (!reply.ok()) return reply.status();
    absl::StatusOr<PublishResult> result = DecodePublishReply(*reply);
    if (result.ok()) {
      result->round_trip = round_trip;
      result->key_reread = reread;
      return result;
    }
    if (!absl::IsPermissionDenied(result.status()) || reread) return result.status();
    // The master may have restarted and written a new key: read it again,
    // and retry once if it changed.
    const std::string old_key = key_;
    if (absl::Status read = ReadKey(); !read.ok()) return read;
    if (key_ == old_key) return result.status();
    spdlog::info("salt master refused the key for user {}; read a new one from {}",
                 options_.user, options_.key_file);
    reread = true;
  }
}

}  // namespace muster::relay::salt
