#include "client/connection.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace muster::jobctl {
namespace {

// Sends the bearer token with every call. gRPC attaches call credentials
// only to secure channels, so the token never travels in plaintext.
class BearerTokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  explicit BearerTokenPlugin(std::string token) : header_(absl::StrCat("Bearer ", token)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* metadata) override {
    metadata->insert({"authorization", header_});
    return grpc::Status::OK;
  }

 private:
  const std::string header_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot read it"));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// The config file's settings, by key. Paths are made relative to its
// directory.
absl::StatusOr<std::map<std::string, std::string>> ReadConfig(const std::string& path) {
  absl::StatusOr<std::string> content = ReadFile(path, "config file");
  if (!content.ok()) return content.status();
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::map<std::string, std::string> settings;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(*content, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::string key(absl::StripAsciiWhitespace(kv.first));
    std::string value(absl::StripAsciiWhitespace(kv.second));
    const bool is_path = key == "token_file" || key == "tls_ca" || key == "tls_cert" ||
                         key == "tls_key";
    if (!is_path && key != "server") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " line ", number, ": unknown key '", key,
          "' (expected server, token_file, tls_ca, tls_cert or tls_key)"));
    }
    if (line.find('=') == absl::string_view::npos || value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " line ", number, ": expected '", key, " = VALUE'"));
    }
    if (is_path && !std::filesystem::path(value).is_absolute()) value = (dir / value).string();
    settings[key] = value;
  }
  return settings;
}

// The first non-empty of `candidates`.
std::string First(std::initializer_list<std::string> candidates) {
  for (const std::string& c : candidates) {
    if (!c.empty()) return c;
  }
  return "";
}

}  // namespace

ConnectionEnvironment ConnectionEnvironment::Process() {
  ConnectionEnvironment env;
  const char* home = std::getenv("HOME");
  env.home = home != nullptr ? home : "";
  return env;
}

absl::StatusOr<ConnectionSettings> ResolveConnection(const ConnectionFlags& flags,
                                                     const ConnectionEnvironment& env) {
  auto getenv = [&](const char* name) {
    const char* value = env.getenv(name);
    return std::string(value != nullptr ? value : "");
  };
  std::map<std::string, std::string> config;
  if (std::string path = getenv("MUSTER_CONFIG"); !path.empty()) {
    absl::StatusOr<std::map<std::string, std::string>> read = ReadConfig(path);
    if (!read.ok()) return read.status();
    config = *std::move(read);
  } else if (!env.home.empty()) {
    const std::string default_path = env.home + "/.config/muster/jobctl.conf";
    if (std::filesystem::exists(default_path)) {
      absl::StatusOr<std::map<std::string, std::string>> read = ReadConfig(default_path);
      if (!read.ok()) return read.status();
      config = *std::move(read);
    }
  }

  ConnectionSettings settings;
  settings.insecure = flags.insecure;
  settings.server = First({flags.server, getenv("MUSTER_SERVER"), config["server"], kDefaultServer});
  settings.tls_ca = First({flags.tls_ca, getenv("MUSTER_TLS_CA"), config["tls_ca"]});
  settings.tls_cert = First({flags.tls_cert, config["tls_cert"]});
  settings.tls_key = First({flags.tls_key, config["tls_key"]});
  if (settings.tls_cert.empty() != settings.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: give both or neither");
  }

  // The token: inline beats a file at each level.
  struct Source {
    std::string token;
    std::string file;
    std::string name;
  };
  const Source sources[] = {
      {flags.token, "", "--token"},
      {"", flags.token_file, "--token_file"},
      {getenv("MUSTER_TOKEN"), "", "$MUSTER_TOKEN"},
      {"", getenv("MUSTER_TOKEN_FILE"), "$MUSTER_TOKEN_FILE"},
      {"", config["token_file"], "token_file in the config file"},
  };
  for (const Source& source : sources) {
    if (!source.token.empty()) {
      settings.token = std::string(absl::StripAsciiWhitespace(source.token));
      settings.token_source = source.name;
      break;
    }
    if (!source.file.empty()) {
      absl::StatusOr<std::string> content = ReadFile(source.file, source.name);
      if (!content.ok()) return content.status();
      settings.token = std::string(absl::StripAsciiWhitespace(*content));
      if (settings.token.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(source.name, " ", source.file, ": empty"));
      }
      settings.token_source = absl::StrCat(source.name, " ", source.file);
      break;
    }
  }
  if (settings.insecure) {
    settings.token.clear();  // never sent in plaintext
    settings.token_source.clear();
  }
  return settings;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionSettings& settings) {
  grpc::ChannelArguments args;
  if (settings.insecure) {
    return grpc::CreateCustomChannel(settings.server, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  if (!settings.tls_ca.empty()) {
    absl::StatusOr<std::string> ca = ReadFile(settings.tls_ca, "--tls_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  if (!settings.tls_cert.empty()) {
    absl::StatusOr<std::string> cert = ReadFile(settings.tls_cert, "--tls_cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile(settings.tls_key, "--tls_key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!settings.token.empty()) {
    credentials = grpc::CompositeChannelCredentials(
        credentials, grpc::MetadataCredentialsFromPlugin(
                         std::make_unique<BearerTokenPlugin>(settings.token)));
  }
  return grpc::CreateCustomChannel(settings.server, credentials, args);
}

std::string ConnectionHint(const ConnectionSettings& settings, const grpc::Status& status) {
  const std::string& message = status.error_message();
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (settings.insecure) {
      return "jobd serves TLS unless it was started with --insecure: drop --insecure and give "
             "--tls_ca (or $MUSTER_TLS_CA) and a token";
    }
    if (absl::StrContains(message, "CERTIFICATE_VERIFY_FAILED") ||
        absl::StrContains(message, "certificate verify failed")) {
      return "jobd's certificate did not verify: give its CA with --tls_ca or $MUSTER_TLS_CA "
             "(for a self-signed jobd: jobd_tls.crt beside its database)";
    }
    if (absl::StrContains(message, "handshake") || absl::StrContains(message, "Handshake") ||
        absl::StrContains(message, "Socket closed") ||
        absl::StrContains(message, "Connection reset")) {
      return "the TLS handshake failed: a jobd started with --insecure serves plaintext (then "
             "use jobctl --insecure), or --tls_ca is not jobd's CA";
    }
    return "";
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    if (settings.token.empty()) {
      return "jobctl found no token: give --token_file, $MUSTER_TOKEN_FILE or token_file in "
             "~/.config/muster/jobctl.conf";
    }
    return absl::StrCat("the token came from ", settings.token_source);
  }
  return "";
}

}  // namespace muster::jobctl
