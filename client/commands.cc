// jobctl talks to jobd only through the public JobService API; every figure
// it prints comes from the server (no completeness is computed here). Text
// from the server is printed through client/format.h or TerminalSafe
// (common/text/terminal_safe.h): a message from jobd can quote what a
// submitter wrote.
#include "client/commands.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/exit_codes.h"
#include "client/fleet_format.h"
#include "client/format.h"
#include "common/text/terminal_safe.h"
#include "grpcpp/grpcpp.h"

namespace muster::jobctl {

using muster::v1::Job;
using muster::v1::JobState;

bool ParseTargetType(const std::string& name, muster::v1::TargetType* type) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "glob") *type = muster::v1::GLOB;
  else if (lower == "list") *type = muster::v1::LIST;
  else if (lower == "pcre") *type = muster::v1::PCRE;
  else if (lower == "grain") *type = muster::v1::GRAIN;
  else if (lower == "compound") *type = muster::v1::COMPOUND;
  else return false;
  return true;
}

bool ParseJobState(const std::string& name, JobState* state) {
  return muster::v1::JobState_Parse(absl::AsciiStrToUpper(name), state) &&
         *state != muster::v1::JOB_STATE_UNSPECIFIED;
}

namespace {

bool IsFinal(JobState state) {
  return state == muster::v1::COMPLETE || state == muster::v1::INCOMPLETE ||
         state == muster::v1::CANCELLED;
}

}  // namespace

Commands::Commands(Options options, std::shared_ptr<grpc::Channel> channel, std::ostream& out,
                   std::ostream& err)
    : options_(std::move(options)),
      out_(out),
      err_(err),
      stub_(muster::v1::JobService::NewStub(std::move(channel))) {}

std::unique_ptr<grpc::ClientContext> Commands::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  return context;
}

int Commands::Fail(const grpc::Status& status) {
  int code = ExitCodeForStatus(status);
  if (code == kExitUnreachable) {
    err_ << "jobctl: cannot reach jobd at " << TerminalSafe(options_.connection.server) << " ("
         << TerminalSafe(status.error_message()) << ")\n";
  } else {
    err_ << "jobctl: " << TerminalSafe(status.error_message()) << "\n";
  }
  if (std::string hint = ConnectionHint(options_.connection, status); !hint.empty()) {
    err_ << "jobctl: " << hint << "\n";
  }
  return code;
}

int Commands::Usage(const std::string& message) {
  err_ << "jobctl: " << message << "\n(run `jobctl --help` for usage)\n";
  return kExitUsage;
}

int Commands::Run(const std::string& command, const std::vector<std::string>& args) {
  if (command == "submit") return Submit(args);
  if (command == "status") return Status(args);
  if (command == "watch") return Watch(args);
  if (command == "list") return List(args);
  if (command == "returns") return Returns(args);
  if (command == "retry") return Retry(args);
  if (command == "cancel") return Cancel(args);
  if (command == "minions") return Minions(args);
  if (command == "relays") return Relays(args);
  if (command == "keys") return Keys(args);
  if (command == "audit") return Audit(args);
  if (command == "whoami") return WhoAmI(args);
  if (command == "tokens") return Tokens(args);
  return Usage(absl::StrCat("unknown command '", command, "'"));
}

int Commands::Submit(const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage("submit needs TARGET FUNCTION [ARGS...]");
  muster::v1::SubmitJobRequest request;
  muster::v1::TargetType type;
  if (!ParseTargetType(options_.target_type, &type)) {
    return Usage(absl::StrCat("--type '", options_.target_type,
                              "': expected glob, list, pcre, grain or compound"));
  }
  if (options_.timeout < absl::ZeroDuration()) return Usage("--timeout must be positive");
  request.mutable_target()->set_type(type);
  request.mutable_target()->set_expression(args[0]);
  request.set_function(args[1]);
  for (size_t i = 2; i < args.size(); ++i) request.add_args(args[i]);
  request.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.timeout)));
  const char* user = getenv("USER");
  request.set_submitter(user != nullptr ? user : "jobctl");
  muster::v1::SubmitJobResponse response;
  grpc::Status status = stub_->SubmitJob(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (!options_.wait) {
    out_ << (options_.json ? ToJson(response) : SubmitSummary(response)) << "\n";
    return kExitOk;
  }
  if (!options_.json) out_ << SubmitSummary(response) << "\n";
  return Follow(response.jid());
}

int Commands::PrintStatus(const Job& job) {
  muster::v1::ListReturnsResponse missing;
  if (job.completeness().missing() > 0) {
    muster::v1::ListReturnsRequest request;
    request.set_jid(job.jid());
    request.set_filter(muster::v1::ListReturnsRequest::MISSING);
    request.set_page_size(options_.all ? 10000 : static_cast<uint32_t>(options_.limit));
    do {
      muster::v1::ListReturnsResponse page;
      grpc::Status status = stub_->ListReturns(Context().get(), request, &page);
      if (!status.ok()) return Fail(status);
      for (auto& m : *page.mutable_missing()) *missing.add_missing() = std::move(m);
      request.set_page_token(page.next_page_token());
    } while (options_.all && !request.page_token().empty());
  }
  if (options_.json) {
    out_ << "{\"job\":" << ToJson(job) << ",\"missing\":" << ToJson(missing) << "}\n";
    return ExitCodeForJob(job);
  }
  out_ << JobSummary(job);
  std::string missing_lines = MissingLines(
      {missing.missing().begin(), missing.missing().end()}, job.completeness());
  if (!missing_lines.empty()) out_ << "\n" << missing_lines << "\n";
  return ExitCodeForJob(job);
}

int Commands::Status(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage("status needs one JID");
  muster::v1::GetJobRequest request;
  request.set_jid(args[0]);
  Job job;
  grpc::Status status = stub_->GetJob(Context().get(), request, &job);
  if (!status.ok()) return Fail(status);
  return PrintStatus(job);
}

int Commands::Follow(const std::string& jid) {
  // A jobd that restarts (or a network blip) ends the stream with
  // UNAVAILABLE: open it again, with backoff, until the job's deadline plus
  // kReconnectMargin (before the first update, for one rpc_timeout), so the
  // job's real end is reported rather than "unreachable".
  constexpr absl::Duration kReconnectMargin = absl::Seconds(60);
  absl::Time reconnect_until = absl::Now() + options_.rpc_timeout;
  absl::Duration backoff = absl::Milliseconds(200);
  Job job;
  Job last;
  size_t drawn = 0;
  bool got_any = false;
  grpc::Status status;
  while (true) {
    grpc::ClientContext context;  // no deadline: a watch lasts as long as the job
    muster::v1::WatchJobRequest request;
    request.set_jid(jid);
    request.set_interval_ms(options_.tty ? 200 : 1000);
    auto reader = stub_->WatchJob(&context, request);
    while (reader->Read(&job)) {
      got_any = true;
      last = job;
      backoff = absl::Milliseconds(200);
      reconnect_until = std::max(reconnect_until, absl::FromUnixMillis(job.deadline_ms()) +
                                                      kReconnectMargin);
      if (options_.json) {
        out_ << ToJson(job) << "\n";
        continue;
      }
      std::vector<std::string> lines = ProgressLines(job, options_.tty ? 40 : 20);
      if (options_.tty) {
        if (drawn > 0) out_ << "\033[" << drawn << "A";
        for (const std::string& line : lines) out_ << "\033[2K" << line << "\n";
        drawn = lines.size();
      } else {
        out_ << FormatTime(absl::ToUnixMillis(absl::Now())).substr(11, 12) << "  "
             << lines[0] << "\n";
      }
      out_.flush();
    }
    status = reader->Finish();
    bool ended = got_any && IsFinal(last.state());
    if (ended || (status.ok() && got_any)) break;
    if (!status.ok() && status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    if (absl::Now() + backoff > reconnect_until) break;
    err_ << "jobctl: lost the watch (" << TerminalSafe(status.error_message())
         << "); reconnecting in "
         << absl::FormatDuration(backoff) << "\n";
    drawn = 0;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
  if (!status.ok() && !got_any) return Fail(status);
  if (!status.ok()) {
    err_ << "jobctl: watch ended early: " << TerminalSafe(status.error_message()) << "\n";
  }
  if (options_.json) return ExitCodeForJob(last);
  out_ << "\n";
  return PrintStatus(last);
}

int Commands::Watch(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage("watch needs one JID");
  return Follow(args[0]);
}

int Commands::List(const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("list takes no arguments (use --state, --submitter, --limit)");
  muster::v1::ListJobsRequest request;
  if (!options_.state.empty()) {
    JobState state;
    if (!ParseJobState(options_.state, &state)) {
      return Usage(absl::StrCat("--state '", options_.state,
                                "': expected pending, running, complete, incomplete or cancelled"));
    }
    request.add_states(state);
  }
  request.set_submitter(options_.submitter);
  request.set_page_size(static_cast<uint32_t>(std::clamp<int64_t>(options_.limit, 1, 1000)));
  muster::v1::ListJobsResponse response;
  grpc::Status status = stub_->ListJobs(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << absl::StrFormat("%-20s  %-10s  %-12s  %-24s  %s\n", "JID", "STATE", "FUNCTION",
                          "TARGET", "COMPLETENESS");
  for (const Job& job : response.jobs()) out_ << JobListLine(job) << "\n";
  if (response.jobs().empty()) out_ << "(no jobs)\n";
  return kExitOk;
}

int Commands::Returns(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage("returns needs one JID");
  if (options_.failed && options_.missing) return Usage("--failed and --missing exclude each other");
  muster::v1::ListReturnsRequest request;
  request.set_jid(args[0]);
  request.set_datacenter(options_.datacenter);
  request.set_filter(options_.failed    ? muster::v1::ListReturnsRequest::FAILED
                     : options_.missing ? muster::v1::ListReturnsRequest::MISSING
                                        : muster::v1::ListReturnsRequest::ALL);
  uint64_t want = options_.all ? UINT64_MAX : static_cast<uint64_t>(std::max<int64_t>(options_.limit, 1));
  request.set_page_size(static_cast<uint32_t>(std::min<uint64_t>(want, 1000)));
  muster::v1::ListReturnsResponse all;
  do {
    muster::v1::ListReturnsResponse page;
    grpc::Status status = stub_->ListReturns(Context().get(), request, &page);
    if (!status.ok()) return Fail(status);
    for (auto& r : *page.mutable_returns()) *all.add_returns() = std::move(r);
    for (auto& m : *page.mutable_missing()) *all.add_missing() = std::move(m);
    all.set_next_page_token(page.next_page_token());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() &&
           static_cast<uint64_t>(all.returns_size() + all.missing_size()) < want);
  if (options_.json) {
    out_ << ToJson(all) << "\n";
    return kExitOk;
  }
  for (const auto& m : all.missing()) out_ << MissingReturnLine(m) << "\n";
  OutputBytes output = options_.raw ? OutputBytes::kRaw : OutputBytes::kEscaped;
  for (const auto& r : all.returns()) out_ << ReturnBlock(r, output);
  if (all.returns().empty() && all.missing().empty()) out_ << "(none)\n";
  if (!all.next_page_token().empty()) out_ << "(more: --limit N or --all)\n";
  return kExitOk;
}

int Commands::Retry(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage("retry needs one JID");
  muster::v1::RetryMissingRequest request;
  request.set_jid(args[0]);
  request.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(options_.timeout)));
  muster::v1::RetryMissingResponse response;
  grpc::Status status = stub_->RetryMissing(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (options_.json && !options_.wait) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  if (!options_.json) {
    std::vector<std::string> per_dc;
    for (const auto& dc : response.retried_by_datacenter()) {
      per_dc.push_back(absl::StrCat(TerminalSafe(dc.datacenter()), " ", dc.expected()));
    }
    out_ << "job " << TerminalSafe(response.jid()) << " attempt " << response.attempt() << ": retrying "
         << response.retried() << " missing minions (" << absl::StrJoin(per_dc, ", ") << ")\n";
  }
  return options_.wait ? Follow(response.jid()) : kExitOk;
}

int Commands::Cancel(const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage("cancel needs one JID");
  muster::v1::CancelJobRequest request;
  request.set_jid(args[0]);
  muster::v1::CancelJobResponse response;
  grpc::Status status = stub_->CancelJob(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << JobSummary(response.job());
  return kExitOk;
}

int Commands::Minions(const std::vector<std::string>& args) {
  if (args.size() > 1) return Usage("minions takes at most one TARGET");
  muster::v1::ListMinionsRequest request;
  if (!args.empty()) {
    muster::v1::TargetType type;
    if (!ParseTargetType(options_.target_type, &type)) {
      return Usage(absl::StrCat("--type '", options_.target_type, "': unknown target type"));
    }
    request.mutable_target()->set_type(type);
    request.mutable_target()->set_expression(args[0]);
  }
  request.set_datacenter(options_.datacenter);
  request.set_page_size(static_cast<uint32_t>(std::clamp<int64_t>(options_.limit, 1, 10000)));
  muster::v1::ListMinionsResponse response;
  grpc::Status status = stub_->ListMinions(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << absl::StrFormat("%-36s %-8s %-6s %-25s %s\n", "MINION", "DC", "ALIVE", "LAST SEEN",
                          "GRAINS");
  for (const auto& m : response.minions()) out_ << MinionLine(m) << "\n";
  out_ << response.minions_size() << " of " << response.total() << " minions\n";
  return kExitOk;
}

int Commands::Relays(const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("relays takes no arguments");
  muster::v1::ListRelaysResponse response;
  grpc::Status status =
      stub_->ListRelays(Context().get(), muster::v1::ListRelaysRequest(), &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << RelaysTable(response, absl::ToUnixMillis(absl::Now()));
  return kExitOk;
}

}  // namespace muster::jobctl
