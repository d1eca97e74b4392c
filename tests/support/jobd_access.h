// JobdAccess: how a test reaches a jobd it started (docs/SECURITY.md 7).
//
// A secure jobd serves TLS with the self-signed pair it makes beside its
// database (jobd_tls.crt is then the clients' CA) and, started with
// --bootstrap_token_file, writes a bearer token for principal "admin"
// (every right under the built-in policy) on its first start. A test gives
// jobd JobdFlags() (or sets JobdOptions::bootstrap_token_file), then talks
// to it through JobdChannel() or jobctl with JobctlFlags(). An --insecure
// jobd is plaintext and needs none of it.
#ifndef MUSTER_TESTS_SUPPORT_JOBD_ACCESS_H_
#define MUSTER_TESTS_SUPPORT_JOBD_ACCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/job_service.grpc.pb.h"

namespace muster::testing {

struct JobdAccess {
  bool insecure = false;
  // jobd's certificate (its own CA when self-signed) and the admin token's
  // file; empty when insecure.
  std::string tls_ca;
  std::string token_file;

  // For a jobd whose --db file is in `dir` and that uses the default TLS
  // pair: dir/jobd_tls.crt and dir/admin.token.
  static JobdAccess ForDir(const std::string& dir, bool insecure = false);

  // jobd's flags for it: --bootstrap_token_file (secure), or --insecure.
  std::vector<std::string> JobdFlags() const;
  // jobctl's: --tls_ca and --token_file, or --insecure.
  std::vector<std::string> JobctlFlags() const;
  // The same as environment assignments ("MUSTER_TLS_CA=...").
  std::vector<std::string> JobctlEnvironment() const;
};

// A channel to jobd at `address` with `access`'s credentials (the product's
// own client code, client/connection.h). FailedPrecondition while jobd has
// not yet written its certificate or the token file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> JobdChannel(const std::string& address,
                                                           const JobdAccess& access);
// JobdChannel, waiting up to `wait` for the files; a stub on it.
absl::StatusOr<std::unique_ptr<v1::JobService::Stub>> JobdStub(const std::string& address,
                                                              const JobdAccess& access,
                                                              absl::Duration wait = absl::Seconds(30));

}  // namespace muster::testing

#endif  // MUSTER_TESTS_SUPPORT_JOBD_ACCESS_H_
