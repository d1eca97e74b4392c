// TokenAuthenticator: the Authenticator of a secure jobd (docs/SECURITY.md
// 7.1, 7.2). A call is authenticated by its bearer token (metadata
// "authorization: Bearer mst_..."), checked against the TokenStore on every
// call, or, when it has none, by the client certificate the TLS handshake
// verified against --tls_client_ca (principal = the subject's common name).
#ifndef MUSTER_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_
#define MUSTER_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_

#include <functional>
#include <optional>
#include <string_view>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/auth/authenticator.h"
#include "server/auth/token_store.h"

namespace muster::server::auth {

// The gRPC metadata key of the bearer token, and the scheme in its value.
inline constexpr char kAuthorizationMetadata[] = "authorization";
inline constexpr char kBearerScheme[] = "Bearer ";

class TokenAuthenticator final : public Authenticator {
 public:
  // `tokens` must outlive this object. `clock` gives the time that tokens'
  // expiry is checked against (tests move it).
  explicit TokenAuthenticator(TokenStore* tokens,
                              std::function<absl::Time()> clock = [] { return absl::Now(); });

  // See Authenticator. A token always wins over a certificate: a call that
  // sends a bad token is refused even with a good certificate.
  absl::StatusOr<Principal> Identify(const grpc::ServerContext& context) const override;
  absl::StatusOr<Principal> FromBearerToken(std::string_view bearer) const override;

  // The same on the parts of a call: the "authorization" metadata value
  // and the verified certificate's common name, each when there is one.
  absl::StatusOr<Principal> IdentifyParts(std::optional<std::string_view> authorization,
                                          std::optional<std::string_view> certificate_cn) const;

 private:
  TokenStore* const tokens_;
  const std::function<absl::Time()> clock_;
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_
