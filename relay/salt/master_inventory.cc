#include "relay/salt/master_inventory.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "relay/salt/msgpack_codec.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

bool IsSaltId(const std::string& name) {
  return !name.empty() && name[0] != '.' && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// The key names in one key directory; missing directory: empty.
std::vector<std::string> KeyNames(const std::string& dir, std::vector<std::string>* errors) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> handle(opendir(dir.c_str()), closedir);
  if (!handle) return names;
  while (struct dirent* entry = readdir(handle.get())) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (!IsSaltId(name)) {
      if (name[0] != '.') errors->push_back(absl::StrCat(dir, "/", name, ": not a minion id"));
      continue;
    }
    struct stat st;
    const std::string path = absl::StrCat(dir, "/", name);
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      errors->push_back(absl::StrCat(path, ": not a regular file"));
      continue;
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string FlatGrainValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return MsgpackValueToJsonText(value);
}

}  // namespace

absl::StatusOr<MasterKeys> ReadMasterKeys(const std::string& pki_dir) {
  struct stat st;
  if (::stat(pki_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("salt pki_dir ", pki_dir, ": not a directory"));
  }
  MasterKeys keys;
  keys.accepted = KeyNames(pki_dir + "/minions", &keys.errors);
  keys.pending = KeyNames(pki_dir + "/minions_pre", &keys.errors);
  keys.rejected = KeyNames(pki_dir + "/minions_rejected", &keys.errors);
  keys.denied = KeyNames(pki_dir + "/minions_denied", &keys.errors);
  return keys;
}

absl::StatusOr<std::map<std::string, std::string>> ReadCachedGrains(const std::string& cachedir,
                                                                   const std::string& minion_id,
                                                                   int64_t max_bytes) {
  if (!IsSaltId(minion_id)) {
    return absl::InvalidArgumentError(absl::StrCat("minion id '", minion_id, "' is not valid"));
  }
  const std::string path = absl::StrCat(cachedir, "/minions/", minion_id, "/data.p");
  absl::StatusOr<json> data = ReadMsgpackFile(path, max_bytes);
  if (!data.ok()) return data.status();
  if (!data->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a map"));
  }
  auto grains = data->find("grains");
  if (grains == data->end() || !grains->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no 'grains' map"));
  }
  std::map<std::string, std::string> flat;
  for (auto it = grains->begin(); it != grains->end(); ++it) {
    flat[it.key()] = FlatGrainValue(it.value());
  }
  return flat;
}

}  // namespace muster::relay::salt
