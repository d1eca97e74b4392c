// jobctl's commands. Each takes the positional arguments after the command
// name, prints to stdout (errors to stderr) and returns the process exit
// code (client/exit_codes.h).
#ifndef MUSTER_CLIENT_COMMANDS_H_
#define MUSTER_CLIENT_COMMANDS_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "proto/job_service.grpc.pb.h"

namespace muster::jobctl {

struct Options {
  // Where and how to reach jobd (client/connection.h).
  ConnectionSettings connection;
  bool json = false;
  std::string target_type = "glob";
  absl::Duration timeout = absl::ZeroDuration();
  bool wait = false;
  bool all = false;
  bool failed = false;
  bool missing = false;
  int64_t limit = 20;
  std::string state;
  std::string submitter;
  std::string datacenter;
  // keys accept/reject/delete: only if the recorded key has this
  // fingerprint or Z85 text.
  std::string expect_key;
  // Progress-bar mode for watch: redraw in place (stdout is a terminal).
  bool tty = false;
  // returns: print each job's stdout and stderr as the exact bytes instead
  // of escaped (--raw). Every other field is escaped whatever this says.
  bool raw = false;
  absl::Duration rpc_timeout = absl::Seconds(10);
  // tokens create: lifetime (0: never expires) and description.
  absl::Duration ttl = absl::ZeroDuration();
  std::string description;
  // audit: only this principal / job; only refusals (DENIED and
  // UNAUTHENTICATED).
  std::string principal;
  std::string jid;
  bool denied = false;
};

class Commands {
 public:
  // `channel`: to jobd, from MakeChannel(options.connection).
  Commands(Options options, std::shared_ptr<grpc::Channel> channel, std::ostream& out,
           std::ostream& err);

  // Dispatches `command` with its positional arguments.
  int Run(const std::string& command, const std::vector<std::string>& args);

  int Submit(const std::vector<std::string>& args);
  int Status(const std::vector<std::string>& args);
  int Watch(const std::vector<std::string>& args);
  int List(const std::vector<std::string>& args);
  int Returns(const std::vector<std::string>& args);
  int Retry(const std::vector<std::string>& args);
  int Cancel(const std::vector<std::string>& args);
  int Minions(const std::vector<std::string>& args);
  int Relays(const std::vector<std::string>& args);
  // keys list | accept|reject|delete ID... ('*': every pending key)
  // (client/key_commands.cc).
  int Keys(const std::vector<std::string>& args);
  // audit (--principal, --denied, --jid, --limit); whoami
  // (client/audit_commands.cc).
  int Audit(const std::vector<std::string>& args);
  int WhoAmI(const std::vector<std::string>& args);
  // tokens create PRINCIPAL | revoke ID | list [PRINCIPAL]
  // (client/access_commands.cc).
  int Tokens(const std::vector<std::string>& args);

 private:
  // Prints the error of a failed RPC the way a user wants to read it.
  int Fail(const grpc::Status& status);
  int Usage(const std::string& message);
  std::unique_ptr<grpc::ClientContext> Context() const;
  // Follows a job with WatchJob until it ends; prints progress.
  int Follow(const std::string& jid);
  // The status summary of a job with the first missing ids.
  int PrintStatus(const muster::v1::Job& job);
  int ListKeys();

  Options options_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<muster::v1::JobService::Stub> stub_;
};

// Maps "glob", "list", ... to the API enum; false for an unknown name.
bool ParseTargetType(const std::string& name, muster::v1::TargetType* type);
// Maps "complete", "RUNNING", ... to the API enum; false for an unknown name.
bool ParseJobState(const std::string& name, muster::v1::JobState* state);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_COMMANDS_H_
