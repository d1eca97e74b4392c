#include "tests/support/jobd_access.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "client/connection.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && st.st_size > 0;
}

}  // namespace

JobdAccess JobdAccess::ForDir(const std::string& dir, bool insecure) {
  JobdAccess access;
  access.insecure = insecure;
  if (!insecure) {
    access.tls_ca = absl::StrCat(dir, "/jobd_tls.crt");
    access.token_file = absl::StrCat(dir, "/admin.token");
  }
  return access;
}

std::vector<std::string> JobdAccess::JobdFlags() const {
  if (insecure) return {"--insecure"};
  return {absl::StrCat("--bootstrap_token_file=", token_file)};
}

std::vector<std::string> JobdAccess::JobctlFlags() const {
  if (insecure) return {"--insecure"};
  return {absl::StrCat("--tls_ca=", tls_ca), absl::StrCat("--token_file=", token_file)};
}

std::vector<std::string> JobdAccess::JobctlEnvironment() const {
  if (insecure) return {};
  return {absl::StrCat("MUSTER_TLS_CA=", tls_ca), absl::StrCat("MUSTER_TOKEN_FILE=", token_file)};
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> JobdChannel(const std::string& address,
                                                           const JobdAccess& access) {
  if (!access.insecure && (!Exists(access.tls_ca) || !Exists(access.token_file))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "jobd has not written ", access.tls_ca, " and ", access.token_file, " yet"));
  }
  jobctl::ConnectionFlags flags;
  flags.server = address;
  flags.insecure = access.insecure;
  flags.tls_ca = access.tls_ca;
  flags.token_file = access.token_file;
  jobctl::ConnectionEnvironment nothing;  // no MUSTER_* variables, no config file
  nothing.getenv = [](const char*) -> const char* { return nullptr; };
  absl::StatusOr<jobctl::ConnectionSettings> settings = jobctl::ResolveConnection(flags, nothing);
  if (!settings.ok()) return settings.status();
  return jobctl::MakeChannel(*settings);
}

absl::StatusOr<std::unique_ptr<v1::JobService::Stub>> JobdStub(const std::string& address,
                                                              const JobdAccess& access,
                                                              absl::Duration wait) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel;
  WaitFor(
      [&] {
        channel = JobdChannel(address, access);
        return channel.ok() || !absl::IsFailedPrecondition(channel.status());
      },
      wait);
  if (!channel.ok()) return channel.status();
  return v1::JobService::NewStub(*channel);
}

}  // namespace muster::testing
