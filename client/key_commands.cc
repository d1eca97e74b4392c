// `jobctl keys`: the minion CURVE keys the relays recorded, and an
// operator's accept / reject / delete (docs/PROTOCOL.md 8.4), like
// salt-key. jobd writes the decisions; the relays apply them within a
// second.
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/fleet_format.h"
#include "client/format.h"
#include "common/text/terminal_safe.h"

namespace muster::jobctl {

int Commands::Keys(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("keys needs list, accept, reject or delete");
  const std::string& action = args[0];
  std::vector<std::string> ids(args.begin() + 1, args.end());
  if (action == "list") {
    if (!ids.empty()) return Usage("keys list takes no ids (--datacenter, --state)");
    return ListKeys();
  }
  muster::v1::ChangeMinionKeyRequest request;
  if (action == "accept") {
    request.set_action(muster::v1::ChangeMinionKeyRequest::ACCEPT);
  } else if (action == "reject") {
    request.set_action(muster::v1::ChangeMinionKeyRequest::REJECT);
  } else if (action == "delete") {
    request.set_action(muster::v1::ChangeMinionKeyRequest::DELETE);
  } else {
    return Usage(absl::StrCat("keys ", action, ": expected list, accept, reject or delete"));
  }
  if (options_.datacenter.empty()) return Usage(absl::StrCat("keys ", action, " needs --datacenter"));
  if (ids.empty()) return Usage(absl::StrCat("keys ", action, " needs minion ids, or '*'"));
  request.set_datacenter(options_.datacenter);
  for (const std::string& id : ids) request.add_minion_ids(id);
  request.set_expect_key(options_.expect_key);
  const char* user = getenv("USER");
  request.set_operator_(user != nullptr && *user != '\0' ? user : "jobctl");
  muster::v1::ChangeMinionKeyResponse response;
  grpc::Status status = stub_->ChangeMinionKey(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << KeysTable(response.changed());
  std::map<std::string, std::string> skipped(response.skipped().begin(),
                                             response.skipped().end());
  for (const auto& [id, reason] : skipped) {
    out_ << "skipped " << TerminalSafe(id) << ": " << TerminalSafe(reason) << "\n";
  }
  return kExitOk;
}

int Commands::ListKeys() {
  muster::v1::ListMinionKeysRequest request;
  request.set_datacenter(options_.datacenter);
  if (!options_.state.empty()) {
    muster::v1::MinionKey::State state;
    if (!muster::v1::MinionKey::State_Parse(absl::AsciiStrToUpper(options_.state), &state) ||
        state == muster::v1::MinionKey::STATE_UNSPECIFIED) {
      return Usage(absl::StrCat("--state '", options_.state,
                                "': expected pending, accepted or rejected"));
    }
    request.set_state(state);
  }
  muster::v1::ListMinionKeysResponse response;
  grpc::Status status = stub_->ListMinionKeys(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  if (options_.json) {
    out_ << ToJson(response) << "\n";
    return kExitOk;
  }
  out_ << KeysTable(response.keys());
  return kExitOk;
}

}  // namespace muster::jobctl
