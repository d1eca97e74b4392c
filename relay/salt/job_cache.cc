#include "relay/salt/job_cache.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "relay/salt/msgpack_codec.h"
#include "spdlog/spdlog.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

// .load.p and .minions.p are small; a larger one is not Salt's.
constexpr int64_t kMaxLoadBytes = 16 << 20;

absl::StatusOr<std::string> HexDigest(const std::string& hash_type, const std::string& text) {
  const EVP_MD* md = EVP_get_digestbyname(hash_type.c_str());
  if (md == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("hash_type '", hash_type, "' is unknown"));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, md, nullptr) != 1) {
    return absl::InternalError(absl::StrCat("hash_type '", hash_type, "': digest failed"));
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Names of the subdirectories of `dir`, sorted; dot entries skipped.
std::vector<std::string> SubdirectoryNames(const std::string& dir) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> handle(opendir(dir.c_str()), closedir);
  if (!handle) return names;
  while (struct dirent* entry = readdir(handle.get())) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.') continue;
    if (IsDirectory(dir + "/" + name)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

absl::StatusOr<std::string> JobCacheDir(const std::string& cachedir, const std::string& salt_jid,
                                        const std::string& hash_type) {
  absl::StatusOr<std::string> hex = HexDigest(hash_type, salt_jid);
  if (!hex.ok()) return hex.status();
  return absl::StrCat(cachedir, "/jobs/", hex->substr(0, 2), "/", hex->substr(2));
}

absl::StatusOr<CachedJob> ReadCachedJob(const std::string& cachedir, const std::string& salt_jid,
                                        const std::string& hash_type) {
  absl::StatusOr<std::string> dir = JobCacheDir(cachedir, salt_jid, hash_type);
  if (!dir.ok()) return dir.status();
  if (!IsDirectory(*dir)) {
    return absl::NotFoundError(
        absl::StrCat("salt jid ", salt_jid, ": not in the job cache (", *dir, ")"));
  }
  CachedJob job;
  json fun_args = json::array();
  absl::StatusOr<json> load = ReadMsgpackFile(*dir + "/.load.p", kMaxLoadBytes);
  if (load.ok() && load->is_object()) {
    if (auto fun = load->find("fun"); fun != load->end() && fun->is_string()) {
      job.fun = fun->get<std::string>();
    }
    if (auto arg = load->find("arg"); arg != load->end()) fun_args = *arg;
  } else if (!load.ok() && !absl::IsNotFound(load.status())) {
    job.errors.push_back(std::string(load.status().message()));
  }
  absl::StatusOr<json> minions = ReadMsgpackFile(*dir + "/.minions.p", kMaxLoadBytes);
  if (minions.ok() && minions->is_array()) {
    for (const json& id : *minions) {
      if (id.is_string()) job.minions.push_back(id.get<std::string>());
    }
  } else if (!minions.ok() && !absl::IsNotFound(minions.status())) {
    job.errors.push_back(std::string(minions.status().message()));
  }
  for (const std::string& minion : SubdirectoryNames(*dir)) {
    const std::string path = absl::StrCat(*dir, "/", minion, "/return.p");
    absl::StatusOr<json> stored = ReadMsgpackFile(path);
    if (!stored.ok()) {
      if (!absl::IsNotFound(stored.status())) {
        job.errors.push_back(std::string(stored.status().message()));
      }
      continue;
    }
    json full = *stored;
    if (full.is_object()) {
      if (!full.contains("fun") && !job.fun.empty()) full["fun"] = job.fun;
      if (!full.contains("fun_args")) full["fun_args"] = fun_args;
    }
    absl::StatusOr<SaltReturn> parsed = ParseReturnLoad(salt_jid, minion, full);
    if (!parsed.ok()) {
      job.errors.push_back(absl::StrCat(path, ": ", parsed.status().message()));
      continue;
    }
    job.returns.push_back(*std::move(parsed));
  }
  for (const std::string& error : job.errors) {
    spdlog::warn("salt job cache: skipped {}", error);
  }
  return job;
}

absl::StatusOr<std::vector<SaltReturn>> ReadJobReturns(const std::string& cachedir,
                                                       const std::string& salt_jid,
                                                       const std::string& hash_type) {
  absl::StatusOr<CachedJob> job = ReadCachedJob(cachedir, salt_jid, hash_type);
  if (!job.ok()) return job.status();
  return std::move(job->returns);
}

}  // namespace muster::relay::salt
