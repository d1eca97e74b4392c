#include "server/dashboard/dashboard_tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"

namespace muster::dashboard {
namespace {

absl::Status OpenSslError(const std::string& what) {
  char reason[256] = "unknown error";
  if (unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, reason, sizeof(reason));
  }
  ERR_clear_error();
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", reason));
}

}  // namespace

absl::Status ConfigureServerTls(SSL_CTX* ctx, const DashboardTls& tls) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return OpenSslError("cannot require TLS 1.2");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_path.c_str()) != 1) {
    return OpenSslError(absl::StrCat("TLS certificate '", tls.cert_path, "'"));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    return OpenSslError(absl::StrCat("TLS key '", tls.key_path, "'"));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return OpenSslError(absl::StrCat("TLS key '", tls.key_path, "' does not match certificate '",
                                     tls.cert_path, "'"));
  }
  if (tls.client_ca_path.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return absl::OkStatus();
  }
  if (SSL_CTX_load_verify_locations(ctx, tls.client_ca_path.c_str(), nullptr) != 1) {
    return OpenSslError(absl::StrCat("TLS client CA '", tls.client_ca_path, "'"));
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_path.c_str());
  if (names == nullptr) {
    return OpenSslError(absl::StrCat("TLS client CA '", tls.client_ca_path, "'"));
  }
  SSL_CTX_set_client_CA_list(ctx, names);
  // Ask for a certificate, verify one if given, accept a client without.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return absl::OkStatus();
}

std::optional<std::string> VerifiedClientName(const SSL* ssl) {
  if (ssl == nullptr) return std::nullopt;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<std::string> name;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    char common_name[256];
    int length = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
                                           common_name, sizeof(common_name));
    if (length > 0 && static_cast<size_t>(length) < sizeof(common_name)) {
      name = std::string(common_name, length);
    }
  }
  X509_free(cert);
  return name;
}

}  // namespace muster::dashboard
