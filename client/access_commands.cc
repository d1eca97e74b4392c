// `jobctl tokens create|revoke|list`: the API tokens (docs/SECURITY.md
// 7.2). A new token's bearer text is printed once, alone on stdout, for a
// script to capture.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/format.h"
#include "common/text/terminal_safe.h"

namespace muster::jobctl {
namespace {

std::string TokenLine(const muster::v1::ApiToken& token) {
  std::string state = token.revoked_at_ms() != 0
                          ? absl::StrCat("revoked ", FormatTime(token.revoked_at_ms()))
                      : token.expires_at_ms() != 0
                          ? absl::StrCat("expires ", FormatTime(token.expires_at_ms()))
                          : "never expires";
  return absl::StrCat(TerminalSafe(token.token_id()), "  ", TerminalSafe(token.principal()),
                      "  created ", FormatTime(token.created_at_ms()), " by ",
                      TerminalSafe(token.created_by()), "  ", state,
                      token.description().empty()
                          ? ""
                          : absl::StrCat("  \"", TerminalSafe(token.description()), "\""));
}

}  // namespace

int Commands::Tokens(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("tokens needs create, revoke or list");
  const std::string& action = args[0];
  if (action == "create") {
    if (args.size() != 2) return Usage("tokens create needs one PRINCIPAL (--ttl, --description)");
    if (options_.ttl < absl::ZeroDuration()) return Usage("--ttl must not be negative");
    muster::v1::CreateTokenRequest request;
    request.set_principal(args[1]);
    request.set_ttl_ms(absl::ToInt64Milliseconds(options_.ttl));
    request.set_description(options_.description);
    muster::v1::CreateTokenResponse response;
    grpc::Status status = stub_->CreateToken(Context().get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) {
      out_ << ToJson(response) << "\n";
    } else {
      err_ << "created " << TokenLine(response.token()) << "\n"
           << "the bearer token (shown once; store it in a 0600 file):\n";
      out_ << response.bearer_token() << "\n";
    }
    return kExitOk;
  }
  if (action == "revoke") {
    if (args.size() != 2) return Usage("tokens revoke needs one TOKEN_ID");
    muster::v1::RevokeTokenRequest request;
    request.set_token_id(args[1]);
    muster::v1::RevokeTokenResponse response;
    grpc::Status status = stub_->RevokeToken(Context().get(), request, &response);
    if (!status.ok()) return Fail(status);
    out_ << (options_.json ? ToJson(response) : TokenLine(response.token())) << "\n";
    return kExitOk;
  }
  if (action == "list") {
    if (args.size() > 2) return Usage("tokens list takes at most a PRINCIPAL (--all)");
    muster::v1::ListTokensRequest request;
    request.set_include_inactive(options_.all);
    if (args.size() == 2) request.set_principal(args[1]);
    muster::v1::ListTokensResponse response;
    grpc::Status status = stub_->ListTokens(Context().get(), request, &response);
    if (!status.ok()) return Fail(status);
    if (options_.json) {
      out_ << ToJson(response) << "\n";
      return kExitOk;
    }
    for (const muster::v1::ApiToken& token : response.tokens()) out_ << TokenLine(token) << "\n";
    if (response.tokens().empty()) out_ << (options_.all ? "no tokens\n" : "no active tokens\n");
    return kExitOk;
  }
  return Usage(absl::StrCat("tokens ", action, ": expected create, revoke or list"));
}

}  // namespace muster::jobctl
