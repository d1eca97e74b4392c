// The security flags of minion and fleetsim (docs/PROTOCOL.md 8.5), defined
// once here and linked into both:
//   --trusted_keys=FILE          jobd public keys whose signed jobs are run
//   --trusted_key=HEX,...        the same, on the command line
//   --relay_public_key=Z85       the relay's CURVE public key, pinned
//   --relay_public_key_file=PATH the same, from the relay's relay_curve.pub
//   --insecure                   development only: no checks, no CURVE
// Every check is on unless --insecure is given; without it a trusted key
// and the relay's public key are required.
#ifndef MUSTER_MINION_SECURITY_FLAGS_H_
#define MUSTER_MINION_SECURITY_FLAGS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "minion/dispatch_check.h"

namespace muster::minion {

struct SecuritySettings {
  bool insecure = false;
  // Never null (accepts everything when insecure).
  std::unique_ptr<DispatchCheck> dispatch_check;
  // Z85; empty when insecure.
  std::string relay_public_key;
};

// The settings the flags give. InvalidArgument, naming the flag, when a
// required flag is missing or a key or key file is malformed.
absl::StatusOr<SecuritySettings> SecuritySettingsFromFlags();

}  // namespace muster::minion

#endif  // MUSTER_MINION_SECURITY_FLAGS_H_
