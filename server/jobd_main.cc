// jobd: the central Muster JobService and its dashboard. Parses flags, runs
// a Jobd until SIGTERM or SIGINT, then shuts down gracefully. Logs go to
// stderr; stdout carries only the ready line, "jobd ready grpc=HOST:PORT
// http=HOST:PORT metrics=HOST:PORT" (real ports, also for :0; no http= when
// the dashboard is off, no metrics= without --metrics_listen), printed once jobd serves. See docs/OPERATIONS.md.
//
// `jobd token create --db=PATH --principal=NAME [--ttl=720h]
// [--description=TEXT]` prints a new API bearer token on stdout and exits
// (docs/SECURITY.md 7.2); it works while jobd runs on the same file.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/fs/private_files.h"
#include "common/http/http_listener.h"
#include "common/net/listener_exposure.h"
#include "common/process/shutdown_signal.h"
#include "common/redis/redis_flags.h"
#include "server/jobd.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7400", "gRPC listen address host:port");
ABSL_FLAG(std::string, redis, "127.0.0.1:6379", "Redis address host:port");
ABSL_FLAG(std::string, redis_prefix, "muster:", "prefix of every Redis key");
ABSL_FLAG(std::string, db, "./muster.db", "SQLite job store file (WAL files beside it)");
ABSL_FLAG(uint32_t, default_timeout_ms, 60000, "job timeout when a request gives 0");
ABSL_FLAG(absl::Duration, inventory_expiry, absl::Hours(24),
          "minions not seen for this long are left out of new expected sets");
ABSL_FLAG(std::string, consumer, "jobd", "consumer name in the Redis consumer group 'jobd'");
ABSL_FLAG(uint32_t, returns_batch_entries, 8,
          "stream entries read (and committed in one transaction) per returns batch");
ABSL_FLAG(int, returns_nice, 0,
          "niceness 0..19 of the return ingester's two threads (SQLite writer and its "
          "helper); 10 lets gRPC calls go first when both want a core, at the cost of "
          "returns queueing in Redis meanwhile (docs/OPERATIONS.md, Threads)");
ABSL_FLAG(std::string, http_listen, "127.0.0.1:7401",
          "dashboard and /metrics address host:port (port 0 picks a free one; empty disables)");
ABSL_FLAG(std::vector<std::string>, dashboard_hosts, {},
          "Host names the dashboard answers to, comma-separated, each name or name:port "
          "(a name alone: the dashboard's port); every request's Host and every POST's Origin "
          "must be one of them (DNS rebinding, cross-site forms). Empty: the --http_listen "
          "host, localhost, 127.0.0.1 and [::1]");
ABSL_FLAG(std::string, metrics_listen, "",
          "also serve /metrics without a token over plain HTTP on this loopback host:port "
          "(for a Prometheus on the same host); empty: only on the dashboard port, with a "
          "bearer token");
ABSL_FLAG(absl::Duration, expiry_hold_limit, absl::Seconds(60),
          "after start, end no job for its deadline until the returns waiting in Redis are "
          "read, or this long at most (0s: do not wait)");
ABSL_FLAG(std::string, signing_key, "",
          "Ed25519 key that signs every dispatch, created (0600, with PATH.pub) on first start; "
          "empty: jobd_signing.key in the --db file's directory");
ABSL_FLAG(bool, insecure, false,
          "development only: do not sign dispatches (secure relays and minions refuse them), "
          "serve gRPC in plaintext without authentication, allow every call; logs a loud "
          "warning at start and every minute");
ABSL_FLAG(std::string, tls_cert, "",
          "TLS certificate (PEM) of the gRPC API; with --tls_key. Neither: jobd_tls.crt and "
          "jobd_tls.key in the --db file's directory, a self-signed pair made on first start");
ABSL_FLAG(std::string, tls_key, "", "TLS private key (PEM, mode 0600) of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "CA certificate(s) (PEM): client certificates it signed authenticate as their "
          "subject's common name; empty: no client certificates");
ABSL_FLAG(std::string, bootstrap_token_file, "",
          "on a database with no API token: make one for principal 'admin' and write it to "
          "this file (0600), unless the file exists");
ABSL_FLAG(std::string, policy, "",
          "access policy file (JSON, docs/SECURITY.md 7.3; re-read on SIGHUP); empty: the "
          "built-in policy (principal 'admin' may do everything)");
ABSL_FLAG(std::string, principal, "", "jobd token create: the token's principal");
ABSL_FLAG(absl::Duration, ttl, absl::ZeroDuration(),
          "jobd token create: lifetime, e.g. 720h (0: never expires)");
ABSL_FLAG(std::string, description, "", "jobd token create: free text, at most 256 bytes");
ABSL_FLAG(double, submit_rate, 10,
          "SubmitJob and RetryMissing calls per second per principal (0: unlimited)");
ABSL_FLAG(int32_t, submit_burst, 20, "SubmitJob and RetryMissing calls a principal may burst");
ABSL_FLAG(int32_t, max_watch_streams, 256,
          "open WatchJob streams in all (and at most 32 per principal)");
ABSL_FLAG(int32_t, dashboard_event_streams, 8,
          "open dashboard event streams (live job pages) at once; each holds a dashboard "
          "thread, and past it the page polls (0: the dashboard always polls)");
ABSL_FLAG(int32_t, grpc_max_threads, 512, "threads of the gRPC server (0: gRPC's default)");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");

namespace {

// `jobd token create`: prints the bearer token; 0, or 2 for bad input.
int RunTokenCommand(const std::vector<char*>& args) {
  if (args.size() != 3 || std::string(args[2]) != "create") {
    std::fprintf(stderr, "usage: jobd token create --db=PATH --principal=NAME [--ttl=720h] "
                         "[--description=TEXT]\n");
    return 2;
  }
  absl::StatusOr<muster::server::auth::NewToken> token = muster::server::CreateTokenInStore(
      absl::GetFlag(FLAGS_db), absl::GetFlag(FLAGS_principal), absl::GetFlag(FLAGS_ttl),
      absl::GetFlag(FLAGS_description));
  if (!token.ok()) {
    std::fprintf(stderr, "jobd token create: %s\n", std::string(token.status().message()).c_str());
    return absl::IsInvalidArgument(token.status()) || absl::IsNotFound(token.status()) ? 2 : 1;
  }
  std::fprintf(stderr, "token %s for principal %s%s\n", token->record.token_id.c_str(),
               token->record.principal.c_str(),
               token->record.expires_at_ms == 0 ? " (never expires)" : "");
  std::printf("%s\n", token->bearer.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything creates a file: the database, its -wal and -shm, the
  // signing key, the TLS key and the bootstrap token are this user's alone
  // (docs/SECURITY.md).
  muster::UsePrivateUmask();
  absl::SetProgramUsageMessage(
      "jobd: Muster's central JobService (gRPC)\n"
      "  jobd [flags]                 serve\n"
      "  jobd token create --db=PATH --principal=NAME [--ttl=720h] [--description=TEXT]\n"
      "                               print a new API bearer token");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    if (std::string(positional[1]) == "token") return RunTokenCommand(positional);
    std::fprintf(stderr, "jobd: unknown command '%s' (jobd --help)\n", positional[1]);
    return 2;
  }
  // Debian's Abseil is built with deadlock detection on: it records every
  // lock order in a global graph, which shows in the hot paths' profiles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  spdlog::set_default_logger(spdlog::stderr_color_mt("jobd"));
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  // Block the stop signals in every thread; the main thread waits for them.
  absl::StatusOr<std::unique_ptr<muster::ShutdownSignal>> shutdown =
      muster::ShutdownSignal::Block();
  if (!shutdown.ok()) {
    spdlog::critical("{}", shutdown.status().ToString());
    return 1;
  }

  // SIGHUP (reload the policy) is read from a signalfd by the main thread
  // too, so it is blocked before any thread starts.
  sigset_t hup;
  sigemptyset(&hup);
  sigaddset(&hup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &hup, nullptr);
  int hup_fd = signalfd(-1, &hup, SFD_CLOEXEC);
  if (hup_fd < 0) {
    spdlog::critical("signalfd(SIGHUP) failed");
    return 1;
  }

  // --redis, or --redis_sentinels with --redis_master_name; the login from
  // --redis_user, --redis_password_file or $MUSTER_REDIS_PASSWORD.
  absl::StatusOr<muster::RedisPrimary> redis =
      muster::RedisPrimaryFromFlags(absl::GetFlag(FLAGS_redis));
  if (!redis.ok()) {
    spdlog::critical("{}", std::string(redis.status().message()));
    return 2;
  }
  muster::server::JobdOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.redis = *redis;
  options.redis_prefix = absl::GetFlag(FLAGS_redis_prefix);
  options.db_path = absl::GetFlag(FLAGS_db);
  options.default_timeout_ms = absl::GetFlag(FLAGS_default_timeout_ms);
  options.inventory_expiry = absl::GetFlag(FLAGS_inventory_expiry);
  options.consumer = absl::GetFlag(FLAGS_consumer);
  options.returns_batch_entries = absl::GetFlag(FLAGS_returns_batch_entries);
  options.returns_nice = absl::GetFlag(FLAGS_returns_nice);
  if (options.returns_nice < 0 || options.returns_nice > 19) {
    spdlog::critical("--returns_nice must be 0..19");
    return 2;
  }
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  options.dashboard_hosts = absl::GetFlag(FLAGS_dashboard_hosts);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.expiry_hold_limit = absl::GetFlag(FLAGS_expiry_hold_limit);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.signing_key_path = absl::GetFlag(FLAGS_signing_key);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.bootstrap_token_file = absl::GetFlag(FLAGS_bootstrap_token_file);
  options.policy_path = absl::GetFlag(FLAGS_policy);
  options.submit_rate_per_s = absl::GetFlag(FLAGS_submit_rate);
  options.submit_burst = absl::GetFlag(FLAGS_submit_burst);
  options.max_watch_streams = absl::GetFlag(FLAGS_max_watch_streams);
  options.grpc_max_threads = absl::GetFlag(FLAGS_grpc_max_threads);
  options.dashboard_event_streams = absl::GetFlag(FLAGS_dashboard_event_streams);
  if (options.submit_rate_per_s < 0 || options.submit_burst < 1 ||
      options.max_watch_streams < 1 || options.grpc_max_threads < 0 ||
      options.dashboard_event_streams < 0 || options.dashboard_event_streams > 1000) {
    spdlog::critical("--submit_rate must be >= 0, --submit_burst and --max_watch_streams >= 1, "
                     "--grpc_max_threads >= 0, --dashboard_event_streams 0..1000");
    return 2;
  }
  if (options.signing_key_path.empty()) {
    options.signing_key_path = muster::server::DefaultSigningKeyPath(options.db_path);
  }
  if (absl::StatusOr<std::vector<muster::ModeChange>> tightened =
          muster::MakePrivateFiles(muster::SqliteFiles(options.db_path));
      !tightened.ok()) {
    spdlog::critical("--db: {}", tightened.status().ToString());
    return 1;
  }
  if (!options.insecure) {
    // A key that cannot be read or created, or that others can read, is a
    // configuration error: refuse to start (exit 2) before anything else.
    absl::StatusOr<muster::security::SigningKey> key =
        muster::security::SigningKey::LoadOrCreate(options.signing_key_path);
    if (!key.ok()) {
      spdlog::critical("--signing_key: {} (jobd will not sign with a key others can read)",
                       key.status().ToString());
      return 2;
    }
  }
  if (!options.http_listen.empty()) {
    if (absl::Status valid = muster::http::ListenAddress::Parse(options.http_listen).status();
        !valid.ok()) {
      spdlog::critical("--http_listen: {}", std::string(valid.message()));
      return 2;
    }
  }
  if (options.default_timeout_ms == 0 || options.default_timeout_ms > 86400000) {
    spdlog::critical("--default_timeout_ms must be 1..86400000");
    return 2;
  }
  // Without --insecure both listeners are TLS with authentication; with it,
  // neither is, which beyond loopback is worth a warning of its own.
  muster::WarnIfExposed(absl::StrCat("jobd: --listen=", options.listen), options.listen,
                        /*encrypted=*/!options.insecure,
                        "the gRPC API has no TLS (--insecure: job arguments, output and any credential "
                        "cross the network in clear text, and without authentication anyone "
                        "who reaches the port can submit jobs to every minion); listen on "
                        "127.0.0.1 or firewall the port");
  if (!options.http_listen.empty()) {
    muster::WarnIfExposed(absl::StrCat("jobd: --http_listen=", options.http_listen),
                          options.http_listen, /*encrypted=*/!options.insecure,
                          "the dashboard and /metrics have no TLS (--insecure: job output and any session "
                          "cross the network in clear text, and without a login anyone who "
                          "reaches the port can read every job and cancel it); listen on "
                          "127.0.0.1 or put a TLS proxy in front");
  }

  muster::server::Jobd jobd(options);
  absl::Status status = jobd.Start();
  if (!status.ok()) {
    spdlog::critical("jobd failed to start: {}", status.ToString());
    jobd.Stop();
    return 1;
  }
  std::string http_field;
  if (jobd.http_port() != 0) {
    absl::StatusOr<muster::http::ListenAddress> http =
        muster::http::ListenAddress::Parse(options.http_listen);
    if (http.ok()) http_field = absl::StrCat(" http=", http->host, ":", jobd.http_port());
  }
  std::string grpc_host = options.listen.substr(0, options.listen.rfind(':'));
  if (jobd.metrics_port() != 0) {
    absl::StatusOr<muster::http::ListenAddress> metrics =
        muster::http::ListenAddress::Parse(options.metrics_listen);
    if (metrics.ok()) {
      absl::StrAppend(&http_field, " metrics=", metrics->host, ":", jobd.metrics_port());
    }
  }
  std::printf("jobd ready grpc=%s:%d%s\n", grpc_host.c_str(), jobd.port(), http_field.c_str());
  std::fflush(stdout);
  // Until SIGTERM/SIGINT: each SIGHUP reloads the policy (an invalid file
  // is logged and the policy in force stays).
  while (true) {
    pollfd fds[2] = {{(*shutdown)->fd(), POLLIN, 0}, {hup_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      if (read(hup_fd, &info, sizeof(info)) == sizeof(info)) {
        spdlog::info("SIGHUP: reloading the policy");
        (void)jobd.ReloadPolicy();  // logs its outcome
      }
    }
    if (fds[0].revents & POLLIN) break;
  }
  int signal = (*shutdown)->Wait();
  close(hup_fd);
  spdlog::info("signal {}: shutting down", signal);
  jobd.Stop();
  return 0;
}
