// Authenticator: who made a call (docs/SECURITY.md, "Control plane").
//
// Implemented by TokenAuthenticator (auth/token_authenticator.h: bearer
// tokens from auth/token_store.h and verified TLS client certificates) and
// InsecureAuthenticator (every call is kInsecurePrincipal; --insecure only).
#ifndef MUSTER_SERVER_AUTH_AUTHENTICATOR_H_
#define MUSTER_SERVER_AUTH_AUTHENTICATOR_H_

#include <grpcpp/grpcpp.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "server/auth/principal.h"

namespace muster::server::auth {

class Authenticator {
 public:
  virtual ~Authenticator() = default;

  // The principal of a gRPC call: the bearer token in the metadata
  // "authorization: Bearer mst_<id>_<secret>" if present, else the verified
  // client certificate's subject common name (context.auth_context()).
  // kUnauthenticated with a message an operator can act on ("no bearer
  // token or client certificate", "token <id> expired at ...", "token <id>
  // revoked", "malformed bearer token", "unknown token or wrong secret")
  // otherwise; the message never tells which part of a secret was wrong.
  // Thread-safe.
  virtual absl::StatusOr<Principal> Identify(const grpc::ServerContext& context) const = 0;

  // The principal of a bearer token presented outside gRPC (the dashboard's
  // login form); the same errors. Thread-safe.
  virtual absl::StatusOr<Principal> FromBearerToken(std::string_view bearer) const = 0;
};

// --insecure: every call is Principal{kInsecurePrincipal, kInsecure}.
class InsecureAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<Principal> Identify(const grpc::ServerContext&) const override {
    return Principal{kInsecurePrincipal, AuthMethod::kInsecure, ""};
  }
  absl::StatusOr<Principal> FromBearerToken(std::string_view) const override {
    return Principal{kInsecurePrincipal, AuthMethod::kInsecure, ""};
  }
};

// The token id of a bearer token "mst_<16 hex>_<64 hex>", or "" when
// `bearer` does not have that shape (for the audit of a refused token).
std::string_view TokenIdOf(std::string_view bearer);

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_AUTHENTICATOR_H_
