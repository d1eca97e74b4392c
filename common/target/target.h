// Target: which minions a job is for (see SPEC.md, Concepts/Target, and the
// TargetType comments in proto/job_service.proto, which this implements).
//
// A Target is parsed and validated once, where the expression enters the
// system, and is then immutable: copying it is a reference-count bump and
// all const methods may be called from any number of threads. The same code
// runs in jobd (to compute the expected set) and in the minion (to decide
// whether to run), so both sides agree on every expression.
//
//   absl::StatusOr<Target> target =
//       Target::Parse(TargetKind::kCompound, "G@role:web and web-0*");
//   if (!target.ok()) return target.status();   // InvalidArgument, readable.
//   bool run = target->Matches(minion_id, grains);

#ifndef MUSTER_COMMON_TARGET_TARGET_H_
#define MUSTER_COMMON_TARGET_TARGET_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace muster {

namespace target_internal {
class TargetNode;
}  // namespace target_internal

// How an expression is interpreted. Callers map muster::v1::TargetType onto
// this (TARGET_TYPE_UNSPECIFIED means kGlob).
enum class TargetKind { kGlob, kList, kPcre, kGrain, kCompound };

// Accepts exactly "glob", "list", "pcre", "grain", "compound" (lowercase);
// anything else is InvalidArgument.
absl::StatusOr<TargetKind> TargetKindFromName(absl::string_view name);

// The lowercase name accepted by TargetKindFromName.
absl::string_view TargetKindName(TargetKind kind);

// Longest accepted expression, in bytes (same limit as the API), for every
// kind but list.
inline constexpr size_t kMaxTargetExpressionBytes = 65536;
// Longest accepted list target. Lists parse in linear time, and jobd's
// RetryMissing sends one with every missing id of a datacenter (about 26
// bytes an id), so they may be far longer than a user-written expression.
inline constexpr size_t kMaxListTargetBytes = 16 << 20;

// A minion's grains.
using Grains = absl::flat_hash_map<std::string, std::string>;

// Grain access for callers whose grains live elsewhere (e.g. a protobuf
// map): returns the value of `key`, or nullopt if the minion lacks it. The
// returned view must stay valid until Matches returns.
using GrainLookup =
    absl::FunctionRef<std::optional<absl::string_view>(absl::string_view key)>;

class Target {
 public:
  // Parses `expression` as `kind`. Leading and trailing ASCII whitespace is
  // ignored. Semantics (the full contract, with every edge case, is the
  // "Target grammar" section of docs/PROTOCOL.md; the conformance corpus
  // testdata/target_conformance.tsv pins it down):
  //   glob      shell glob on the whole id: * ? [abc] [a-z] [!x] [^x] \c;
  //             bytes, case-sensitive.
  //   list      ids separated by commas and/or whitespace; duplicates are
  //             dropped; ids are literal (no wildcards, no escapes).
  //   pcre      RE2 regular expression that must match the whole id.
  //   grain     "key:glob", split at the first ':' not escaped by '\'
  //             ("\c" in the key is c); the glob is matched against the
  //             grain's value; a minion without the key does not match.
  //   compound  and / or / not (lowercase), parentheses, G@key:glob,
  //             L@a,b,c, E@regex; bare words are globs; not > and > or; no
  //             implicit and. Tokens are separated by whitespace;
  //             parentheses may touch words. Nesting of '(' and 'not' is
  //             limited to 64.
  // Returns InvalidArgument naming the kind, the quoted expression, what is
  // wrong and its byte position, e.g.
  //   "glob target 'web[': unterminated character class at position 3".
  // Empty (or all-whitespace) expressions are rejected for every kind, and
  // so are expressions longer than kMaxTargetExpressionBytes
  // (kMaxListTargetBytes for a list).
  static absl::StatusOr<Target> Parse(TargetKind kind,
                                      absl::string_view expression);

  // True if the minion with this id and these grains is targeted.
  // Does not allocate; grains are only consulted when UsesGrains().
  bool Matches(absl::string_view minion_id, const Grains& grains) const;
  bool Matches(absl::string_view minion_id, GrainLookup grains) const;

  // If the target is a plain list of ids (kind list, or a compound that is a
  // single L@ term, possibly parenthesized) returns the ids in the order
  // given, without duplicates; otherwise nullptr. Dispatch uses this to
  // address minions directly instead of broadcasting. The pointer lives as
  // long as any copy of this Target.
  const std::vector<std::string>* ListIds() const;

  // True if every minion is targeted whatever its id and grains (a glob of
  // only `*`, as a whole-fleet job is written), so matching can skip the
  // ids. False does not mean some minion is left out.
  bool MatchesEveryId() const;

  // True if Matches can depend on grains (kind grain, or a compound with a
  // G@ term). When false, any grains (even none) give the same answer.
  bool UsesGrains() const;

  TargetKind kind() const;
  // The expression as given to Parse (not trimmed).
  const std::string& expression() const;

  // A description of the parsed tree for logs and tests, e.g.
  // "compound:and(grain(role:web), glob(web-0*))". Not a stable format.
  std::string DebugString() const;

 private:
  struct Rep;
  explicit Target(std::shared_ptr<const Rep> rep);

  std::shared_ptr<const Rep> rep_;  // Never null.
};

}  // namespace muster

#endif  // MUSTER_COMMON_TARGET_TARGET_H_
