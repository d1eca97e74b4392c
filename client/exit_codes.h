// jobctl's exit codes: the contract scripts rely on (also in `jobctl --help`
// and README.md).
#ifndef MUSTER_CLIENT_EXIT_CODES_H_
#define MUSTER_CLIENT_EXIT_CODES_H_

#include "grpcpp/grpcpp.h"
#include "proto/job_service.pb.h"

namespace muster::jobctl {

enum ExitCode : int {
  kExitOk = 0,           // done; a job that ended COMPLETE with every return ok
  kExitSomeFailed = 1,   // the job's returns include failures
  kExitUsage = 2,        // bad command line, or the server rejected the request
  kExitIncomplete = 3,   // the job ended INCOMPLETE (minions missing) or is still running
  kExitUnreachable = 4,  // jobd could not be reached
  kExitNotFound = 5,     // unknown jid
  kExitCancelled = 6,    // the job was cancelled
  kExitServerError = 7,  // any other server error (e.g. a refused retry)
  kExitDenied = 8,       // not authenticated, or the policy refused the call
};

inline constexpr const char kExitCodeHelp[] =
    "exit codes:\n"
    "  0  ok: the command worked; for a job, it ended COMPLETE and every return succeeded\n"
    "  1  the job has failed returns\n"
    "  2  usage error: bad arguments, or the server rejected the request (message shown)\n"
    "  3  the job ended INCOMPLETE (minions missing), or is still running\n"
    "  4  jobd unreachable (--server, MUSTER_SERVER)\n"
    "  5  unknown jid\n"
    "  6  the job was cancelled\n"
    "  7  other server error\n"
    "  8  not authenticated (token, certificate) or not allowed by jobd's policy\n";

// Exit code for a failed RPC.
int ExitCodeForStatus(const grpc::Status& status);

// Exit code that describes a job's outcome (see the table above).
int ExitCodeForJob(const muster::v1::Job& job);

}  // namespace muster::jobctl

#endif  // MUSTER_CLIENT_EXIT_CODES_H_
