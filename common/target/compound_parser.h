// Internal to common/target: parser for compound target expressions.
//
// Grammar (the contract is the "Target grammar" section of
// docs/PROTOCOL.md; tokens are separated by ASCII whitespace; '(' and ')'
// are tokens of their own even when they touch a word):
//   or_expr  := and_expr ( "or" and_expr )*
//   and_expr := not_expr ( "and" not_expr )*
//   not_expr := "not" not_expr | primary
//   primary  := "(" or_expr ")" | atom
//   atom     := "G@" key ":" glob | "L@" id ( "," id )* | "E@" regex | glob
// Keywords are lowercase only; there is no implicit "and" ("a b" is an
// error). A word starting "G@", "L@" or "E@" is a prefixed atom; any other
// word containing an unescaped '@' is an error (unknown prefix), because a
// bare word is a glob on the minion id and ids never contain '@'. A word
// ends at whitespace or a parenthesis, so "not(a)and(b)" reads as
// not ( a ) and ( b ); only a regex word keeps its own balanced groups:
// "(E@web-(1|2))" reads as '(' "E@web-(1|2)" ')'. A backslash keeps the
// next byte in the word (and is then interpreted by the glob, grain key or
// regex), e.g. "G@os:Win\(R\)"; in an L@ list a backslash is an error.

#ifndef MUSTER_COMMON_TARGET_COMPOUND_PARSER_H_
#define MUSTER_COMMON_TARGET_COMPOUND_PARSER_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/target/target_node.h"

namespace muster {
namespace target_internal {

// Maximum nesting of parentheses and "not" in a compound expression.
inline constexpr int kMaxCompoundDepth = 64;

// Parses a whole compound expression. Errors are InvalidArgument with a
// message naming the problem and its byte position in `expression`, without
// repeating the expression, e.g. "unknown prefix 'X@' at position 7".
absl::StatusOr<NodePtr> ParseCompound(absl::string_view expression);

}  // namespace target_internal
}  // namespace muster

#endif  // MUSTER_COMMON_TARGET_COMPOUND_PARSER_H_
