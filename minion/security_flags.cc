#include "minion/security_flags.h"

#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/security/curve_keys.h"
#include "common/security/signing_keys.h"

ABSL_FLAG(bool, insecure, false,
          "Development only: run jobs without checking jobd's signature and talk to the "
          "relay without CURVE (logged as INSECURE at start and every minute).");
ABSL_FLAG(std::string, trusted_keys, "",
          "File of jobd public keys (64 hex digits a line, '#' comments) whose signed jobs "
          "are run; re-read when it changes. Required (or --trusted_key) unless --insecure.");
ABSL_FLAG(std::vector<std::string>, trusted_key, {},
          "jobd public keys (64 hex digits, comma-separated) whose signed jobs are run.");
ABSL_FLAG(std::string, relay_public_key, "",
          "The relay's CURVE public key (40 Z85 characters, from its "
          "<state_dir>/relay_curve.pub). Required (or --relay_public_key_file) unless "
          "--insecure.");
ABSL_FLAG(std::string, relay_public_key_file, "",
          "File holding the relay's CURVE public key (its relay_curve.pub).");

namespace muster::minion {

absl::StatusOr<SecuritySettings> SecuritySettingsFromFlags() {
  SecuritySettings settings;
  settings.insecure = absl::GetFlag(FLAGS_insecure);
  if (settings.insecure) {
    settings.dispatch_check = DispatchCheck::Insecure();
    return settings;
  }
  std::string file = absl::GetFlag(FLAGS_trusted_keys);
  std::vector<std::string> inline_keys = absl::GetFlag(FLAGS_trusted_key);
  if (file.empty() && inline_keys.empty()) {
    return absl::InvalidArgumentError(
        "--trusted_keys=FILE or --trusted_key=HEX is required: jobd's public key(s), whose "
        "signed jobs are the only ones run (jobd writes its key to <signing key>.pub); "
        "--insecure turns the check off, for development only");
  }
  absl::StatusOr<std::unique_ptr<security::TrustedKeys>> keys =
      security::TrustedKeys::Create(file, inline_keys);
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--trusted_keys / --trusted_key: ", keys.status().message()));
  }
  settings.dispatch_check = DispatchCheck::Secure(*std::move(keys));

  std::string key = absl::GetFlag(FLAGS_relay_public_key);
  std::string key_file = absl::GetFlag(FLAGS_relay_public_key_file);
  if (!key.empty() && !key_file.empty()) {
    return absl::InvalidArgumentError(
        "--relay_public_key and --relay_public_key_file: give only one");
  }
  if (key.empty() && key_file.empty()) {
    return absl::InvalidArgumentError(
        "--relay_public_key=Z85 or --relay_public_key_file=PATH is required: the relay's "
        "CURVE public key (its <state_dir>/relay_curve.pub); --insecure turns CURVE off, "
        "for development only");
  }
  if (!key_file.empty()) {
    absl::StatusOr<std::string> read = security::ReadCurvePublicKey(key_file);
    if (!read.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--relay_public_key_file: ", read.status().message()));
    }
    key = *std::move(read);
  }
  if (absl::Status valid = security::ValidateCurvePublicKey(key); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--relay_public_key: ", valid.message()));
  }
  settings.relay_public_key = std::move(key);
  return settings;
}

}  // namespace muster::minion
