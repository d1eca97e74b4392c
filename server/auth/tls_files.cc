// OpenSSL 3's EVP and X509 APIs, each object owned by a unique_ptr with its
// free function, so every early return frees what was made.
#include "server/auth/tls_files.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/security/signing_keys.h"
#include "common/status/status_macros.h"

namespace muster::server::auth {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

constexpr long kValiditySeconds = 10L * 365 * 24 * 3600;

// OpenSSL's error queue as text (and cleared), after `what`.
absl::Status OpenSslError(absl::string_view what) {
  std::string detail;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    absl::StrAppend(&detail, detail.empty() ? "" : "; ", text);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, detail.empty() ? "" : ": ", detail));
}

BioPtr MemoryBio(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, size > 0 ? size : 0);
}

absl::StatusOr<X509Ptr> ParseCertificate(std::string_view pem, absl::string_view source) {
  BioPtr bio = MemoryBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return OpenSslError(absl::StrCat(source, ": not a PEM certificate"));
  return cert;
}

absl::StatusOr<KeyPtr> ParseKey(std::string_view pem, absl::string_view source) {
  BioPtr bio = MemoryBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return OpenSslError(absl::StrCat(source, ": not a PEM private key"));
  return key;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (extension == nullptr || X509_add_ext(cert, extension.get(), -1) != 1) {
    return OpenSslError(absl::StrCat("certificate extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

std::string SubjectAltNames(const std::vector<std::string>& hosts) {
  std::vector<std::string> names;
  for (const std::string& host : hosts) {
    unsigned char address[16];
    const bool ip = inet_pton(AF_INET, host.c_str(), address) == 1 ||
                    inet_pton(AF_INET6, host.c_str(), address) == 1;
    names.push_back(absl::StrCat(ip ? "IP:" : "DNS:", host));
  }
  return absl::StrJoin(names, ",");
}

std::string LocalHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Reads and checks the pair at the two paths.
absl::StatusOr<TlsFiles> LoadPair(const std::string& cert_path, const std::string& key_path) {
  TlsFiles files;
  files.cert_path = cert_path;
  files.key_path = key_path;
  ASSIGN_OR_RETURN(files.cert_pem, security::ReadKeyFile(cert_path));
  RETURN_IF_ERROR(security::CheckPrivateFileMode(key_path));
  ASSIGN_OR_RETURN(files.key_pem, security::ReadKeyFile(key_path));
  ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificate(files.cert_pem, cert_path));
  ASSIGN_OR_RETURN(KeyPtr key, ParseKey(files.key_pem, key_path));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, " is not the private key of the certificate in ", cert_path));
  }
  ASSIGN_OR_RETURN(files.fingerprint, CertificateFingerprint(files.cert_pem));
  return files;
}

}  // namespace

absl::StatusOr<PemPair> MakeCertificate(std::string_view common_name,
                                        const std::vector<std::string>& hosts,
                                        const PemPair* issuer, bool is_ca) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("cannot make an EC P-256 key");
  X509Ptr cert(X509_new());
  unsigned char serial_bytes[16];
  if (cert == nullptr || RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) {
    return OpenSslError("cannot make a certificate");
  }
  serial_bytes[0] &= 0x7f;  // a positive serial number
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  const bool serial_set = serial != nullptr &&
                          BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(serial);
  if (!serial_set) return OpenSslError("cannot set the certificate's serial number");
  X509_set_version(cert.get(), 2);  // v3
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValiditySeconds);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn(common_name);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Muster"), -1, -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1) {
    return OpenSslError(absl::StrCat("common name '", cn, "'"));
  }

  X509Ptr issuer_cert;
  KeyPtr issuer_key;
  if (issuer != nullptr) {
    ASSIGN_OR_RETURN(issuer_cert, ParseCertificate(issuer->cert_pem, "issuer"));
    ASSIGN_OR_RETURN(issuer_key, ParseKey(issuer->key_pem, "issuer"));
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert.get()));
  } else {
    X509_set_issuer_name(cert.get(), name);
  }
  X509* signer = issuer_cert != nullptr ? issuer_cert.get() : cert.get();
  RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_basic_constraints,
                               is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_key_usage,
                               is_ca ? "critical,digitalSignature,keyCertSign,cRLSign"
                                     : "critical,digitalSignature,keyAgreement"));
  if (!hosts.empty()) {
    RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth"));
    RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_subject_alt_name, SubjectAltNames(hosts)));
  } else if (!is_ca) {
    RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_ext_key_usage, "clientAuth"));
  }
  RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key.get() : key.get(), EVP_sha256()) ==
      0) {
    return OpenSslError("cannot sign the certificate");
  }

  BioPtr cert_out(BIO_new(BIO_s_mem()));
  BioPtr key_out(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(cert_out.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return OpenSslError("cannot write PEM");
  }
  return PemPair{BioText(cert_out.get()), BioText(key_out.get())};
}

absl::StatusOr<std::string> CertificateFingerprint(std::string_view cert_pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ParseCertificate(cert_pem, "certificate"));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (X509_digest(cert.get(), EVP_sha256(), digest, &size) != 1) {
    return OpenSslError("certificate fingerprint");
  }
  std::vector<std::string> bytes;
  for (unsigned int i = 0; i < size; ++i) bytes.push_back(absl::StrFormat("%02X", digest[i]));
  return absl::StrJoin(bytes, ":");
}

absl::StatusOr<std::string> ReadCertificates(const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, security::ReadKeyFile(path));
  RETURN_IF_ERROR(ParseCertificate(pem, path).status());
  return pem;
}

absl::StatusOr<TlsFiles> LoadOrCreateTlsFiles(const std::string& cert_path,
                                              const std::string& key_path,
                                              const std::string& default_dir) {
  if (cert_path.empty() != key_path.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: give both or neither");
  }
  if (!cert_path.empty()) return LoadPair(cert_path, key_path);

  const std::filesystem::path dir = default_dir.empty() ? "." : default_dir;
  const std::string cert = (dir / kDefaultTlsCertName).string();
  const std::string key = (dir / kDefaultTlsKeyName).string();
  const bool have_cert = Exists(cert);
  const bool have_key = Exists(key);
  if (have_cert && have_key) return LoadPair(cert, key);
  if (have_cert || have_key) {
    return absl::FailedPreconditionError(absl::StrCat(
        "found ", have_cert ? cert : key, " but not ", have_cert ? key : cert,
        ": restore it, or delete both to make a new self-signed pair"));
  }
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  if (std::string host = LocalHostName(); !host.empty() && host != "localhost") {
    hosts.push_back(host);
  }
  ASSIGN_OR_RETURN(PemPair pair, MakeCertificate("jobd", hosts, nullptr, /*is_ca=*/true));
  // The key first: a crash between the two leaves a key without a
  // certificate, which the next start reports instead of serving.
  RETURN_IF_ERROR(security::WritePrivateFile(key, pair.key_pem));
  RETURN_IF_ERROR(security::WritePublicFile(cert, pair.cert_pem));
  ASSIGN_OR_RETURN(TlsFiles files, LoadPair(cert, key));
  files.created = true;
  return files;
}

}  // namespace muster::server::auth
