#include "relay/salt/master_config.h"

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace muster::relay::salt {
namespace {

// Strips a trailing comment and matching quotes from a scalar.
std::string ScalarValue(absl::string_view raw) {
  absl::string_view value = absl::StripAsciiWhitespace(raw);
  if (!value.empty() && (value.front() == '\'' || value.front() == '"')) {
    const char quote = value.front();
    const size_t end = value.find(quote, 1);
    if (end != absl::string_view::npos) return std::string(value.substr(1, end - 1));
  }
  const size_t comment = value.find(" #");
  if (comment != absl::string_view::npos) value = value.substr(0, comment);
  return std::string(absl::StripAsciiWhitespace(value));
}

// salt.config.prepend_root_dir for one path: a path already under root_dir
// stays, any other absolute path is moved under it.
std::string UnderRoot(const std::string& root_dir, const std::string& path) {
  if (root_dir.empty() || root_dir == "/") return path;
  std::string root = root_dir;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (path == root || absl::StartsWith(path, root + "/")) return path;
  if (absl::StartsWith(path, "/")) return root + path;
  return root + "/" + path;
}

bool IsHashType(absl::string_view name) {
  for (absl::string_view known : {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}) {
    if (name == known) return true;
  }
  return false;
}

}  // namespace

std::string MasterConfig::RequestUri() const {
  std::string host = interface;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = absl::StrCat("[", host, "]");
  return absl::StrCat("tcp://", host, ":", ret_port);
}

std::string MasterConfig::EventPublisherPath() const {
  return absl::StrCat(sock_dir, "/master_event_pub.ipc");
}

std::string MasterConfig::KeyFilePath(const std::string& publishing_user) const {
  std::string name = publishing_user.empty() ? CurrentUserName() : publishing_user;
  return absl::StrCat(cachedir, "/.", name, "_key");
}

std::string CurrentUserName() {
  struct passwd entry;
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwuid_r(geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found) {
    return found->pw_name;
  }
  return "root";
}

absl::StatusOr<MasterConfig> ParseMasterConfig(absl::string_view text) {
  absl::flat_hash_map<std::string, std::pair<std::string, int>> values;  // key -> (value, line)
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty() || line.front() == ' ' || line.front() == '\t' || line.front() == '#' ||
        line.front() == '-') {
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    std::string key(absl::StripAsciiWhitespace(line.substr(0, colon)));
    values[key] = {ScalarValue(line.substr(colon + 1)), line_number};
  }
  MasterConfig config;
  auto text_value = [&](const char* key, std::string* out) {
    auto it = values.find(key);
    if (it != values.end() && !it->second.first.empty()) *out = it->second.first;
  };
  text_value("root_dir", &config.root_dir);
  text_value("cachedir", &config.cachedir);
  text_value("sock_dir", &config.sock_dir);
  text_value("pki_dir", &config.pki_dir);
  text_value("interface", &config.interface);
  text_value("hash_type", &config.hash_type);
  text_value("user", &config.user);
  text_value("master_job_cache", &config.master_job_cache);
  if (auto it = values.find("ret_port"); it != values.end()) {
    int port = 0;
    if (!absl::SimpleAtoi(it->second.first, &port) || port < 1 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("master config line ", it->second.second,
                                                     ": ret_port '", it->second.first,
                                                     "' is not a port number"));
    }
    config.ret_port = port;
  }
  if (auto it = values.find("job_cache"); it != values.end()) {
    const std::string lower = absl::AsciiStrToLower(it->second.first);
    config.job_cache = !(lower == "false" || lower == "no" || lower == "off");
  }
  config.hash_type = absl::AsciiStrToLower(config.hash_type);
  if (!IsHashType(config.hash_type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("master config: hash_type '", config.hash_type, "' is not one of md5, "
                     "sha1, sha224, sha256, sha384, sha512"));
  }
  config.cachedir = UnderRoot(config.root_dir, config.cachedir);
  config.sock_dir = UnderRoot(config.root_dir, config.sock_dir);
  config.pki_dir = UnderRoot(config.root_dir, config.pki_dir);
  return config;
}

absl::StatusOr<MasterConfig> LoadMasterConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("master config ", path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<MasterConfig> config = ParseMasterConfig(text.str());
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

}  // namespace muster::relay::salt
