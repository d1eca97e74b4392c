// The dashboard's HTTPS: jobd's certificate and key (docs/SECURITY.md 7.1)
// on an OpenSSL context, TLS 1.2 or later, and, with a client CA, the
// client certificates it signed as identities. A client without a
// certificate may still connect (and log in with a token); one with a
// certificate the CA did not sign fails the handshake.
#ifndef MUSTER_SERVER_DASHBOARD_DASHBOARD_TLS_H_
#define MUSTER_SERVER_DASHBOARD_DASHBOARD_TLS_H_

#include <openssl/ssl.h>

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace muster::dashboard {

struct DashboardTls {
  std::string cert_path;       // PEM certificate chain
  std::string key_path;        // PEM private key
  std::string client_ca_path;  // PEM; empty: no client certificates
};

// Loads `tls` into `ctx`. InvalidArgument naming the file and OpenSSL's
// reason when a file cannot be read or the key does not match.
absl::Status ConfigureServerTls(SSL_CTX* ctx, const DashboardTls& tls);

// The subject common name of the connection's client certificate when
// the client CA verified it, else nullopt (no certificate, no client CA,
// not verified, no common name).
std::optional<std::string> VerifiedClientName(const SSL* ssl);

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_DASHBOARD_TLS_H_
