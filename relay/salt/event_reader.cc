#include "relay/salt/event_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "relay/salt/msgpack_codec.h"
#include "spdlog/spdlog.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

constexpr absl::string_view kTagEnd = "\n\n";
constexpr absl::string_view kJobPrefix = "salt/job/";
constexpr size_t kReadChunk = 64 * 1024;

std::string StringField(const json& map, const char* key) {
  auto it = map.find(key);
  return it != map.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The bytes of a str or bin value (the frame body is bin; Salt releases
// that packed it without use_bin_type wrote str).
std::optional<std::string> BytesOf(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_binary()) {
    const json::binary_t& bytes = value.get_binary();
    return std::string(bytes.begin(), bytes.end());
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<bool> ParseEventBody(absl::string_view body, MasterEvent* out) {
  const size_t end = body.find(kTagEnd);
  if (end == absl::string_view::npos) {
    return absl::InvalidArgumentError("event body has no tag end (\\n\\n)");
  }
  const absl::string_view tag = body.substr(0, end);
  if (!absl::StartsWith(tag, kJobPrefix)) return false;
  const absl::string_view rest = tag.substr(kJobPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos || slash == 0) return false;
  const std::string jid(rest.substr(0, slash));
  const absl::string_view what = rest.substr(slash + 1);
  const bool is_new = what == "new";
  const bool is_ret = absl::StartsWith(what, "ret/") && what.size() > 4;
  if (!is_new && !is_ret) return false;
  absl::StatusOr<json> data = DecodeMsgpack(body.substr(end + kTagEnd.size()));
  if (!data.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event ", tag, ": data: ", data.status().message()));
  }
  if (!data->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("event ", tag, ": data is not a map"));
  }
  if (is_new) {
    out->kind = MasterEvent::Kind::kPublish;
    out->publish.salt_jid = jid;
    out->publish.fun = StringField(*data, "fun");
    out->publish.minions = StringListField(*data, "minions");
    out->publish.missing = StringListField(*data, "missing");
    out->publish.stamp = StringField(*data, "_stamp");
    return true;
  }
  absl::StatusOr<SaltReturn> ret = ParseReturnLoad(jid, std::string(what.substr(4)), *data);
  if (!ret.ok()) return ret.status();
  out->kind = MasterEvent::Kind::kReturn;
  out->ret = *std::move(ret);
  return true;
}

MasterEventReader::MasterEventReader(MasterEventReaderOptions options)
    : options_(std::move(options)) {}

MasterEventReader::~MasterEventReader() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status MasterEventReader::Connect() {
  if (fd_ >= 0) return absl::OkStatus();
  next_connect_ = absl::Now() + options_.reconnect_interval;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options_.socket_path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("salt event socket path too long: ", options_.socket_path));
  }
  std::memcpy(address.sun_path, options_.socket_path.data(), options_.socket_path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 &&
      errno != EINPROGRESS) {
    const int error = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("salt event bus ", options_.socket_path, ": ",
                                               std::strerror(error)));
  }
  fd_ = fd;
  buffer_.clear();
  parsed_ = 0;
  ++counters_.connects;
  spdlog::info("salt event bus: connected to {}", options_.socket_path);
  return absl::OkStatus();
}

void MasterEventReader::Disconnect(const std::string& reason) {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  buffer_.clear();
  parsed_ = 0;
  ++counters_.disconnects;
  spdlog::warn("salt event bus {}: disconnected: {}", options_.socket_path, reason);
}

bool MasterEventReader::ParseBuffered(std::vector<MasterEvent>* events) {
  while (parsed_ < buffer_.size()) {
    const absl::string_view rest = absl::string_view(buffer_).substr(parsed_);
    absl::StatusOr<std::optional<size_t>> size = MsgpackObjectSize(rest);
    if (!size.ok()) {
      ++counters_.malformed_frames;
      Disconnect(absl::StrCat("unparseable stream: ", size.status().message()));
      return false;
    }
    if (!size->has_value()) {
      if (static_cast<int64_t>(rest.size()) > options_.max_frame_bytes) {
        ++counters_.malformed_frames;
        Disconnect(absl::StrCat("a frame is larger than ", options_.max_frame_bytes, " bytes"));
        return false;
      }
      break;
    }
    const absl::string_view frame = rest.substr(0, **size);
    parsed_ += **size;
    ++counters_.frames;
    absl::StatusOr<json> decoded = DecodeMsgpack(frame);
    std::optional<std::string> body;
    if (decoded.ok() && decoded->is_object()) {
      if (auto it = decoded->find("body"); it != decoded->end()) body = BytesOf(*it);
    }
    if (!body.has_value()) {
      ++counters_.malformed_frames;
      spdlog::warn("salt event bus: skipped a frame that is not {{head, body}}");
      continue;
    }
    MasterEvent event;
    absl::StatusOr<bool> wanted = ParseEventBody(*body, &event);
    if (!wanted.ok()) {
      ++counters_.malformed_frames;
      spdlog::warn("salt event bus: skipped: {}", std::string(wanted.status().message()));
      continue;
    }
    if (!*wanted) {
      ++counters_.other_events;
      continue;
    }
    if (event.kind == MasterEvent::Kind::kReturn) {
      ++counters_.returns;
    } else {
      ++counters_.publishes;
    }
    events->push_back(std::move(event));
  }
  if (parsed_ > 0 && parsed_ == buffer_.size()) {
    buffer_.clear();
    parsed_ = 0;
  } else if (parsed_ > kReadChunk) {
    buffer_.erase(0, parsed_);
    parsed_ = 0;
  }
  return true;
}

std::vector<MasterEvent> MasterEventReader::Poll(absl::Duration timeout) {
  std::vector<MasterEvent> events;
  const absl::Time deadline = absl::Now() + timeout;
  while (events.empty()) {
    const absl::Time now = absl::Now();
    if (fd_ < 0) {
      if (now >= next_connect_) {
        absl::Status connected = Connect();
        if (!connected.ok()) spdlog::debug("{}", std::string(connected.message()));
      }
      if (fd_ < 0) {
        // Wait for the deadline or the next connect attempt, whichever is first.
        const absl::Time wake = std::min(deadline, next_connect_);
        if (wake <= now) {
          if (now >= deadline) break;
          continue;
        }
        ::poll(nullptr, 0, static_cast<int>(absl::ToInt64Milliseconds(wake - now)) + 1);
        if (absl::Now() >= deadline) break;
        continue;
      }
    }
    const int64_t wait_ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - now));
    pollfd item = {fd_, POLLIN, 0};
    const int ready = ::poll(&item, 1, static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
    if (ready < 0 && errno != EINTR) {
      Disconnect(absl::StrCat("poll: ", std::strerror(errno)));
      continue;
    }
    if (ready > 0) {
      const size_t old_size = buffer_.size();
      buffer_.resize(old_size + kReadChunk);
      const ssize_t got = ::read(fd_, buffer_.data() + old_size, kReadChunk);
      const int error = errno;
      buffer_.resize(old_size + std::max<ssize_t>(got, 0));
      if (got == 0) {
        Disconnect("the master closed the connection");
        continue;
      }
      if (got < 0) {
        if (error != EAGAIN && error != EINTR) Disconnect(std::strerror(error));
        continue;
      }
      ParseBuffered(&events);
    }
    if (absl::Now() >= deadline) break;
  }
  return events;
}

}  // namespace muster::relay::salt
