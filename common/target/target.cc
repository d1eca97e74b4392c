// Target: parsing entry point and the public face of the matcher tree.
//
// Parse does all the work that can fail or allocate: it trims, checks the
// size limit, and builds an immutable tree of matcher nodes (target_node.h;
// compound expressions via compound_parser.h). Errors from the layers below
// carry only "what, at which position"; this file adds the kind and the
// quoted expression, so every message has the same shape:
//   <kind> target '<expression>': <what> at position <n>
// Positions are byte offsets into the expression as the caller gave it.
//
// The tree is held through a shared_ptr to const, so a Target is copied by
// reference count and shared across threads without locks. Matches with a
// Grains map goes through the same GrainLookup path as any other grain store,
// using absl's heterogeneous lookup so no key string is built per call.

#include "common/target/target.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/target/compound_parser.h"
#include "common/target/target_node.h"

namespace muster {

using target_internal::NodePtr;

struct Target::Rep {
  TargetKind kind;
  std::string expression;
  NodePtr root;
};

namespace {

// The expression for an error message: long ones are cut, control bytes
// are escaped so the message stays on one line.
std::string QuoteForMessage(absl::string_view expression) {
  constexpr size_t kMaxShown = 100;
  std::string quoted = "'";
  for (size_t i = 0; i < expression.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(expression[i]);
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&quoted, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      quoted.push_back(static_cast<char>(c));
    }
  }
  if (expression.size() > kMaxShown) quoted.append("...");
  quoted.push_back('\'');
  return quoted;
}

absl::Status TargetError(TargetKind kind, absl::string_view expression,
                         absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      TargetKindName(kind), " target ", QuoteForMessage(expression), ": ",
      what));
}

// Builds the tree for `expression`, whose whitespace-trimmed part is
// `trimmed`. Leaf kinds parse the trimmed text at its offset; the compound
// parser skips whitespace itself and positions tokens in `expression`.
absl::StatusOr<NodePtr> ParseRoot(TargetKind kind, absl::string_view expression,
                                  absl::string_view trimmed) {
  const size_t position = trimmed.data() - expression.data();
  switch (kind) {
    case TargetKind::kGlob:
      return target_internal::MakeGlobNode(trimmed, position);
    case TargetKind::kList:
      return target_internal::MakeListNode(trimmed, position);
    case TargetKind::kPcre:
      return target_internal::MakePcreNode(trimmed, position);
    case TargetKind::kGrain:
      return target_internal::MakeGrainNode(trimmed, position);
    case TargetKind::kCompound:
      return target_internal::ParseCompound(expression);
  }
  return absl::InvalidArgumentError("unknown target kind");
}

}  // namespace

absl::StatusOr<TargetKind> TargetKindFromName(absl::string_view name) {
  if (name == "glob") return TargetKind::kGlob;
  if (name == "list") return TargetKind::kList;
  if (name == "pcre") return TargetKind::kPcre;
  if (name == "grain") return TargetKind::kGrain;
  if (name == "compound") return TargetKind::kCompound;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown target kind ", QuoteForMessage(name),
      "; expected one of glob, list, pcre, grain, compound"));
}

absl::string_view TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kGlob:
      return "glob";
    case TargetKind::kList:
      return "list";
    case TargetKind::kPcre:
      return "pcre";
    case TargetKind::kGrain:
      return "grain";
    case TargetKind::kCompound:
      return "compound";
  }
  return "unknown";
}

Target::Target(std::shared_ptr<const Rep> rep) : rep_(std::move(rep)) {}

absl::StatusOr<Target> Target::Parse(TargetKind kind,
                                     absl::string_view expression) {
  const size_t limit =
      kind == TargetKind::kList ? kMaxListTargetBytes : kMaxTargetExpressionBytes;
  if (expression.size() > limit) {
    return TargetError(kind, expression,
                       absl::StrCat("expression is ", expression.size(),
                                    " bytes, more than the limit of ", limit));
  }
  const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(
      absl::StripTrailingAsciiWhitespace(expression));
  if (trimmed.empty()) return TargetError(kind, expression, "empty target");

  absl::StatusOr<NodePtr> root = ParseRoot(kind, expression, trimmed);
  if (!root.ok()) return TargetError(kind, expression, root.status().message());

  auto rep = std::make_shared<Rep>();
  rep->kind = kind;
  rep->expression = std::string(expression);
  rep->root = *std::move(root);
  return Target(std::move(rep));
}

bool Target::Matches(absl::string_view minion_id, const Grains& grains) const {
  return Matches(minion_id,
                 [&grains](absl::string_view key)
                     -> std::optional<absl::string_view> {
                   const auto it = grains.find(key);
                   if (it == grains.end()) return std::nullopt;
                   return absl::string_view(it->second);
                 });
}

bool Target::Matches(absl::string_view minion_id, GrainLookup grains) const {
  return rep_->root->Matches(minion_id, grains);
}

bool Target::MatchesEveryId() const { return rep_->root->MatchesEveryId(); }

const std::vector<std::string>* Target::ListIds() const {
  return rep_->root->ListIds();
}

bool Target::UsesGrains() const { return rep_->root->UsesGrains(); }

TargetKind Target::kind() const { return rep_->kind; }

const std::string& Target::expression() const { return rep_->expression; }

std::string Target::DebugString() const {
  return absl::StrCat(TargetKindName(rep_->kind), ":",
                      rep_->root->DebugString());
}

}  // namespace muster
