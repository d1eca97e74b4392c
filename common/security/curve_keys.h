// ZeroMQ CURVE key pairs of relays and minions (docs/SECURITY.md "Keys",
// docs/PROTOCOL.md 8.4). Keys are handled as ZeroMQ's Z85 text (40
// characters for 32 bytes), which is what the socket options take.
//
// Key pair file: two lines "public <z85>" and "secret <z85>", mode 0600
// (refused when group or others can read it). Public key file: the Z85
// public key and a newline (what minions pin with --relay_public_key_file).
#ifndef MUSTER_COMMON_SECURITY_CURVE_KEYS_H_
#define MUSTER_COMMON_SECURITY_CURVE_KEYS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster::security {

struct CurveKeyPair {
  std::string public_z85;
  std::string secret_z85;
};

// A fresh pair (zmq_curve_keypair). Internal error if libzmq has no CURVE.
absl::StatusOr<CurveKeyPair> GenerateCurveKeyPair();
// Reads the pair at `path`, or creates it (0600) when missing, and writes
// `public_path` (if not empty) with the public key. Errors name the path.
absl::StatusOr<CurveKeyPair> LoadOrCreateCurveKeyPair(const std::string& path,
                                                      const std::string& public_path);
// Reads a public key file, or accepts the Z85 text itself.
absl::StatusOr<std::string> ReadCurvePublicKey(const std::string& path);
// InvalidArgument unless `z85` is 40 characters of Z85 that decode.
absl::Status ValidateCurvePublicKey(absl::string_view z85);
// First 16 hex digits of SHA-256 of the 32 key bytes (jobctl keys, minion
// --print_key).
std::string CurveFingerprint(absl::string_view public_z85);

}  // namespace muster::security

#endif  // MUSTER_COMMON_SECURITY_CURVE_KEYS_H_
