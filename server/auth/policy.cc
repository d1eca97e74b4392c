// Parsing keeps nlohmann::json's exceptions inside this file: a syntax
// error becomes an InvalidArgument with its line and column, and every
// other check walks the parsed tree by hand so that each error can name its
// field path. Function globs use the minion-id glob of common/target (the
// same syntax operators already write in targets).
#include "server/auth/policy.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace muster::server::auth {
namespace {

using Json = nlohmann::json;

constexpr char kGroupPrefix[] = "group:";

// Where an error is: "rules[1] 'ops-web': functions[0]".
class FieldPath {
 public:
  explicit FieldPath(absl::string_view source) : source_(source) {}

  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("policy ", source_, ": ", field, ": ", what));
  }

 private:
  std::string source_;
};

absl::string_view NameOf(Rpc rpc) {
  std::string_view name = RpcName(rpc);
  return absl::string_view(name.data(), name.size());
}

std::string Quoted(absl::string_view value) {
  if (value.size() > 80) return absl::StrCat("'", value.substr(0, 80), "...'");
  return absl::StrCat("'", value, "'");
}

bool IsValidGroupName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Every key of `object` must be one of `allowed`.
absl::Status CheckKeys(const Json& object, const std::vector<absl::string_view>& allowed,
                       const FieldPath& path, const std::string& where) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return path.Error(where.empty() ? it.key() : absl::StrCat(where, ".", it.key()),
                        absl::StrCat("unknown field (expected one of ",
                                     absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// The strings of a non-empty array field.
absl::StatusOr<std::vector<std::string>> StringArray(const Json& value, const FieldPath& path,
                                                     const std::string& field) {
  if (!value.is_array()) return path.Error(field, "must be an array of strings");
  if (value.empty()) return path.Error(field, "must not be empty");
  std::vector<std::string> out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      return path.Error(absl::StrCat(field, "[", i, "]"), "must be a string");
    }
    out.push_back(value[i].get<std::string>());
  }
  return out;
}

absl::Status ParseGroups(const Json& groups, const FieldPath& path, Policy* policy) {
  if (!groups.is_object()) return path.Error("groups", "must be an object of name: [principals]");
  for (auto it = groups.begin(); it != groups.end(); ++it) {
    std::string field = absl::StrCat("groups.", it.key());
    if (!IsValidGroupName(it.key())) {
      return path.Error(field, "a group name is 1..64 bytes of [A-Za-z0-9._-]");
    }
    absl::StatusOr<std::vector<std::string>> members = StringArray(it.value(), path, field);
    if (!members.ok()) return members.status();
    for (size_t i = 0; i < members->size(); ++i) {
      const std::string& member = (*members)[i];
      if (!IsValidPrincipalName(member)) {
        return path.Error(absl::StrCat(field, "[", i, "]"),
                          absl::StrCat(Quoted(member),
                                       " is not a principal name (1..64 bytes of "
                                       "[A-Za-z0-9._@-], not 'insecure' or 'jobd'; groups "
                                       "list principals, not groups)"));
      }
    }
    policy->groups[it.key()] = *std::move(members);
  }
  return absl::OkStatus();
}

absl::Status ParseWho(const Json& who, const Policy& policy, const FieldPath& path,
                      const std::string& where, PolicyRule* rule) {
  std::string field = absl::StrCat(where, ".who");
  absl::StatusOr<std::vector<std::string>> names = StringArray(who, path, field);
  if (!names.ok()) return names.status();
  for (size_t i = 0; i < names->size(); ++i) {
    const std::string& name = (*names)[i];
    std::string item = absl::StrCat(field, "[", i, "]");
    if (absl::StartsWith(name, kGroupPrefix)) {
      std::string group = name.substr(sizeof(kGroupPrefix) - 1);
      auto it = policy.groups.find(group);
      if (it == policy.groups.end()) {
        return path.Error(item, absl::StrCat("unknown group ", Quoted(group),
                                             " (not in \"groups\")"));
      }
      rule->principals.insert(it->second.begin(), it->second.end());
      continue;
    }
    if (!IsValidPrincipalName(name)) {
      return path.Error(item, absl::StrCat(Quoted(name),
                                           " is not a principal name or group:<name>"));
    }
    rule->principals.insert(name);
  }
  return absl::OkStatus();
}

absl::Status ParseRpcs(const Json& rpcs, const FieldPath& path, const std::string& where,
                       PolicyRule* rule) {
  std::string field = absl::StrCat(where, ".rpcs");
  absl::StatusOr<std::vector<std::string>> names = StringArray(rpcs, path, field);
  if (!names.ok()) return names.status();
  for (size_t i = 0; i < names->size(); ++i) {
    const std::string& name = (*names)[i];
    if (name == "*") {
      for (Rpc rpc : AllRpcs()) rule->rpcs.set(static_cast<size_t>(rpc));
    } else if (name == "@read") {
      for (Rpc rpc : AllRpcs()) {
        if (IsReadRpc(rpc)) rule->rpcs.set(static_cast<size_t>(rpc));
      }
    } else if (std::optional<Rpc> rpc = RpcFromName(name); rpc) {
      rule->rpcs.set(static_cast<size_t>(*rpc));
    } else {
      return path.Error(absl::StrCat(field, "[", i, "]"),
                        absl::StrCat("unknown RPC ", Quoted(name),
                                     " (an RPC of proto/job_service.proto, '*' or '@read')"));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseFunctions(const Json& functions, const FieldPath& path,
                            const std::string& where, PolicyRule* rule) {
  std::string field = absl::StrCat(where, ".functions");
  absl::StatusOr<std::vector<std::string>> globs = StringArray(functions, path, field);
  if (!globs.ok()) return globs.status();
  for (size_t i = 0; i < globs->size(); ++i) {
    absl::StatusOr<Target> glob = Target::Parse(TargetKind::kGlob, (*globs)[i]);
    if (!glob.ok()) {
      return path.Error(absl::StrCat(field, "[", i, "]"),
                        absl::StrCat("bad glob: ", glob.status().message()));
    }
    rule->functions.push_back(*std::move(glob));
  }
  return absl::OkStatus();
}

absl::Status ParseTargets(const Json& targets, const FieldPath& path, const std::string& where,
                          PolicyRule* rule) {
  std::string field = absl::StrCat(where, ".targets");
  if (!targets.is_object()) {
    return path.Error(field, "must be {\"type\": \"compound\", \"expression\": \"...\"}");
  }
  if (absl::Status s = CheckKeys(targets, {"type", "expression"}, path, field); !s.ok()) return s;
  auto type = targets.find("type");
  if (type == targets.end() || !type->is_string()) {
    return path.Error(absl::StrCat(field, ".type"),
                      "required: glob, list, pcre, grain or compound");
  }
  absl::StatusOr<TargetKind> kind = TargetKindFromName(type->get<std::string>());
  if (!kind.ok()) return path.Error(absl::StrCat(field, ".type"), kind.status().message());
  auto expression = targets.find("expression");
  if (expression == targets.end() || !expression->is_string()) {
    return path.Error(absl::StrCat(field, ".expression"), "required, a string");
  }
  absl::StatusOr<Target> target = Target::Parse(*kind, expression->get<std::string>());
  if (!target.ok()) {
    return path.Error(absl::StrCat(field, ".expression"), target.status().message());
  }
  rule->targets = *std::move(target);
  return absl::OkStatus();
}

absl::Status ParseRule(const Json& value, size_t index, const Policy& policy,
                       const FieldPath& path, PolicyRule* rule) {
  std::string where = absl::StrCat("rules[", index, "]");
  if (!value.is_object()) return path.Error(where, "must be an object");
  auto name = value.find("name");
  if (name == value.end() || !name->is_string() || name->get<std::string>().empty()) {
    return path.Error(absl::StrCat(where, ".name"), "required, a non-empty string");
  }
  rule->name = name->get<std::string>();
  if (rule->name.size() > 128) {
    return path.Error(absl::StrCat(where, ".name"), "at most 128 bytes");
  }
  where = absl::StrCat(where, " ", Quoted(rule->name));
  if (absl::Status s = CheckKeys(value, {"name", "who", "rpcs", "functions", "targets",
                                         "description"},
                                 path, where);
      !s.ok()) {
    return s;
  }
  if (auto d = value.find("description"); d != value.end() && !d->is_string()) {
    return path.Error(absl::StrCat(where, ".description"), "must be a string");
  }
  auto who = value.find("who");
  if (who == value.end()) return path.Error(absl::StrCat(where, ".who"), "required");
  if (absl::Status s = ParseWho(*who, policy, path, where, rule); !s.ok()) return s;
  auto rpcs = value.find("rpcs");
  if (rpcs == value.end()) return path.Error(absl::StrCat(where, ".rpcs"), "required");
  if (absl::Status s = ParseRpcs(*rpcs, path, where, rule); !s.ok()) return s;
  if (auto functions = value.find("functions"); functions != value.end()) {
    if (absl::Status s = ParseFunctions(*functions, path, where, rule); !s.ok()) return s;
  }
  if (auto targets = value.find("targets"); targets != value.end()) {
    if (absl::Status s = ParseTargets(*targets, path, where, rule); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool Names(const PolicyRule& rule, const Principal& principal) {
  return rule.principals.contains(principal.name);
}

bool AllowsRpc(const PolicyRule& rule, Rpc rpc) { return rule.rpcs.test(static_cast<size_t>(rpc)); }

bool AllowsFunction(const PolicyRule& rule, absl::string_view function) {
  if (rule.functions.empty()) return true;
  static const Grains kNoGrains;
  for (const Target& glob : rule.functions) {
    if (glob.Matches(function, kNoGrains)) return true;
  }
  return false;
}

std::string Describe(const AccessRequest& request) {
  if (IsDispatchRpc(request.rpc) && !request.function.empty()) {
    return absl::StrCat(NameOf(request.rpc), " of ", request.function);
  }
  return std::string(NameOf(request.rpc));
}

// The rules allowing `request` (principal, RPC, function), in file order;
// when there are none, *refusal says which rule came closest and why.
std::vector<const PolicyRule*> AllowingRules(const Policy& policy, const Principal& principal,
                                             const AccessRequest& request, Decision* refusal) {
  std::vector<const PolicyRule*> naming;
  for (const PolicyRule& rule : policy.rules) {
    if (Names(rule, principal)) naming.push_back(&rule);
  }
  if (naming.empty()) {
    *refusal = {false, "", absl::StrCat("no policy rule names ", Quoted(principal.name))};
    return {};
  }
  std::vector<const PolicyRule*> with_rpc;
  for (const PolicyRule* rule : naming) {
    if (AllowsRpc(*rule, request.rpc)) with_rpc.push_back(rule);
  }
  if (with_rpc.empty()) {
    std::string others =
        naming.size() > 1 ? absl::StrCat(" (nor do the ", naming.size() - 1,
                                         " other rules naming ", principal.name, ")")
                          : "";
    *refusal = {false, naming.front()->name,
                absl::StrCat("rule ", Quoted(naming.front()->name), " names ", principal.name,
                             " but does not allow ", NameOf(request.rpc), others)};
    return {};
  }
  if (!IsDispatchRpc(request.rpc) || request.function.empty()) return with_rpc;
  std::vector<const PolicyRule*> with_function;
  for (const PolicyRule* rule : with_rpc) {
    if (AllowsFunction(*rule, request.function)) with_function.push_back(rule);
  }
  if (with_function.empty()) {
    *refusal = {false, with_rpc.front()->name,
                absl::StrCat("rule ", Quoted(with_rpc.front()->name), " allows ",
                             NameOf(request.rpc), " but not function ",
                             Quoted(request.function))};
  }
  return with_function;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("policy ", path, ": cannot open the file"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("policy ", path, ": read failed"));
  return text.str();
}

}  // namespace

absl::StatusOr<Policy> ParsePolicy(absl::string_view text, absl::string_view source) {
  FieldPath path(source);
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    std::string what = e.what();
    size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return absl::InvalidArgumentError(absl::StrCat("policy ", source, ": ", what));
  }
  if (!root.is_object()) return path.Error("(top)", "must be an object with \"rules\"");
  if (absl::Status s = CheckKeys(root, {"groups", "rules"}, path, ""); !s.ok()) return s;
  Policy policy;
  if (auto groups = root.find("groups"); groups != root.end()) {
    if (absl::Status s = ParseGroups(*groups, path, &policy); !s.ok()) return s;
  }
  auto rules = root.find("rules");
  if (rules == root.end() || !rules->is_array()) {
    return path.Error("rules", "required, an array of rules");
  }
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < rules->size(); ++i) {
    PolicyRule rule;
    if (absl::Status s = ParseRule((*rules)[i], i, policy, path, &rule); !s.ok()) return s;
    if (!names.insert(rule.name).second) {
      return path.Error(absl::StrCat("rules[", i, "].name"),
                        absl::StrCat("duplicate rule name ", Quoted(rule.name)));
    }
    policy.rules.push_back(std::move(rule));
  }
  return policy;
}

Policy DefaultPolicy() {
  Policy policy;
  PolicyRule admin;
  admin.name = "built-in admin";
  admin.principals.insert("admin");
  for (Rpc rpc : AllRpcs()) admin.rpcs.set(static_cast<size_t>(rpc));
  policy.rules.push_back(std::move(admin));
  return policy;
}

PolicyAuthorizer::PolicyAuthorizer()
    : policy_(std::make_shared<const Policy>(DefaultPolicy())) {}

absl::Status PolicyAuthorizer::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<Policy> policy = ParsePolicy(*text, path);
  if (!policy.ok()) return policy.status();
  auto loaded = std::make_shared<const Policy>(*std::move(policy));
  absl::MutexLock lock(&mu_);
  policy_ = std::move(loaded);
  path_ = path;
  return absl::OkStatus();
}

absl::Status PolicyAuthorizer::Reload() {
  std::string path;
  {
    absl::MutexLock lock(&mu_);
    path = path_;
  }
  if (path.empty()) {
    return absl::FailedPreconditionError("no --policy file: jobd runs the built-in policy");
  }
  return Load(path);
}

std::shared_ptr<const Policy> PolicyAuthorizer::current() const {
  absl::ReaderMutexLock lock(&mu_);
  return policy_;
}

Decision PolicyAuthorizer::Check(const Principal& principal, const AccessRequest& request) const {
  if (principal.method == AuthMethod::kInsecure) return {true, "insecure", ""};
  std::shared_ptr<const Policy> policy = current();
  Decision refusal;
  std::vector<const PolicyRule*> rules = AllowingRules(*policy, principal, request, &refusal);
  if (rules.empty()) return refusal;
  return {true, rules.front()->name, ""};
}

Decision PolicyAuthorizer::CheckScope(const Principal& principal, const AccessRequest& request,
                                      const ScopeMinions& minions) const {
  if (principal.method == AuthMethod::kInsecure) return {true, "insecure", ""};
  std::shared_ptr<const Policy> policy = current();
  Decision refusal;
  std::vector<const PolicyRule*> rules = AllowingRules(*policy, principal, request, &refusal);
  if (rules.empty()) return refusal;
  for (const PolicyRule* rule : rules) {
    if (!rule->targets) return {true, rule->name, ""};
  }
  // One pass over the minions, every candidate rule at once: how many of
  // them fall outside each rule's targets, and the first such minion.
  static const Grains kNoGrains;
  std::vector<uint64_t> outside(rules.size(), 0);
  std::vector<std::string> example(rules.size());
  uint64_t total = 0;
  minions([&](const ScopeMinion& minion) {
    ++total;
    const Grains& grains = minion.grains != nullptr ? *minion.grains : kNoGrains;
    for (size_t i = 0; i < rules.size(); ++i) {
      if (rules[i]->targets->Matches(minion.id, grains)) continue;
      if (outside[i]++ == 0) example[i] = std::string(minion.id);
    }
    return true;
  });
  size_t closest = 0;
  for (size_t i = 0; i < rules.size(); ++i) {
    if (outside[i] == 0) return {true, rules[i]->name, ""};
    if (outside[i] < outside[closest]) closest = i;
  }
  const char* asked =
      request.rpc == Rpc::kRetryMissing ? "minions the retry asks" : "expected minions";
  return {false, rules[closest]->name,
          absl::StrCat("rule ", Quoted(rules[closest]->name), " allows ", Describe(request),
                       ", but ", outside[closest], " of ", total, " ", asked,
                       " are outside its targets, e.g. ", example[closest])};
}

std::vector<std::string> PolicyAuthorizer::GroupsOf(const Principal& principal) const {
  std::shared_ptr<const Policy> policy = current();
  std::vector<std::string> groups;
  for (const auto& [name, members] : policy->groups) {
    if (std::find(members.begin(), members.end(), principal.name) != members.end()) {
      groups.push_back(name);
    }
  }
  return groups;  // std::map: sorted
}

}  // namespace muster::server::auth
