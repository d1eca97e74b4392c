#include "server/auth/token_authenticator.h"

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace muster::server::auth {
namespace {

constexpr std::string_view kTokenPrefix = "mst_";

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

}  // namespace

std::string_view TokenIdOf(std::string_view bearer) {
  constexpr size_t kIdAt = kTokenPrefix.size();
  constexpr size_t kSecretAt = kIdAt + 16 + 1;
  if (bearer.size() != kSecretAt + 64 || bearer.substr(0, kIdAt) != kTokenPrefix ||
      bearer[kSecretAt - 1] != '_' || !IsLowerHex(bearer.substr(kIdAt, 16)) ||
      !IsLowerHex(bearer.substr(kSecretAt))) {
    return "";
  }
  return bearer.substr(kIdAt, 16);
}

TokenAuthenticator::TokenAuthenticator(TokenStore* tokens, std::function<absl::Time()> clock)
    : tokens_(tokens), clock_(std::move(clock)) {}

absl::StatusOr<Principal> TokenAuthenticator::FromBearerToken(std::string_view bearer) const {
  absl::StatusOr<TokenRecord> record = tokens_->Verify(bearer, clock_());
  if (!record.ok()) {
    if (absl::IsUnauthenticated(record.status())) return record.status();
    // The store failed: say so, but never let the call through.
    return absl::UnavailableError(
        absl::StrCat("cannot check the token: ", record.status().message()));
  }
  return Principal{record->principal, AuthMethod::kToken, record->token_id};
}

absl::StatusOr<Principal> TokenAuthenticator::IdentifyParts(
    std::optional<std::string_view> authorization,
    std::optional<std::string_view> certificate_cn) const {
  if (authorization.has_value()) {
    std::string_view value = *authorization;
    const std::string_view scheme = kBearerScheme;
    if (value.size() < scheme.size() ||
        !absl::EqualsIgnoreCase(absl::string_view(value.data(), scheme.size()), kBearerScheme)) {
      return absl::UnauthenticatedError(
          "malformed bearer token (metadata 'authorization' must be 'Bearer mst_...')");
    }
    absl::string_view bearer = absl::StripAsciiWhitespace(
        absl::string_view(value.data() + scheme.size(), value.size() - scheme.size()));
    return FromBearerToken(std::string_view(bearer.data(), bearer.size()));
  }
  if (certificate_cn.has_value()) {
    if (!IsValidPrincipalName(*certificate_cn)) {
      return absl::UnauthenticatedError(absl::StrCat(
          "client certificate common name '", absl::CHexEscape(absl::string_view(certificate_cn->data(), certificate_cn->size())),
          "' is not a valid principal name (1..64 bytes of [A-Za-z0-9._@-])"));
    }
    return Principal{std::string(*certificate_cn), AuthMethod::kCertificate, ""};
  }
  return absl::UnauthenticatedError(
      "no bearer token or client certificate (send metadata 'authorization: Bearer mst_...'; "
      "jobctl: --token_file or $MUSTER_TOKEN_FILE)");
}

absl::StatusOr<Principal> TokenAuthenticator::Identify(const grpc::ServerContext& context) const {
  std::optional<std::string_view> authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find(kAuthorizationMetadata); it != metadata.end()) {
    authorization.emplace(it->second.data(), it->second.size());
  }
  // Only a certificate the handshake verified (--tls_client_ca) has a peer
  // identity; without a client CA jobd never asks for one.
  std::optional<std::string_view> common_name;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::string cn;
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    std::vector<grpc::string_ref> names = auth->FindPropertyValues("x509_common_name");
    if (!names.empty()) {
      cn.assign(names.front().data(), names.front().size());
      common_name.emplace(cn);
    }
  }
  return IdentifyParts(authorization, common_name);
}

}  // namespace muster::server::auth
