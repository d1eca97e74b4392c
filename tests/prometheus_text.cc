#include "tests/prometheus_text.h"

#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace muster::testing {
namespace {

bool IsNameStart(char c, bool colon) {
  return absl::ascii_isalpha(c) || c == '_' || (colon && c == ':');
}
bool IsNameChar(char c, bool colon) { return IsNameStart(c, colon) || absl::ascii_isdigit(c); }

// Consumes a metric (colon=true) or label name from the front of *text.
std::optional<std::string> TakeName(absl::string_view* text, bool colon) {
  size_t i = 0;
  if (text->empty() || !IsNameStart((*text)[0], colon)) return std::nullopt;
  while (i < text->size() && IsNameChar((*text)[i], colon)) ++i;
  std::string name(text->substr(0, i));
  text->remove_prefix(i);
  return name;
}

bool ParseValue(absl::string_view text, double* value) {
  if (text == "+Inf") { *value = INFINITY; return true; }
  if (text == "-Inf") { *value = -INFINITY; return true; }
  if (text == "NaN") { *value = NAN; return true; }
  return absl::SimpleAtod(text, value) && !text.empty() &&
         (absl::ascii_isdigit(text[0]) || text[0] == '-' || text[0] == '+' || text[0] == '.');
}

// `{a="x",b="y"}` (possibly empty, trailing comma allowed as the format does).
absl::Status TakeLabels(absl::string_view* text, std::map<std::string, std::string>* labels) {
  if (!absl::ConsumePrefix(text, "{")) return absl::OkStatus();
  while (!absl::ConsumePrefix(text, "}")) {
    std::optional<std::string> name = TakeName(text, false);
    if (!name) return absl::InvalidArgumentError("bad label name");
    if (!absl::ConsumePrefix(text, "=\"")) return absl::InvalidArgumentError("expected =\"");
    std::string value;
    while (true) {
      if (text->empty()) return absl::InvalidArgumentError("unterminated label value");
      char c = (*text)[0];
      text->remove_prefix(1);
      if (c == '"') break;
      if (c == '\n') return absl::InvalidArgumentError("newline in label value");
      if (c == '\\') {
        if (text->empty()) return absl::InvalidArgumentError("dangling escape");
        char e = (*text)[0];
        text->remove_prefix(1);
        if (e == 'n') value += '\n';
        else if (e == '\\' || e == '"') value += e;
        else return absl::InvalidArgumentError("bad escape in label value");
      } else {
        value += c;
      }
    }
    if (!labels->emplace(*name, value).second) {
      return absl::InvalidArgumentError(absl::StrCat("label ", *name, " twice"));
    }
    if (!absl::ConsumePrefix(text, ",") && !absl::StartsWith(*text, "}")) {
      return absl::InvalidArgumentError("expected , or }");
    }
  }
  return absl::OkStatus();
}

// The family a sample belongs to: its own name, or for histograms and
// summaries the name without _bucket / _sum / _count.
std::string FamilyOf(const std::string& sample, const std::map<std::string, PromFamily>& families) {
  if (families.count(sample)) return sample;
  for (absl::string_view suffix : {"_bucket", "_sum", "_count"}) {
    absl::string_view base = sample;
    if (absl::ConsumeSuffix(&base, suffix)) {
      auto it = families.find(std::string(base));
      if (it != families.end() &&
          (it->second.type == "histogram" || it->second.type == "summary")) {
        return it->first;
      }
    }
  }
  return sample;
}

absl::Status CheckHistogram(const PromFamily& family) {
  // Per label set without `le`: buckets ascending in le and cumulative,
  // +Inf == _count.
  std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
  std::map<std::map<std::string, std::string>, double> counts;
  for (const PromSample& s : family.samples) {
    std::map<std::string, std::string> key = s.labels;
    if (s.name == family.name + "_bucket") {
      auto le = key.find("le");
      double bound;
      if (le == key.end() || !ParseValue(le->second, &bound)) {
        return absl::InvalidArgumentError(absl::StrCat(family.name, ": bucket without a valid le"));
      }
      key.erase(le);
      buckets[key].emplace_back(bound, s.value);
    } else if (s.name == family.name + "_count") {
      counts[key] = s.value;
    } else if (s.name != family.name + "_sum") {
      return absl::InvalidArgumentError(absl::StrCat(family.name, ": stray sample ", s.name));
    }
  }
  for (const auto& [key, list] : buckets) {
    for (size_t i = 1; i < list.size(); ++i) {
      if (!(list[i].first > list[i - 1].first) || list[i].second < list[i - 1].second) {
        return absl::InvalidArgumentError(absl::StrCat(family.name, ": buckets not cumulative"));
      }
    }
    if (list.empty() || !std::isinf(list.back().first) || !counts.count(key) ||
        counts.at(key) != list.back().second) {
      return absl::InvalidArgumentError(absl::StrCat(family.name, ": +Inf bucket != _count"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<double> PromText::Value(const std::string& name,
                                      const std::map<std::string, std::string>& labels) const {
  for (const auto& [family_name, family] : families) {
    for (const PromSample& s : family.samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
  }
  return std::nullopt;
}

double PromText::Sum(const std::string& name) const {
  double sum = 0;
  for (const auto& [family_name, family] : families) {
    for (const PromSample& s : family.samples) {
      if (s.name == name) sum += s.value;
    }
  }
  return sum;
}

absl::StatusOr<PromText> ParsePrometheusText(absl::string_view text) {
  PromText out;
  std::set<std::string> closed;  // families whose samples have ended
  std::set<std::pair<std::string, std::map<std::string, std::string>>> series;
  std::string current;           // family of the previous sample
  int line_number = 0;
  if (!text.empty() && text.back() != '\n') {
    return absl::InvalidArgumentError("text does not end with a newline");
  }
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, " '", line, "': ", why));
    };
    if (line.empty()) continue;
    if (absl::ConsumePrefix(&line, "#")) {
      absl::string_view rest = absl::StripLeadingAsciiWhitespace(line);
      bool help = absl::ConsumePrefix(&rest, "HELP ");
      bool type = !help && absl::ConsumePrefix(&rest, "TYPE ");
      if (!help && !type) continue;  // a plain comment
      std::optional<std::string> name = TakeName(&rest, true);
      if (!name || !absl::ConsumePrefix(&rest, " ")) return fail("bad metric name");
      if (closed.count(*name) || current == *name) return fail("HELP/TYPE after the samples");
      PromFamily& family = out.families[*name];
      family.name = *name;
      if (help) {
        if (!family.help.empty()) return fail("HELP twice");
        family.help = std::string(rest);
        if (family.help.empty()) return fail("empty HELP");
      } else {
        if (!family.type.empty()) return fail("TYPE twice");
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (!kTypes.count(std::string(rest))) return fail("unknown type");
        family.type = std::string(rest);
      }
      continue;
    }
    PromSample sample;
    std::optional<std::string> name = TakeName(&line, true);
    if (!name) return fail("bad metric name");
    sample.name = *name;
    if (absl::Status s = TakeLabels(&line, &sample.labels); !s.ok()) return fail(s.message());
    if (!absl::ConsumePrefix(&line, " ")) return fail("expected a space before the value");
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.empty() || fields.size() > 2 || !ParseValue(fields[0], &sample.value)) {
      return fail("bad value");
    }
    int64_t timestamp;
    if (fields.size() == 2 && !absl::SimpleAtoi(fields[1], &timestamp)) {
      return fail("bad timestamp");
    }
    std::string family_name = FamilyOf(sample.name, out.families);
    auto it = out.families.find(family_name);
    if (it == out.families.end() || it->second.type.empty()) return fail("sample without TYPE");
    if (family_name != current) {
      if (closed.count(family_name)) return fail("family's samples not contiguous");
      if (!current.empty()) closed.insert(current);
      current = family_name;
    }
    if (it->second.type == "counter" && sample.value < 0) return fail("negative counter");
    if (!series.emplace(sample.name, sample.labels).second) return fail("series twice");
    it->second.samples.push_back(std::move(sample));
  }
  for (const auto& [name, family] : out.families) {
    if (family.type == "histogram") {
      if (absl::Status s = CheckHistogram(family); !s.ok()) return s;
    }
  }
  return out;
}

}  // namespace muster::testing
