// TlsFiles: jobd's TLS certificate and private key (docs/SECURITY.md 7.1).
//
// Either the operator's PEM files (--tls_cert, --tls_key), or, without
// them, a self-signed pair jobd makes beside its database on first start
// (jobd_tls.crt 0644, jobd_tls.key 0600): an ECDSA P-256 key and a 10-year
// certificate for localhost, 127.0.0.1, ::1 and the host name, which
// clients trust by naming the certificate itself as their CA (jobctl
// --tls_ca). A key file that group or others can read is refused, as for
// the signing key. The certificate and key are checked to parse and to
// belong together before jobd serves with them.
#ifndef MUSTER_SERVER_AUTH_TLS_FILES_H_
#define MUSTER_SERVER_AUTH_TLS_FILES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace muster::server::auth {

inline constexpr char kDefaultTlsCertName[] = "jobd_tls.crt";
inline constexpr char kDefaultTlsKeyName[] = "jobd_tls.key";

struct TlsFiles {
  std::string cert_path;
  std::string key_path;
  std::string cert_pem;
  std::string key_pem;
  // SHA-256 of the certificate (DER), "AB:CD:..." as `openssl x509
  // -fingerprint -sha256` prints it.
  std::string fingerprint;
  // True when this call created the pair.
  bool created = false;
};

// Loads `cert_path` and `key_path`; when both are empty, loads or creates
// jobd_tls.crt / jobd_tls.key in `default_dir`. InvalidArgument when only
// one path is given, a file does not parse or the key does not match the
// certificate; PermissionDenied for a key others can read; FailedPrecondition
// when only one of the two default files exists.
absl::StatusOr<TlsFiles> LoadOrCreateTlsFiles(const std::string& cert_path,
                                              const std::string& key_path,
                                              const std::string& default_dir);

// A certificate and its private key, PEM text.
struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};
// Makes a new ECDSA P-256 key and a certificate for it, valid 10 years,
// whose subject common name is `common_name` and whose subject alternative
// names are `hosts` (IP addresses as IP entries, the rest as DNS names).
// Signed by `issuer` (a CA pair made here with is_ca), or self-signed when
// `issuer` is null. `is_ca`: a CA certificate (basicConstraints CA:TRUE,
// keyCertSign) rather than one for a server (serverAuth) or, when `hosts`
// is empty, a client (clientAuth). jobd's own pair is self-signed with
// is_ca, so that clients can name it as their CA.
absl::StatusOr<PemPair> MakeCertificate(std::string_view common_name,
                                        const std::vector<std::string>& hosts,
                                        const PemPair* issuer, bool is_ca);

// The SHA-256 fingerprint of the first certificate in `cert_pem`.
absl::StatusOr<std::string> CertificateFingerprint(std::string_view cert_pem);

// Reads a PEM file of one or more certificates (a CA bundle), checking that
// it parses. InvalidArgument naming the file otherwise.
absl::StatusOr<std::string> ReadCertificates(const std::string& path);

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_TLS_FILES_H_
