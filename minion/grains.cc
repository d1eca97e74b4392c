#include "minion/grains.h"

#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"
#include "nlohmann/json.hpp"

namespace muster::minion {
namespace {

// Adds one "key=value" item; `where` names it in errors.
absl::Status AddPair(absl::string_view item, absl::string_view where,
                     Grains& grains) {
  size_t eq = item.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("grains ", where, " '", item, "': expected key=value"));
  }
  absl::string_view key = absl::StripAsciiWhitespace(item.substr(0, eq));
  absl::string_view value = absl::StripAsciiWhitespace(item.substr(eq + 1));
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("grains ", where, " '", item, "': empty key"));
  }
  grains[std::string(key)] = std::string(value);
  return absl::OkStatus();
}

absl::StatusOr<Grains> ParseJsonObject(absl::string_view contents) {
  nlohmann::json json = nlohmann::json::parse(contents.begin(), contents.end(),
                                              nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("grains file: not valid JSON");
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError("grains file: JSON must be an object");
  }
  Grains grains;
  for (const auto& [key, value] : json.items()) {
    if (value.is_string()) {
      grains[key] = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      grains[key] = value.dump();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "grains file: value of '", key, "' must be a string, number or boolean"));
    }
  }
  return grains;
}

}  // namespace

absl::StatusOr<Grains> ParseGrainsFlag(absl::string_view text) {
  Grains grains;
  if (absl::StripAsciiWhitespace(text).empty()) return grains;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    RETURN_IF_ERROR(AddPair(item, "item", grains));
  }
  return grains;
}

absl::StatusOr<Grains> ParseGrainsFile(absl::string_view contents) {
  absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(contents);
  if (!trimmed.empty() && trimmed.front() == '{') return ParseJsonObject(trimmed);
  Grains grains;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    absl::string_view stripped = absl::StripAsciiWhitespace(line);
    if (stripped.empty() || stripped.front() == '#') continue;
    RETURN_IF_ERROR(AddPair(stripped, absl::StrCat("file line ", line_number), grains));
  }
  return grains;
}

absl::StatusOr<Grains> LoadGrains(absl::string_view flag_text,
                                  const std::string& file_path) {
  Grains grains;
  if (!file_path.empty()) {
    std::ifstream file(file_path);
    if (!file) {
      return absl::NotFoundError(
          absl::StrCat("grains file '", file_path, "': cannot open"));
    }
    std::stringstream contents;
    contents << file.rdbuf();
    ASSIGN_OR_RETURN(grains, ParseGrainsFile(contents.str()));
  }
  ASSIGN_OR_RETURN(Grains from_flag, ParseGrainsFlag(flag_text));
  for (auto& [key, value] : from_flag) grains[key] = std::move(value);
  return grains;
}

std::string GrainsToJson(const Grains& grains) {
  // std::map so the output is sorted and stable.
  std::map<std::string, std::string> sorted(grains.begin(), grains.end());
  return nlohmann::json(sorted).dump();
}

}  // namespace muster::minion
