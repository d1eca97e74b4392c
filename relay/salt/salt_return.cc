#include "relay/salt/salt_return.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "relay/salt/msgpack_codec.h"

namespace muster::relay::salt {

using nlohmann::json;

namespace {

// A boolean field, or `fallback` when absent or not a boolean.
bool BoolField(const json& map, const char* key, bool fallback) {
  auto it = map.find(key);
  if (it == map.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

// An integer retcode (a plain integer, or the largest value of a dict of
// integers), or false when there is none.
bool IntegerRetcode(const json& load, int* retcode) {
  auto it = load.find("retcode");
  if (it == load.end()) return false;
  if (it->is_number_integer()) {
    *retcode = it->get<int>();
    return true;
  }
  if (it->is_object() && !it->empty()) {
    int largest = 0;
    for (const json& value : *it) {
      if (!value.is_number_integer()) return false;
      largest = std::max(largest, value.get<int>());
    }
    *retcode = largest;
    return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> StringListField(const json& map, const char* key) {
  std::vector<std::string> out;
  if (!map.is_object()) return out;
  auto it = map.find(key);
  if (it == map.end() || !it->is_array()) return out;
  for (const json& item : *it) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

int DeriveRetcode(const json& load) {
  int retcode = 0;
  if (IntegerRetcode(load, &retcode)) return retcode;
  if (!BoolField(load, "success", true)) return 1;
  auto ret = load.find("return");
  if (ret != load.end() && ret->is_object()) {
    if (!BoolField(*ret, "result", true) || !BoolField(*ret, "success", true)) return 1;
  }
  return 0;
}

absl::StatusOr<SaltReturn> ParseReturnLoad(const std::string& salt_jid,
                                           const std::string& minion_id,
                                           const json& load) {
  if (!load.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("return of ", minion_id, " for ", salt_jid, ": load is not a map"));
  }
  auto ret = load.find("return");
  if (ret == load.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("return of ", minion_id, " for ", salt_jid, ": no 'return' field"));
  }
  SaltReturn out;
  out.salt_jid = salt_jid;
  out.minion_id = minion_id;
  auto fun = load.find("fun");
  if (fun != load.end() && fun->is_string()) out.fun = fun->get<std::string>();
  int retcode = 0;
  out.retcode_derived = !IntegerRetcode(load, &retcode);
  out.retcode = out.retcode_derived ? DeriveRetcode(load) : retcode;
  out.success = BoolField(load, "success", out.retcode == 0);
  out.return_json = MsgpackValueToJsonText(*ret);
  auto args = load.find("fun_args");
  out.fun_args_json = args == load.end() ? "[]" : MsgpackValueToJsonText(*args);
  auto stamp = load.find("_stamp");
  if (stamp != load.end() && stamp->is_string()) out.stamp = stamp->get<std::string>();
  return out;
}

}  // namespace muster::relay::salt
