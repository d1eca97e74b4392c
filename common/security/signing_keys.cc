#include "common/security/signing_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace muster::security {
namespace {

std::string Hex(const uint8_t* bytes, size_t size) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), size));
}

// Decodes exactly `size` bytes of lowercase or uppercase hex.
bool DecodeHex(absl::string_view hex, uint8_t* out, size_t size) {
  if (hex.size() != 2 * size) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  std::string bytes = absl::HexStringToBytes(hex);
  if (bytes.size() != size) return false;
  std::memcpy(out, bytes.data(), size);
  return true;
}

// Writes `content` to `path` with `mode`, refusing to replace an existing
// file (O_EXCL), and syncs it.
absl::Status WriteNewFile(const std::string& path, absl::string_view content, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  // The umask may have removed bits; set exactly `mode`.
  ::fchmod(fd, mode);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(error)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InitSodium() {
  static const int result = sodium_init();
  if (result < 0) return absl::InternalError("libsodium could not be initialised");
  return absl::OkStatus();
}

absl::Status CheckPrivateFileMode(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: mode %04o lets other users read a secret key; run chmod 600 %s", path,
        info.st_mode & 07777, path));
  }
  return absl::OkStatus();
}

absl::Status WritePrivateFile(const std::string& path, absl::string_view content) {
  return WriteNewFile(path, content, 0600);
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return absl::UnavailableError(absl::StrCat(path, ": read error"));
  return content.str();
}

absl::Status WritePublicFileIfChanged(const std::string& path, absl::string_view content) {
  absl::StatusOr<std::string> existing = ReadKeyFile(path);
  if (existing.ok() && *existing == content) return absl::OkStatus();
  return WritePublicFile(path, content);
}

absl::Status WritePublicFile(const std::string& path, absl::string_view content) {
  std::string temp = absl::StrCat(path, ".tmp");
  ::unlink(temp.c_str());
  if (absl::Status written = WriteNewFile(temp, content, 0644); !written.ok()) return written;
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string KeyId(const PublicKey& key) {
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, key.data(), key.size());
  return Hex(digest, 8);
}

std::string PublicKeyHex(const PublicKey& key) { return Hex(key.data(), key.size()); }

absl::StatusOr<PublicKey> ParsePublicKeyHex(absl::string_view hex) {
  PublicKey key;
  if (!DecodeHex(absl::StripAsciiWhitespace(hex), key.data(), key.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "public key '", absl::CEscape(hex.substr(0, 80)),
        "': expected 64 hex digits (an Ed25519 public key, as in jobd's .pub file)"));
  }
  return key;
}

absl::StatusOr<SigningKey> SigningKey::FromSeed(const uint8_t seed[32]) {
  if (absl::Status init = InitSodium(); !init.ok()) return init;
  SigningKey key;
  crypto_sign_seed_keypair(key.public_key_.data(), key.secret_.data(), seed);
  key.key_id_ = KeyId(key.public_key_);
  return key;
}

absl::StatusOr<SigningKey> SigningKey::Load(const std::string& path) {
  absl::StatusOr<std::string> content = ReadKeyFile(path);
  if (!content.ok()) return content.status();
  if (absl::Status mode = CheckPrivateFileMode(path); !mode.ok()) return mode;
  uint8_t seed[32];
  if (!DecodeHex(absl::StripAsciiWhitespace(*content), seed, sizeof seed)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not a signing key (expected 64 hex digits, an Ed25519 seed, and a newline)"));
  }
  absl::StatusOr<SigningKey> key = FromSeed(seed);
  sodium_memzero(seed, sizeof seed);
  return key;
}

absl::StatusOr<SigningKey> SigningKey::LoadOrCreate(const std::string& path) {
  absl::StatusOr<SigningKey> loaded = Load(path);
  if (!absl::IsNotFound(loaded.status())) {
    if (loaded.ok()) {
      // Keep the .pub file in step with the key (it may have been deleted).
      if (absl::Status written = WritePublicFileIfChanged(
              absl::StrCat(path, ".pub"), absl::StrCat(PublicKeyHex(loaded->public_key()), "\n"));
          !written.ok()) {
        return written;
      }
    }
    return loaded;
  }
  if (absl::Status init = InitSodium(); !init.ok()) return init;
  uint8_t seed[32];
  randombytes_buf(seed, sizeof seed);
  absl::Status written = WritePrivateFile(path, absl::StrCat(Hex(seed, sizeof seed), "\n"));
  if (!written.ok()) {
    sodium_memzero(seed, sizeof seed);
    return written;
  }
  absl::StatusOr<SigningKey> key = FromSeed(seed);
  sodium_memzero(seed, sizeof seed);
  if (!key.ok()) return key;
  if (absl::Status pub = WritePublicFile(absl::StrCat(path, ".pub"),
                                         absl::StrCat(PublicKeyHex(key->public_key()), "\n"));
      !pub.ok()) {
    return pub;
  }
  return key;
}

SigningKey SigningKey::Generate() {
  InitSodium().IgnoreError();
  uint8_t seed[32];
  randombytes_buf(seed, sizeof seed);
  absl::StatusOr<SigningKey> key = FromSeed(seed);
  sodium_memzero(seed, sizeof seed);
  return *std::move(key);
}

std::string SigningKey::Sign(absl::string_view message) const {
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_.data());
  return signature;
}

bool VerifySignature(const PublicKey& key, absl::string_view message,
                     absl::string_view signature) {
  if (signature.size() != crypto_sign_BYTES) return false;
  if (!InitSodium().ok()) return false;
  return crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                     reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), key.data()) == 0;
}

absl::StatusOr<std::vector<PublicKey>> ParseTrustedKeys(absl::string_view content,
                                                        absl::string_view source) {
  std::vector<PublicKey> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    absl::StatusOr<PublicKey> key = ParsePublicKeyHex(line);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", line_number, ": ", key.status().message()));
    }
    keys.push_back(*key);
  }
  return keys;
}

absl::StatusOr<std::unique_ptr<TrustedKeys>> TrustedKeys::Create(
    std::string file, std::vector<std::string> inline_keys) {
  if (absl::Status init = InitSodium(); !init.ok()) return init;
  std::unique_ptr<TrustedKeys> trusted(new TrustedKeys());
  trusted->file_ = std::move(file);
  for (const std::string& hex : inline_keys) {
    absl::StatusOr<PublicKey> key = ParsePublicKeyHex(hex);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--trusted_key: ", key.status().message()));
    }
    trusted->inline_keys_.push_back(*key);
  }
  absl::StatusOr<bool> loaded = trusted->Load(/*force=*/true);
  if (!loaded.ok()) return loaded.status();
  if (trusted->size() == 0) {
    return absl::InvalidArgumentError(
        trusted->file_.empty()
            ? "no trusted key: give --trusted_keys=FILE (jobd's signing key .pub file) or "
              "--trusted_key=HEX"
            : absl::StrCat(trusted->file_, ": holds no key (one 64-hex-digit public key a line)"));
  }
  return trusted;
}

absl::StatusOr<bool> TrustedKeys::Load(bool force) {
  std::vector<PublicKey> keys = inline_keys_;
  if (!file_.empty()) {
    struct stat info;
    if (::stat(file_.c_str(), &info) != 0) {
      return absl::UnavailableError(absl::StrCat(file_, ": ", std::strerror(errno)));
    }
    int64_t mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 +
                       info.st_mtim.tv_nsec;
    if (!force && mtime_ns == file_mtime_ns_ && info.st_size == file_size_) return false;
    absl::StatusOr<std::string> content = ReadKeyFile(file_);
    if (!content.ok()) return content.status();
    absl::StatusOr<std::vector<PublicKey>> from_file = ParseTrustedKeys(*content, file_);
    if (!from_file.ok()) return from_file.status();
    keys.insert(keys.end(), from_file->begin(), from_file->end());
    file_mtime_ns_ = mtime_ns;
    file_size_ = info.st_size;
  } else if (!force) {
    return false;
  }
  // A reload that would leave no key (an editor truncating the file before
  // writing it) would make every dispatch refused: keep the keys in force.
  if (keys.empty() && !force) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ": holds no key; the previous keys stay in force"));
  }
  absl::flat_hash_map<std::string, PublicKey> by_id;
  for (const PublicKey& key : keys) by_id.emplace(KeyId(key), key);
  absl::MutexLock lock(&mutex_);
  bool changed = by_id.size() != keys_.size();
  if (!changed) {
    for (const auto& [id, key] : by_id) {
      if (!keys_.contains(id)) changed = true;
    }
  }
  keys_ = std::move(by_id);
  return changed;
}

absl::StatusOr<bool> TrustedKeys::ReloadIfChanged() { return Load(/*force=*/false); }

bool TrustedKeys::Find(absl::string_view key_id, PublicKey* key) const {
  absl::MutexLock lock(&mutex_);
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return false;
  *key = it->second;
  return true;
}

size_t TrustedKeys::size() const {
  absl::MutexLock lock(&mutex_);
  return keys_.size();
}

std::vector<std::string> TrustedKeys::KeyIds() const {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> ids;
  for (const auto& [id, key] : keys_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace muster::security
