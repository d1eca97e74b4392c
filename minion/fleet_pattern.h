// Patterns that give fleetsim's virtual minions their ids, grains and
// behaviour, all as pure functions of the minion's number n (1..count), so
// a fleet is the same every time it starts and a test or demo can name the
// minions that will not answer.
//
//   id pattern      "web-{n:05}.{dc}.example.com"  -> web-00042.dc1.example.com
//   grains pattern  "role=web|db|cache,os=debian,rack=r{n%20}"
//                   -> role: alternatives taken round-robin by n
//                      (n=1 web, n=2 db, n=3 cache, n=4 web ...),
//                      os: debian, rack: r<n mod 20>
//
// Placeholders: {n}, {n:W} / {n:0W} (zero-padded to W digits), {n%M} and
// {n%M:W} (n modulo M), {dc}.
#ifndef MUSTER_MINION_FLEET_PATTERN_H_
#define MUSTER_MINION_FLEET_PATTERN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "minion/grains.h"

namespace muster::minion {

// A text with placeholders.
class FleetTemplate {
 public:
  static absl::StatusOr<FleetTemplate> Parse(absl::string_view text);
  std::string Expand(uint64_t n, absl::string_view datacenter) const;

 private:
  struct Part {
    std::string literal;  // Used when !is_placeholder.
    bool is_placeholder = false;
    bool is_datacenter = false;
    uint64_t modulus = 0;  // 0: none.
    int width = 0;
  };
  std::vector<Part> parts_;
};

// A grains pattern: comma-separated key=value items; a value may offer
// alternatives separated by '|'; keys and values may hold placeholders.
class GrainsPattern {
 public:
  static absl::StatusOr<GrainsPattern> Parse(absl::string_view text);
  Grains Expand(uint64_t n, absl::string_view datacenter) const;

 private:
  struct Item {
    FleetTemplate key;
    std::vector<FleetTemplate> alternatives;
  };
  std::vector<Item> items_;
};

// Whether minion n of `count` is silent (heartbeats, never answers) under
// `fraction`: exactly floor(count * fraction) minions are, spread evenly
// (with 0.01, n = 100, 200, ...).
bool IsSilentByFraction(uint64_t n, double fraction);

// Whether minion n fails the dispatch (jid, attempt) under `failure_rate`:
// a stable hash, so the same dispatch fails on the same minions every run,
// and a fraction of about `failure_rate` of them fail.
bool FailsDispatch(absl::string_view jid, uint32_t attempt, uint64_t n,
                   double failure_rate);

}  // namespace muster::minion

#endif  // MUSTER_MINION_FLEET_PATTERN_H_
