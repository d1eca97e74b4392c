// The matcher tree behind Target.
//
// Everything that can fail (glob syntax, regex compilation, list and grain
// syntax) happens in the Make* functions, once per target; Matches only
// reads. That split is what makes a parsed Target safe to share between
// threads and cheap to evaluate against a whole inventory: a list is a hash
// set probed with a string_view (absl's heterogeneous lookup, no temporary
// string), a regex is compiled RE2 (linear time, no backtracking blow-up on
// hostile input), and a grain test is one lookup plus a glob.

#include "common/target/target_node.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace muster {
namespace target_internal {
namespace {

class GlobNode final : public TargetNode {
 public:
  explicit GlobNode(GlobPattern glob) : glob_(std::move(glob)) {}
  bool Matches(absl::string_view minion_id, GrainLookupRef) const override {
    return glob_.Matches(minion_id);
  }
  bool MatchesEveryId() const override {
    const std::string& pattern = glob_.pattern();
    return !pattern.empty() &&
           pattern.find_first_not_of('*') == std::string::npos;
  }
  std::string DebugString() const override {
    return absl::StrCat("glob(", glob_.pattern(), ")");
  }

 private:
  GlobPattern glob_;
};

class ListNode final : public TargetNode {
 public:
  explicit ListNode(std::vector<std::string> ids) : ids_(std::move(ids)) {
    set_.insert(ids_.begin(), ids_.end());
  }
  bool Matches(absl::string_view minion_id, GrainLookupRef) const override {
    return set_.contains(minion_id);
  }
  const std::vector<std::string>* ListIds() const override { return &ids_; }
  std::string DebugString() const override {
    constexpr size_t kShown = 3;
    std::vector<absl::string_view> shown(
        ids_.begin(), ids_.begin() + std::min(kShown, ids_.size()));
    return absl::StrCat("list[", ids_.size(), "](", absl::StrJoin(shown, ","),
                        ids_.size() > kShown ? ",...)" : ")");
  }

 private:
  std::vector<std::string> ids_;  // In the given order, without duplicates.
  absl::flat_hash_set<std::string> set_;
};

class PcreNode final : public TargetNode {
 public:
  explicit PcreNode(std::unique_ptr<const re2::RE2> re) : re_(std::move(re)) {}
  bool Matches(absl::string_view minion_id, GrainLookupRef) const override {
    return re2::RE2::FullMatch(
        re2::StringPiece(minion_id.data(), minion_id.size()), *re_);
  }
  std::string DebugString() const override {
    return absl::StrCat("pcre(", re_->pattern(), ")");
  }

 private:
  std::unique_ptr<const re2::RE2> re_;
};

class GrainNode final : public TargetNode {
 public:
  GrainNode(std::string key, GlobPattern glob)
      : key_(std::move(key)), glob_(std::move(glob)) {}
  bool Matches(absl::string_view, GrainLookupRef grains) const override {
    const std::optional<absl::string_view> value = grains(key_);
    return value.has_value() && glob_.Matches(*value);
  }
  bool UsesGrains() const override { return true; }
  std::string DebugString() const override {
    return absl::StrCat("grain(", key_, ":", glob_.pattern(), ")");
  }

 private:
  std::string key_;
  GlobPattern glob_;
};

class AndNode final : public TargetNode {
 public:
  explicit AndNode(std::vector<NodePtr> children)
      : children_(std::move(children)) {}
  bool Matches(absl::string_view minion_id,
               GrainLookupRef grains) const override {
    for (const NodePtr& child : children_) {
      if (!child->Matches(minion_id, grains)) return false;
    }
    return true;
  }
  bool UsesGrains() const override {
    for (const NodePtr& child : children_) {
      if (child->UsesGrains()) return true;
    }
    return false;
  }
  std::string DebugString() const override {
    return absl::StrCat("and(", JoinChildren(children_), ")");
  }

  static std::string JoinChildren(const std::vector<NodePtr>& children) {
    return absl::StrJoin(children, ", ",
                         [](std::string* out, const NodePtr& child) {
                           out->append(child->DebugString());
                         });
  }

 private:
  std::vector<NodePtr> children_;
};

class OrNode final : public TargetNode {
 public:
  explicit OrNode(std::vector<NodePtr> children)
      : children_(std::move(children)) {}
  bool Matches(absl::string_view minion_id,
               GrainLookupRef grains) const override {
    for (const NodePtr& child : children_) {
      if (child->Matches(minion_id, grains)) return true;
    }
    return false;
  }
  bool UsesGrains() const override {
    for (const NodePtr& child : children_) {
      if (child->UsesGrains()) return true;
    }
    return false;
  }
  std::string DebugString() const override {
    return absl::StrCat("or(", AndNode::JoinChildren(children_), ")");
  }

 private:
  std::vector<NodePtr> children_;
};

class NotNode final : public TargetNode {
 public:
  explicit NotNode(NodePtr child) : child_(std::move(child)) {}
  bool Matches(absl::string_view minion_id,
               GrainLookupRef grains) const override {
    return !child_->Matches(minion_id, grains);
  }
  bool UsesGrains() const override { return child_->UsesGrains(); }
  std::string DebugString() const override {
    return absl::StrCat("not(", child_->DebugString(), ")");
  }

 private:
  NodePtr child_;
};

bool IsListSeparator(char c) { return c == ',' || absl::ascii_isspace(c); }

}  // namespace

absl::StatusOr<NodePtr> MakeGlobNode(absl::string_view text, size_t position) {
  absl::StatusOr<GlobPattern> glob = GlobPattern::Compile(text, position);
  if (!glob.ok()) return glob.status();
  return NodePtr(new GlobNode(*std::move(glob)));
}

absl::StatusOr<NodePtr> MakeListNode(absl::string_view text, size_t position) {
  std::vector<std::string> ids;
  absl::flat_hash_set<absl::string_view> seen;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsListSeparator(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !IsListSeparator(text[i])) ++i;
    if (i > start) {
      const absl::string_view id = text.substr(start, i - start);
      if (seen.insert(id).second) ids.emplace_back(id);
    }
  }
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no ids in list at position ", position));
  }
  return NodePtr(new ListNode(std::move(ids)));
}

absl::StatusOr<NodePtr> MakePcreNode(absl::string_view text, size_t position) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty regular expression at position ", position));
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<const re2::RE2>(
      re2::StringPiece(text.data(), text.size()), options);
  if (!re->ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid regular expression at position ", position, ": ",
                     re->error()));
  }
  return NodePtr(new PcreNode(std::move(re)));
}

absl::StatusOr<NodePtr> MakeGrainNode(absl::string_view text, size_t position) {
  // The key runs to the first ':' not escaped by a backslash; "\c" in the
  // key stands for c, so a key that contains ':' is written "a\:b".
  std::string key;
  size_t colon = 0;
  while (colon < text.size() && text[colon] != ':') {
    if (text[colon] == '\\' && colon + 1 < text.size()) ++colon;
    key.push_back(text[colon]);
    ++colon;
  }
  if (colon == text.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected 'key:glob' at position ", position, ", found no ':'"));
  }
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty grain key before ':' at position ", position));
  }
  if (colon + 1 == text.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "empty glob after ':' at position ", position + colon));
  }
  absl::StatusOr<GlobPattern> glob =
      GlobPattern::Compile(text.substr(colon + 1), position + colon + 1);
  if (!glob.ok()) return glob.status();
  return NodePtr(new GrainNode(std::move(key), *std::move(glob)));
}

NodePtr MakeAndNode(std::vector<NodePtr> children) {
  if (children.size() == 1) return std::move(children.front());
  return NodePtr(new AndNode(std::move(children)));
}

NodePtr MakeOrNode(std::vector<NodePtr> children) {
  if (children.size() == 1) return std::move(children.front());
  return NodePtr(new OrNode(std::move(children)));
}

NodePtr MakeNotNode(NodePtr child) {
  return NodePtr(new NotNode(std::move(child)));
}

}  // namespace target_internal
}  // namespace muster
