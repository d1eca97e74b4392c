// Internal to common/target: the tree a parsed Target evaluates.
//
// Leaves are the four simple matchers (glob, list, pcre, grain); inner nodes
// are and / or (n-ary) and not. Nodes are immutable after construction and
// their const methods are thread-safe. Use Target (target.h) instead.

#ifndef MUSTER_COMMON_TARGET_TARGET_NODE_H_
#define MUSTER_COMMON_TARGET_TARGET_NODE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/target/glob.h"
#include "re2/re2.h"

namespace muster {
namespace target_internal {

// Returns the value of grain `key`, or nullopt if the minion lacks it.
using GrainLookupRef =
    absl::FunctionRef<std::optional<absl::string_view>(absl::string_view)>;

class TargetNode {
 public:
  virtual ~TargetNode() = default;
  // True if the minion matches. Must not allocate.
  virtual bool Matches(absl::string_view minion_id,
                       GrainLookupRef grains) const = 0;
  // True if Matches may consult grains.
  virtual bool UsesGrains() const { return false; }
  // The ids if this node is a list, else nullptr.
  virtual const std::vector<std::string>* ListIds() const { return nullptr; }
  // True if Matches is true for every minion id and any grains (the glob
  // `*`): a caller may then skip calling it.
  virtual bool MatchesEveryId() const { return false; }
  // A compact description such as "and(glob(web*), not(list[2]))".
  virtual std::string DebugString() const = 0;
};

using NodePtr = std::unique_ptr<const TargetNode>;

// Leaf constructors. `text` is the leaf's own expression; `position` is where
// it starts in the whole target expression, used in error messages. Errors
// are InvalidArgument with a message that does not repeat the expression
// (the caller adds it), e.g. "unterminated character class at position 3".
absl::StatusOr<NodePtr> MakeGlobNode(absl::string_view text, size_t position);
absl::StatusOr<NodePtr> MakeListNode(absl::string_view text, size_t position);
absl::StatusOr<NodePtr> MakePcreNode(absl::string_view text, size_t position);
absl::StatusOr<NodePtr> MakeGrainNode(absl::string_view text, size_t position);

// Inner nodes. `children` must not be empty; a single child is returned as
// is for And/Or.
NodePtr MakeAndNode(std::vector<NodePtr> children);
NodePtr MakeOrNode(std::vector<NodePtr> children);
NodePtr MakeNotNode(NodePtr child);

}  // namespace target_internal
}  // namespace muster

#endif  // MUSTER_COMMON_TARGET_TARGET_NODE_H_
