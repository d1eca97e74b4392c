#include "tools/redis_acl/redis_acl.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/ids/ids.h"
#include "common/redis/redis_credentials.h"

namespace muster::redis_acl {
namespace {

constexpr char kAclFileName[] = "users.acl";
constexpr char kRelayUserPrefix[] = "relay-";

bool IsPrefixChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == ':' || c == '.' || c == '_' || c == '{' || c == '}' || c == '/' || c == '-';
}

std::string Sha256Hex(absl::string_view text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::Status InitSodium() {
  if (sodium_init() < 0) return absl::InternalError("libsodium did not initialise");
  return absl::OkStatus();
}

// Writes `content` to `path` with mode 0600 (via a temporary file and a
// rename, so a reader never sees half a file).
absl::Status WritePrivateFile(const std::string& path, absl::string_view content) {
  std::string temporary = absl::StrCat(path, ".tmp");
  unlink(temporary.c_str());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("create ", temporary, ": ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < content.size()) {
    ssize_t n = write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string error = std::strerror(errno);
      close(fd);
      unlink(temporary.c_str());
      return absl::UnavailableError(absl::StrCat("write ", temporary, ": ", error));
    }
    written += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    unlink(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("write ", temporary, ": ", std::strerror(errno)));
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    std::string error = std::strerror(errno);
    unlink(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("rename to ", path, ": ", error));
  }
  return absl::OkStatus();
}

// The password in `path`, or a new random one written there.
absl::StatusOr<std::string> LoadOrCreatePassword(const std::string& path) {
  absl::StatusOr<std::string> existing = ReadRedisPasswordFile(path);
  if (!absl::IsNotFound(existing.status())) return existing;
  unsigned char random[32];
  randombytes_buf(random, sizeof(random));
  std::string password = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  if (absl::Status written = WritePrivateFile(path, absl::StrCat(password, "\n"));
      !written.ok()) {
    return written;
  }
  return password;
}

}  // namespace

std::string RelayUser(absl::string_view datacenter) {
  return absl::StrCat(kRelayUserPrefix, datacenter);
}

absl::Status RedisAclSpec::Validate() const {
  for (char c : prefix) {
    if (!IsPrefixChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "redis prefix '", absl::CEscape(prefix),
          "': only [A-Za-z0-9:._{}/-] may appear in a prefix an ACL key pattern names"));
    }
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& datacenter : datacenters) {
    if (absl::Status valid = ValidateDatacenter(datacenter); !valid.ok()) return valid;
    if (!seen.insert(datacenter).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("datacenter '", datacenter, "' is listed twice"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> Users(const RedisAclSpec& spec) {
  std::vector<std::string> users = {kJobdUser};
  for (const std::string& datacenter : spec.datacenters) users.push_back(RelayUser(datacenter));
  users.push_back(kReplicaUser);
  users.push_back(kSentinelUser);
  if (spec.admin) users.push_back(kAdminUser);
  return users;
}

std::string Rules(const RedisAclSpec& spec, absl::string_view user) {
  const std::string& p = spec.prefix;
  if (user == kAdminUser) return "~* &* +@all";
  // ROLE and INFO are @dangerous; jobd reads the role and the replication
  // figures (docs/OPERATIONS.md "Redis Sentinel").
  if (user == kJobdUser) {
    return absl::StrCat("~", p, "* resetchannels +@all -@dangerous +role +info");
  }
  // What a replica runs on its primary to sync (masteruser).
  if (user == kReplicaUser) return "resetchannels -@all +psync +replconf +ping";
  // What Redis' Sentinel documentation asks for on every data node: it
  // watches (INFO, ROLE, PING), talks to the other sentinels on the hello
  // channel, and reconfigures a node in a MULTI ... EXEC.
  if (user == kSentinelUser) {
    return "allchannels -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role "
           "+publish +info +client|setname +client|kill +script|kill";
  }
  absl::string_view datacenter = user.substr(std::strlen(kRelayUserPrefix));
  // Root rules: XADD, write-only, on the two shared streams; every other
  // command in a selector of its own keys. Keys per docs/PROTOCOL.md 2, 8.4
  // (relay/relay_options.h names them in the relay).
  // MULTI and EXEC name no key; Redis checks each queued command itself.
  return absl::StrCat("resetchannels -@all +ping +role +multi +exec +xadd %W~", p, "returns %W~", p,
                      "events", " (+xread +xinfo|stream %R~", p, "jobs:", datacenter, ")",
                      " (+get %R~", p, "expected:", datacenter, ":*)",
                      " (+hget %R~", p, "committed:", datacenter, ")",
                      " (+hgetall +hmget +hsetnx +hset +watch ~", p, "minion_keys:", datacenter,
                      ")", " (+get +incr ~", p, "minion_keys_version:", datacenter, ")");
}

absl::StatusOr<std::string> AclFileText(const RedisAclSpec& spec,
                                        const std::map<std::string, std::string>& passwords) {
  if (absl::Status valid = spec.Validate(); !valid.ok()) return valid;
  if (absl::Status ready = InitSodium(); !ready.ok()) return ready;
  // Redis reads no comment in an ACL file: only "user" lines.
  std::string text = "user default off resetkeys resetchannels -@all\n";
  for (const std::string& user : Users(spec)) {
    auto it = passwords.find(user);
    if (it == passwords.end() || it->second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("no password for redis user '", user, "'"));
    }
    absl::StrAppend(&text, "user ", user, " on #", Sha256Hex(it->second), " ",
                    Rules(spec, user), "\n");
  }
  return text;
}

absl::StatusOr<AclFiles> WriteAclFiles(const RedisAclSpec& spec, const std::string& dir) {
  if (absl::Status valid = spec.Validate(); !valid.ok()) return valid;
  if (absl::Status ready = InitSodium(); !ready.ok()) return ready;
  AclFiles files;
  files.acl_file = absl::StrCat(dir, "/", kAclFileName);
  std::map<std::string, std::string> passwords;
  for (const std::string& user : Users(spec)) {
    std::string path = absl::StrCat(dir, "/", user, ".password");
    absl::StatusOr<std::string> password = LoadOrCreatePassword(path);
    if (!password.ok()) return password.status();
    passwords[user] = *std::move(password);
    files.password_files[user] = std::move(path);
  }
  absl::StatusOr<std::string> text = AclFileText(spec, passwords);
  if (!text.ok()) return text.status();
  if (absl::Status written = WritePrivateFile(files.acl_file, *text); !written.ok()) {
    return written;
  }
  return files;
}

}  // namespace muster::redis_acl
