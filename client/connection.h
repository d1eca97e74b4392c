// How jobctl reaches jobd: the server address, TLS and the bearer token
// (docs/SECURITY.md 7.2).
//
// Each setting comes from the first of: a command-line flag, the
// environment (MUSTER_SERVER, MUSTER_TOKEN, MUSTER_TOKEN_FILE,
// MUSTER_TLS_CA), the config file ($MUSTER_CONFIG, else
// ~/.config/muster/jobctl.conf when it exists: `key = value` lines with keys
// server, token_file, tls_ca, tls_cert, tls_key; `#` comments; relative paths
// are relative to the file). For the token, --token and --token_file are
// both flags, MUSTER_TOKEN and MUSTER_TOKEN_FILE both environment, in that
// order. The channel is TLS (trusting --tls_ca, else the system's roots)
// with the token sent on every call as "authorization: Bearer ...", unless
// --insecure, which is plaintext and sends no token.
#ifndef MUSTER_CLIENT_CONNECTION_H_
#define MUSTER_CLIENT_CONNECTION_H_

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace muster::jobctl {

inline constexpr char kDefaultServer[] = "127.0.0.1:7400";

// What the command line said; empty: not given.
struct ConnectionFlags {
  std::string server;
  std::string token;
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  bool insecure = false;
};

// Where jobctl looks besides its flags; tests give their own.
struct ConnectionEnvironment {
  // getenv; returns null for an unset variable.
  std::function<const char*(const char*)> getenv = [](const char* name) {
    return std::getenv(name);
  };
  // $HOME, for ~/.config/muster/jobctl.conf; empty: none.
  std::string home;
  static ConnectionEnvironment Process();
};

struct ConnectionSettings {
  std::string server = kDefaultServer;
  bool insecure = false;
  // The bearer token itself (from --token, a file or MUSTER_TOKEN); empty:
  // none. `token_source` says where it came from, for error messages.
  std::string token;
  std::string token_source;
  // PEM file paths; empty: not set.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
};

// Applies the precedence above. InvalidArgument for a config file that does
// not parse (naming the line), a token file that cannot be read or is empty,
// a $MUSTER_CONFIG that does not exist, or --tls_cert without --tls_key.
absl::StatusOr<ConnectionSettings> ResolveConnection(const ConnectionFlags& flags,
                                                     const ConnectionEnvironment& env);

// The channel for `settings`: reads the PEM files (InvalidArgument naming a
// file that cannot be read).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionSettings& settings);

// A sentence that helps with a failed call, or "": for UNAVAILABLE, that
// jobd may serve TLS while jobctl is --insecure (or the reverse), or that
// the certificate did not verify (--tls_ca); for UNAUTHENTICATED, where
// jobctl looked for a token.
std::string ConnectionHint(const ConnectionSettings& settings, const grpc::Status& status);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_CONNECTION_H_
