#include "common/security/curve_keys.h"

#include <sodium.h>
#include <zmq.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/security/signing_keys.h"

namespace muster::security {
namespace {

constexpr size_t kZ85KeyLength = 40;

bool DecodeZ85Key(absl::string_view z85, uint8_t out[32]) {
  if (z85.size() != kZ85KeyLength) return false;
  std::string text(z85);
  return zmq_z85_decode(out, text.c_str()) != nullptr;
}

absl::StatusOr<CurveKeyPair> ParseKeyPair(const std::string& path, absl::string_view content) {
  CurveKeyPair pair;
  for (absl::string_view line : absl::StrSplit(content, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "public ")) {
      pair.public_z85 = std::string(absl::StripAsciiWhitespace(line));
    } else if (absl::ConsumePrefix(&line, "secret ")) {
      pair.secret_z85 = std::string(absl::StripAsciiWhitespace(line));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": expected the lines 'public <z85>' and 'secret <z85>'"));
    }
  }
  uint8_t public_key[32];
  uint8_t secret_key[32];
  if (!DecodeZ85Key(pair.public_z85, public_key) || !DecodeZ85Key(pair.secret_z85, secret_key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": a key is not 40 characters of Z85"));
  }
  // The public key must be the secret key's.
  char derived[kZ85KeyLength + 1];
  if (zmq_curve_public(derived, pair.secret_z85.c_str()) != 0 ||
      pair.public_z85 != derived) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the public key does not belong to the secret key"));
  }
  sodium_memzero(secret_key, sizeof secret_key);
  return pair;
}

}  // namespace

absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  char public_key[kZ85KeyLength + 1];
  char secret_key[kZ85KeyLength + 1];
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    return absl::InternalError(absl::StrCat("zmq_curve_keypair: ", zmq_strerror(zmq_errno()),
                                            " (libzmq built without CURVE?)"));
  }
  CurveKeyPair pair{public_key, secret_key};
  sodium_memzero(secret_key, sizeof secret_key);
  return pair;
}

absl::StatusOr<CurveKeyPair> LoadOrCreateCurveKeyPair(const std::string& path,
                                                      const std::string& public_path) {
  absl::StatusOr<CurveKeyPair> pair;
  absl::StatusOr<std::string> content = ReadKeyFile(path);
  if (content.ok()) {
    if (absl::Status mode = CheckPrivateFileMode(path); !mode.ok()) return mode;
    pair = ParseKeyPair(path, *content);
    if (!pair.ok()) return pair.status();
  } else if (absl::IsNotFound(content.status())) {
    pair = GenerateCurveKeyPair();
    if (!pair.ok()) return pair.status();
    if (absl::Status written = WritePrivateFile(
            path, absl::StrCat("public ", pair->public_z85, "\nsecret ", pair->secret_z85, "\n"));
        !written.ok()) {
      return written;
    }
  } else {
    return content.status();
  }
  if (!public_path.empty()) {
    if (absl::Status written =
            WritePublicFileIfChanged(public_path, absl::StrCat(pair->public_z85, "\n"));
        !written.ok()) {
      return written;
    }
  }
  return pair;
}

absl::Status ValidateCurvePublicKey(absl::string_view z85) {
  uint8_t key[32];
  if (!DecodeZ85Key(z85, key)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CURVE public key '", absl::CEscape(z85.substr(0, 60)),
        "': expected 40 characters of Z85 (as in the relay's relay_curve.pub)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadCurvePublicKey(const std::string& path_or_key) {
  if (ValidateCurvePublicKey(path_or_key).ok()) return path_or_key;
  absl::StatusOr<std::string> content = ReadKeyFile(path_or_key);
  if (!content.ok()) return content.status();
  std::string key(absl::StripAsciiWhitespace(*content));
  if (absl::Status valid = ValidateCurvePublicKey(key); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path_or_key, ": ", valid.message()));
  }
  return key;
}

std::string CurveFingerprint(absl::string_view public_z85) {
  uint8_t key[32];
  if (!DecodeZ85Key(public_z85, key)) return "invalid";
  InitSodium().IgnoreError();
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, key, sizeof key);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), 8));
}

}  // namespace muster::security
