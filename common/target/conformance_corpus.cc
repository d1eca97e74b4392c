// Reading the conformance corpus: split lines and fields, decode "<xHH>",
// parse grains. Kept strict (an unknown type or expectation, a wrong field
// count) so a typo in the corpus fails the tests instead of being skipped.

#include "common/target/conformance_corpus.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/process.h"

namespace muster {
namespace {

// Replaces every "<xHH>" by the byte 0xHH; everything else is kept.
std::string DecodeField(absl::string_view field) {
  std::string out;
  size_t i = 0;
  while (i < field.size()) {
    if (field.size() - i >= 5 && field[i] == '<' && field[i + 1] == 'x' &&
        absl::ascii_isxdigit(field[i + 2]) &&
        absl::ascii_isxdigit(field[i + 3]) && field[i + 4] == '>') {
      int byte = 0;
      absl::SimpleHexAtoi(field.substr(i + 2, 2), &byte);
      out.push_back(static_cast<char>(byte));
      i += 5;
    } else {
      out.push_back(field[i++]);
    }
  }
  return out;
}

absl::Status LineError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(kConformanceCorpusPath, ":", line, ": ", what));
}

}  // namespace

std::string ConformanceCase::Describe() const {
  return absl::StrCat("line ", line, ": ", type, " '", expression, "'");
}

absl::StatusOr<TargetKind> TargetKindFromTypeName(absl::string_view type) {
  if (type == "GLOB" || type == "TARGET_TYPE_UNSPECIFIED") {
    return TargetKind::kGlob;
  }
  if (type == "LIST") return TargetKind::kList;
  if (type == "PCRE") return TargetKind::kPcre;
  if (type == "GRAIN") return TargetKind::kGrain;
  if (type == "COMPOUND") return TargetKind::kCompound;
  return absl::InvalidArgumentError(absl::StrCat("unknown type '", type, "'"));
}

absl::StatusOr<std::vector<ConformanceCase>> ParseConformanceCorpus(
    absl::string_view text) {
  std::vector<ConformanceCase> cases;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    if (fields.size() != 5 && fields.size() != 6) {
      return LineError(line_number, absl::StrCat("expected 5 or 6 fields, got ",
                                                 fields.size()));
    }
    ConformanceCase c;
    c.line = line_number;
    c.type = std::string(fields[0]);
    if (!TargetKindFromTypeName(c.type).ok()) {
      return LineError(line_number, absl::StrCat("unknown type '", c.type, "'"));
    }
    c.expression = DecodeField(fields[1]);
    c.minion_id = DecodeField(fields[2]);
    if (fields[3] != "-") {
      for (absl::string_view item : absl::StrSplit(fields[3], ';')) {
        const size_t equals = item.find('=');
        if (equals == absl::string_view::npos) {
          return LineError(line_number,
                           absl::StrCat("grain '", item, "' has no '='"));
        }
        c.grains[DecodeField(item.substr(0, equals))] =
            DecodeField(item.substr(equals + 1));
      }
    }
    if (fields[4] == "match") {
      c.expect = ConformanceExpect::kMatch;
    } else if (fields[4] == "no_match") {
      c.expect = ConformanceExpect::kNoMatch;
    } else if (fields[4] == "error") {
      c.expect = ConformanceExpect::kError;
    } else {
      return LineError(line_number,
                       absl::StrCat("unknown expectation '", fields[4], "'"));
    }
    if (fields.size() == 6) c.note = std::string(fields[5]);
    cases.push_back(std::move(c));
  }
  return cases;
}

absl::StatusOr<std::vector<ConformanceCase>> LoadConformanceCorpus() {
  const std::string path =
      testing::RunfilePath(std::string(kConformanceCorpusPath));
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  return ParseConformanceCorpus(contents.str());
}

}  // namespace muster
