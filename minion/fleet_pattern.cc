#include "minion/fleet_pattern.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"

namespace muster::minion {
namespace {

// 64-bit FNV-1a then a final mix: stable across runs and platforms.
uint64_t StableHash(absl::string_view text, uint64_t seed) {
  uint64_t hash = 1469598103934665603ULL ^ seed;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  return hash;
}

}  // namespace

absl::StatusOr<FleetTemplate> FleetTemplate::Parse(absl::string_view text) {
  FleetTemplate result;
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '{') {
      literal += text[i++];
      continue;
    }
    size_t close = text.find('}', i);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("pattern '", text, "': '{' at position ", i, " is not closed"));
    }
    absl::string_view spec = text.substr(i + 1, close - i - 1);
    Part part;
    part.is_placeholder = true;
    if (spec == "dc") {
      part.is_datacenter = true;
    } else if (absl::ConsumePrefix(&spec, "n")) {
      std::pair<absl::string_view, absl::string_view> format = absl::StrSplit(spec, ':');
      absl::string_view modulus = format.first;
      bool ok = true;
      if (absl::ConsumePrefix(&modulus, "%")) {
        ok = absl::SimpleAtoi(modulus, &part.modulus) && part.modulus > 0;
      } else {
        ok = modulus.empty();
      }
      if (ok && spec.find(':') != absl::string_view::npos) {
        ok = absl::SimpleAtoi(format.second, &part.width) && part.width > 0 &&
             part.width <= 20;
      }
      if (!ok) {
        return absl::InvalidArgumentError(absl::StrCat(
            "pattern '", text, "': bad placeholder {", text.substr(i + 1, close - i - 1),
            "}; expected {n}, {n:05}, {n%20}, {n%20:02} or {dc}"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "pattern '", text, "': unknown placeholder {", spec, "}; expected {n...} or {dc}"));
    }
    if (!literal.empty()) result.parts_.push_back(Part{std::move(literal)});
    literal.clear();
    result.parts_.push_back(part);
    i = close + 1;
  }
  if (!literal.empty()) result.parts_.push_back(Part{std::move(literal)});
  return result;
}

std::string FleetTemplate::Expand(uint64_t n, absl::string_view datacenter) const {
  std::string out;
  for (const Part& part : parts_) {
    if (!part.is_placeholder) {
      out += part.literal;
    } else if (part.is_datacenter) {
      absl::StrAppend(&out, datacenter);
    } else {
      std::string digits = absl::StrCat(part.modulus > 0 ? n % part.modulus : n);
      if (static_cast<int>(digits.size()) < part.width) {
        out.append(part.width - digits.size(), '0');
      }
      out += digits;
    }
  }
  return out;
}

absl::StatusOr<GrainsPattern> GrainsPattern::Parse(absl::string_view text) {
  GrainsPattern result;
  if (text.empty()) return result;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    size_t eq = item.find('=');
    if (eq == absl::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("grains pattern item '", item, "': expected key=value[|value...]"));
    }
    ASSIGN_OR_RETURN(FleetTemplate key, FleetTemplate::Parse(item.substr(0, eq)));
    Item parsed{std::move(key), {}};
    for (absl::string_view alternative : absl::StrSplit(item.substr(eq + 1), '|')) {
      ASSIGN_OR_RETURN(FleetTemplate value, FleetTemplate::Parse(alternative));
      parsed.alternatives.push_back(std::move(value));
    }
    result.items_.push_back(std::move(parsed));
  }
  return result;
}

Grains GrainsPattern::Expand(uint64_t n, absl::string_view datacenter) const {
  Grains grains;
  for (const Item& item : items_) {
    const FleetTemplate& value =
        item.alternatives[(n == 0 ? 0 : n - 1) % item.alternatives.size()];
    grains[item.key.Expand(n, datacenter)] = value.Expand(n, datacenter);
  }
  return grains;
}

bool IsSilentByFraction(uint64_t n, double fraction) {
  if (fraction <= 0 || n == 0) return false;
  if (fraction >= 1) return true;
  // n is silent when floor(n * f) steps up at n.
  return std::floor(static_cast<double>(n) * fraction) >
         std::floor(static_cast<double>(n - 1) * fraction);
}

bool FailsDispatch(absl::string_view jid, uint32_t attempt, uint64_t n,
                   double failure_rate) {
  if (failure_rate <= 0) return false;
  if (failure_rate >= 1) return true;
  uint64_t hash = StableHash(jid, (static_cast<uint64_t>(attempt) << 40) ^ n);
  return static_cast<double>(hash >> 11) * (1.0 / 9007199254740992.0) < failure_rate;
}

}  // namespace muster::minion
