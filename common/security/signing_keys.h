// Ed25519 keys of jobd's dispatch signatures (libsodium) and the trusted
// public key ring of relays and minions (docs/SECURITY.md "Keys").
//
// Files:
//   signing key  64 lowercase hex digits of the 32-byte Ed25519 seed and a
//                newline, mode 0600 (refused when group or others can read
//                it). Created by LoadOrCreateSigningKey on first start.
//   public key   <signing key path>.pub: 64 hex digits of the public key
//                and a newline, mode 0644. Written beside the signing key.
//   trusted keys one public key per line (64 hex digits); blank lines and
//                lines starting with '#' are ignored; anything else is an
//                error naming the line. Several keys: rotation.
// A key id is the first 8 bytes of SHA-256(public key), 16 hex digits.
#ifndef MUSTER_COMMON_SECURITY_SIGNING_KEYS_H_
#define MUSTER_COMMON_SECURITY_SIGNING_KEYS_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace muster::security {

// Initialises libsodium once (sodium_init); safe from any thread. Every
// function of this library calls it; a binary may call it early to fail
// fast. Internal error when libsodium cannot start.
absl::Status InitSodium();

using PublicKey = std::array<uint8_t, 32>;

std::string KeyId(const PublicKey& key);
std::string PublicKeyHex(const PublicKey& key);
// 64 hex digits -> key; InvalidArgument otherwise.
absl::StatusOr<PublicKey> ParsePublicKeyHex(absl::string_view hex);

class SigningKey {
 public:
  // Reads the key at `path`, or when the file does not exist creates it
  // (0600, its directory must exist) and its .pub file. InvalidArgument for
  // a malformed file, PermissionDenied for a file readable by group or
  // others, Unavailable for I/O errors; each message names the path.
  static absl::StatusOr<SigningKey> LoadOrCreate(const std::string& path);
  // Reads an existing key only (NotFound when missing).
  static absl::StatusOr<SigningKey> Load(const std::string& path);
  // A new random key, in memory (tests).
  static SigningKey Generate();
  // The key of a 32-byte Ed25519 seed (test vectors).
  static absl::StatusOr<SigningKey> FromSeed(const uint8_t seed[32]);

  const PublicKey& public_key() const { return public_key_; }
  const std::string& key_id() const { return key_id_; }
  // 64-byte detached signature of `message`.
  std::string Sign(absl::string_view message) const;

 private:
  SigningKey() = default;
  std::array<uint8_t, 64> secret_{};  // libsodium's seed || public key
  PublicKey public_key_{};
  std::string key_id_;
};

// The public keys a relay or minion trusts, from a file and/or a list given
// on the command line. Thread-safe. The file is re-read by Reload() (relays
// and minions call it on SIGHUP and when the file's mtime changes, checked
// every few seconds), so a new key can be added and an old one removed with
// jobs in flight (docs/SECURITY.md "Rotating jobd's key").
class TrustedKeys {
 public:
  // `file` may be empty (only `inline_keys`); `inline_keys` are hex keys.
  // InvalidArgument when a key is malformed or there is no key at all.
  static absl::StatusOr<std::unique_ptr<TrustedKeys>> Create(
      std::string file, std::vector<std::string> inline_keys);
  // Re-reads the file if its mtime or size changed. On error the previous
  // keys stay in force and the error is returned (log it). True when the
  // set changed.
  absl::StatusOr<bool> ReloadIfChanged();
  // The key with this id, if trusted.
  bool Find(absl::string_view key_id, PublicKey* key) const;
  size_t size() const;
  std::vector<std::string> KeyIds() const;

 private:
  TrustedKeys() = default;
  // Reads the file (always when `force`, else only when it changed) and
  // replaces the set. True when the set changed.
  absl::StatusOr<bool> Load(bool force);
  std::string file_;
  std::vector<PublicKey> inline_keys_;
  mutable absl::Mutex mutex_;
  absl::flat_hash_map<std::string, PublicKey> keys_ ABSL_GUARDED_BY(mutex_);
  // Only touched by Create and ReloadIfChanged, which callers do not run
  // concurrently.
  int64_t file_mtime_ns_ = 0;
  int64_t file_size_ = -1;
};

// Ed25519 verification of a detached 64-byte signature.
bool VerifySignature(const PublicKey& key, absl::string_view message,
                     absl::string_view signature);

// The keys of a trusted-keys file's `content`; `source` names it in errors
// ("FILE line N: ...").
absl::StatusOr<std::vector<PublicKey>> ParseTrustedKeys(absl::string_view content,
                                                        absl::string_view source);

// Key files (shared with curve_keys): OK when group and others have no
// access to `path`, else PermissionDenied saying how to fix it.
absl::Status CheckPrivateFileMode(const std::string& path);
// Creates `path` (which must not exist) with mode 0600 and `content`, synced.
absl::Status WritePrivateFile(const std::string& path, absl::string_view content);
// Writes `path` (replacing it atomically) with mode 0644.
absl::Status WritePublicFile(const std::string& path, absl::string_view content);
// WritePublicFile unless `path` already holds exactly `content`.
absl::Status WritePublicFileIfChanged(const std::string& path, absl::string_view content);
// The whole content of a (small) key file. NotFound when it does not
// exist, Unavailable for other I/O errors; messages name the path.
absl::StatusOr<std::string> ReadKeyFile(const std::string& path);

}  // namespace muster::security

#endif  // MUSTER_COMMON_SECURITY_SIGNING_KEYS_H_
