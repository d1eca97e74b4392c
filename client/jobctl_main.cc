// jobctl: Muster's command-line client. Parses flags and hands the command
// to client/commands.cc.
#include <grpc/support/log.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/exit_codes.h"

ABSL_FLAG(std::string, server, "",
          "jobd address host:port (default: $MUSTER_SERVER, else the config file's server, "
          "else 127.0.0.1:7400)");
ABSL_FLAG(std::string, token, "",
          "API bearer token (visible in ps: prefer --token_file or $MUSTER_TOKEN_FILE)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the API bearer token (default: $MUSTER_TOKEN, $MUSTER_TOKEN_FILE, the "
          "config file's token_file)");
ABSL_FLAG(std::string, tls_ca, "",
          "CA certificate (PEM) jobd's certificate must chain to; for a self-signed jobd its "
          "jobd_tls.crt (default: $MUSTER_TLS_CA, the config file's tls_ca, the system's roots)");
ABSL_FLAG(std::string, tls_cert, "", "client certificate (PEM) to authenticate with; with --tls_key");
ABSL_FLAG(std::string, tls_key, "", "private key (PEM) of --tls_cert");
ABSL_FLAG(bool, insecure, false,
          "plaintext, no token: only for a jobd started with --insecure");
ABSL_FLAG(absl::Duration, ttl, absl::ZeroDuration(),
          "tokens create: lifetime, e.g. 720h (default: never expires)");
ABSL_FLAG(std::string, description, "", "tokens create: free text");
ABSL_FLAG(bool, json, false, "print JSON (one object per line) for scripts");
ABSL_FLAG(bool, raw, false,
          "returns: print each job's stdout and stderr as the exact bytes, for piping into a "
          "file or program (default: control characters and invalid UTF-8 shown as \\xNN, "
          "so job output cannot drive your terminal)");
ABSL_FLAG(std::string, type, "glob", "target type: glob, list, pcre, grain, compound");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "job timeout, e.g. 30s or 5m (default: the server's, 60s)");
ABSL_FLAG(bool, wait, false, "submit/retry: follow the job until it ends");
ABSL_FLAG(bool, all, false, "status/returns: list every missing minion / return");
ABSL_FLAG(bool, failed, false, "returns: only failed returns");
ABSL_FLAG(bool, missing, false, "returns: only the missing minions");
ABSL_FLAG(int64_t, limit, 20, "how many rows to show (missing ids, returns, jobs, minions)");
ABSL_FLAG(std::string, state, "",
          "list: only jobs in this state; keys list: pending, accepted or rejected");
ABSL_FLAG(std::string, submitter, "", "list: only jobs of this submitter");
ABSL_FLAG(std::string, datacenter, "",
          "returns/minions/keys: only this datacenter (keys accept|reject|delete: required)");
ABSL_FLAG(std::string, expect_key, "",
          "keys accept|reject|delete: only if the recorded key has this fingerprint or Z85 text");
ABSL_FLAG(std::string, principal, "", "audit: only the rows of this principal");
ABSL_FLAG(bool, denied, false, "audit: only refusals (DENIED, UNAUTHENTICATED)");
ABSL_FLAG(std::string, jid, "", "audit: only the rows of this job");

namespace {

constexpr char kUsage[] =
    "run commands on the Muster fleet and see who answered.\n\n"
    "usage: jobctl [flags] COMMAND [ARGS...]   (put `--` before function args that start with -)\n\n"
    "commands:\n"
    "  submit TARGET FUNCTION [ARGS...]  submit a job (--type, --timeout, --wait)\n"
    "  status JID                        state, completeness, per-datacenter rows, missing ids\n"
    "  watch JID                         live progress until the job ends\n"
    "  list                              recent jobs (--state, --submitter, --limit)\n"
    "  returns JID                       returns with output (--failed, --missing, --all,\n"
    "                                    --raw: output bytes unescaped, for piping)\n"
    "  retry JID                         re-run the job on its missing minions (--wait)\n"
    "  cancel JID                        cancel a running job\n"
    "  minions [TARGET]                  the inventory (--type, --datacenter)\n"
    "  relays                            relays, their last heartbeat and what they refused\n"
    "  keys list                         minion keys (--datacenter, --state=pending|...)\n"
    "  keys accept|reject|delete ID...   decide minion keys ('*': every pending one;\n"
    "                                    --datacenter required, --expect_key)\n"
    "  audit                             the audit log, newest first (--principal, --denied,\n"
    "                                    --jid, --limit)\n"
    "  whoami                            who jobd thinks you are, and what you may call\n"
    "  tokens create PRINCIPAL           a new API token, printed once (--ttl, --description)\n"
    "  tokens revoke TOKEN_ID            revoke a token (refused at once)\n"
    "  tokens list [PRINCIPAL]           active tokens (--all: also revoked and expired)\n\n"
    "credentials (docs/SECURITY.md 7.2), first found wins: --token / --token_file,\n"
    "$MUSTER_TOKEN / $MUSTER_TOKEN_FILE, token_file in $MUSTER_CONFIG or\n"
    "~/.config/muster/jobctl.conf; jobd's CA: --tls_ca, $MUSTER_TLS_CA, tls_ca there.\n\n"
    "examples:\n"
    "  jobctl submit 'web*' cmd.run 'uptime' --wait\n"
    "  jobctl submit --type compound 'G@role:db and not L@db-7' test.ping\n"
    "  jobctl status 20261128195501000001 --all\n\n";

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      absl::StrCat(kUsage, muster::jobctl::kExitCodeHelp));
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  // gRPC's own log lines (a failed TLS handshake, ...) would repeat, less
  // clearly, what jobctl prints about a failed call.
  gpr_set_log_function([](gpr_log_func_args*) {});
  if (positional.size() < 2) {
    std::cerr << kUsage << muster::jobctl::kExitCodeHelp
              << "\nflags: jobctl --help\n";
    return muster::jobctl::kExitUsage;
  }
  muster::jobctl::ConnectionFlags connection;
  connection.server = absl::GetFlag(FLAGS_server);
  connection.token = absl::GetFlag(FLAGS_token);
  connection.token_file = absl::GetFlag(FLAGS_token_file);
  connection.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  connection.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  connection.tls_key = absl::GetFlag(FLAGS_tls_key);
  connection.insecure = absl::GetFlag(FLAGS_insecure);
  absl::StatusOr<muster::jobctl::ConnectionSettings> settings = muster::jobctl::ResolveConnection(
      connection, muster::jobctl::ConnectionEnvironment::Process());
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      settings.ok() ? muster::jobctl::MakeChannel(*settings)
                    : absl::StatusOr<std::shared_ptr<grpc::Channel>>(settings.status());
  if (!channel.ok()) {
    std::cerr << "jobctl: " << channel.status().message() << "\n";
    return muster::jobctl::kExitUsage;
  }
  muster::jobctl::Options options;
  options.connection = *std::move(settings);
  options.json = absl::GetFlag(FLAGS_json);
  options.raw = absl::GetFlag(FLAGS_raw);
  options.target_type = absl::GetFlag(FLAGS_type);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  options.wait = absl::GetFlag(FLAGS_wait);
  options.all = absl::GetFlag(FLAGS_all);
  options.failed = absl::GetFlag(FLAGS_failed);
  options.missing = absl::GetFlag(FLAGS_missing);
  options.limit = absl::GetFlag(FLAGS_limit);
  options.state = absl::GetFlag(FLAGS_state);
  options.submitter = absl::GetFlag(FLAGS_submitter);
  options.datacenter = absl::GetFlag(FLAGS_datacenter);
  options.expect_key = absl::GetFlag(FLAGS_expect_key);
  options.principal = absl::GetFlag(FLAGS_principal);
  options.jid = absl::GetFlag(FLAGS_jid);
  options.denied = absl::GetFlag(FLAGS_denied);
  options.tty = isatty(STDOUT_FILENO) != 0;
  options.ttl = absl::GetFlag(FLAGS_ttl);
  options.description = absl::GetFlag(FLAGS_description);

  std::string command = positional[1];
  std::vector<std::string> args(positional.begin() + 2, positional.end());
  muster::jobctl::Commands commands(options, *std::move(channel), std::cout, std::cerr);
  return commands.Run(command, args);
}
