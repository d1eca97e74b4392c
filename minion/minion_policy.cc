#include "minion/minion_policy.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace muster::minion {
namespace {

using Json = nlohmann::json;

// "line L, column C" of byte offset `byte` (1-based, as nlohmann reports).
std::string Position(absl::string_view text, size_t byte) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return absl::StrCat("line ", line, ", column ", column);
}

// Parses `text`, refusing an object with the same key twice (the JSON
// library would keep the last one silently).
absl::StatusOr<Json> ParseStrict(absl::string_view text, absl::string_view source) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  Json::parser_callback_t check = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::object_start) keys.emplace_back();
    if (event == Json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == Json::parse_event_t::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    Json json = Json::parse(text.begin(), text.end(), check);
    if (!duplicate.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": the key '", duplicate, "' appears twice in one object"));
    }
    return json;
  } catch (const Json::parse_error& error) {
    // what(): "[json.exception.parse_error.101] parse error at line 3,
    // column 19: syntax error ...": keep the part after the position.
    std::string detail = error.what();
    size_t column = detail.find("column ");
    size_t colon = column == std::string::npos ? column : detail.find(": ", column);
    if (colon != std::string::npos) detail = detail.substr(colon + 2);
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON at ",
                                                   Position(text, error.byte), ": ", detail));
  }
}

bool ValidPattern(const std::string& pattern) {
  if (pattern.empty()) return false;
  return std::all_of(pattern.begin(), pattern.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-' || c == '*';
  });
}

}  // namespace

absl::StatusOr<MinionPolicy> MinionPolicy::Parse(absl::string_view text,
                                                 absl::string_view source,
                                                 const UserLookup& lookup) {
  absl::StatusOr<Json> parsed = ParseStrict(text, source);
  if (!parsed.ok()) return parsed.status();
  const Json& json = *parsed;
  auto error = [&](absl::string_view field, absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", field, ": ", message));
  };
  if (!json.is_object()) return error("(top level)", "must be a JSON object");
  MinionPolicy policy;
  policy.from_file_ = true;
  policy.default_allow_ = false;
  for (const auto& [key, value] : json.items()) {
    if (key == "default") {
      if (!value.is_string() ||
          (value.get<std::string>() != "allow" && value.get<std::string>() != "deny")) {
        return error("default", absl::StrCat("must be \"allow\" or \"deny\", not ",
                                             value.dump()));
      }
      policy.default_allow_ = value.get<std::string>() == "allow";
    } else if (key != "functions") {
      return error(key, "unknown field (expected \"default\" or \"functions\")");
    }
  }
  if (!json.contains("functions") || !json["functions"].is_object()) {
    return error("functions", "required: an object of function name or pattern -> rule");
  }
  for (const auto& [pattern, rule_json] : json["functions"].items()) {
    const std::string field = absl::StrCat("functions.", pattern);
    if (!ValidPattern(pattern)) {
      return error(field, "a function name or pattern has only letters, digits, '.', '_', "
                          "'-' and '*'");
    }
    if (!rule_json.is_object()) return error(field, "must be an object ({} allows)");
    Rule rule;
    rule.pattern = pattern;
    for (const auto& [key, value] : rule_json.items()) {
      if (key == "allow") {
        if (!value.is_boolean()) return error(field + ".allow", "must be true or false");
        rule.allow = value.get<bool>();
      } else if (key == "run_as") {
        if (!value.is_string() || value.get<std::string>().empty()) {
          return error(field + ".run_as", "must be a user name");
        }
        absl::StatusOr<RunAsUser> user = lookup(value.get<std::string>());
        if (!user.ok()) return error(field + ".run_as", user.status().message());
        rule.run_as = *std::move(user);
      } else {
        return error(absl::StrCat(field, ".", key),
                     "unknown field (expected \"allow\" or \"run_as\")");
      }
    }
    if (!rule.allow && rule.run_as.has_value()) {
      return error(field, "a rule with \"allow\": false cannot name a run_as user");
    }
    policy.rules_.push_back(std::move(rule));
  }
  std::sort(policy.rules_.begin(), policy.rules_.end(),
            [](const Rule& a, const Rule& b) { return a.pattern < b.pattern; });
  return policy;
}

absl::StatusOr<MinionPolicy> MinionPolicy::Load(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        path, ": group or others may write it, so they decide what this minion runs "
              "(chmod go-w ", path, ")"));
  }
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

PolicyDecision MinionPolicy::Decide(absl::string_view function) const {
  const Rule* best = nullptr;
  const std::string name(function);
  for (const Rule& rule : rules_) {
    if (rule.pattern == name) {
      best = &rule;
      break;
    }
    if (fnmatch(rule.pattern.c_str(), name.c_str(), FNM_NOESCAPE) != 0) continue;
    // Sorted by pattern: a later one of the same length never wins a tie.
    if (best == nullptr || rule.pattern.size() > best->pattern.size()) best = &rule;
  }
  PolicyDecision decision;
  if (best == nullptr) {
    decision.allowed = default_allow_;
    decision.rule = "default";
    return decision;
  }
  decision.allowed = best->allow;
  decision.run_as = best->run_as;
  decision.rule = best->pattern;
  return decision;
}

std::string MinionPolicy::Summary() const {
  if (!from_file_) return "none: every function allowed";
  std::vector<std::string> rules;
  for (const Rule& rule : rules_) {
    std::string text = rule.pattern;
    if (!rule.allow) absl::StrAppend(&text, " (deny)");
    if (rule.run_as.has_value()) absl::StrAppend(&text, " (as ", rule.run_as->name, ")");
    rules.push_back(std::move(text));
  }
  return absl::StrCat(rules_.size(), " rule(s) [", absl::StrJoin(rules, ", "), "], default ",
                      default_allow_ ? "allow" : "deny");
}

std::string MinionPolicy::RefusalMessage(absl::string_view function) {
  return absl::StrCat("refused by the minion's local policy: function ", function,
                      " is not allowed on this minion");
}

}  // namespace muster::minion
