// Compound target parser: a tokenizer plus a recursive-descent parser.
//
// The expression is tokenized up front (tokens are views into it and carry
// their byte position), then parsed with one function per precedence level.
// Runs of the same operator are collected into one n-ary node, so
// "a or b or c ..." with thousands of terms neither recurses deeply when
// parsed nor when matched; only parentheses and "not" nest, and they are
// capped at kMaxCompoundDepth so hostile input cannot exhaust the stack.
//
// Every error names the offending token and its position: operators with a
// missing operand point at the operator, an unclosed '(' points at itself,
// and errors inside an atom (glob, regex, list, grain) are positioned in the
// whole expression.

#include "common/target/compound_parser.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace muster {
namespace target_internal {
namespace {

enum class TokenKind { kWord, kAnd, kOr, kNot, kOpen, kClose, kEnd };

struct Token {
  TokenKind kind;
  absl::string_view text;
  size_t position;
};

// Length of the word starting at expression[start]. A word ends at
// whitespace or at a parenthesis, except that a regex word ("E@...") keeps
// its own balanced groups: it ends only at a ')' that closes nothing in it.
// A backslash keeps the next byte in the word.
size_t WordLength(absl::string_view expression, size_t start) {
  const bool is_regex = absl::StartsWith(expression.substr(start), "E@");
  size_t i = start;
  int depth = 0;
  while (i < expression.size()) {
    const char c = expression[i];
    if (absl::ascii_isspace(c)) break;
    if (c == '\\') {
      i += 2;
      continue;
    }
    if (c == '(') {
      if (!is_regex) break;
      ++depth;
    } else if (c == ')') {
      if (depth == 0) break;
      --depth;
    }
    ++i;
  }
  return std::min(i, expression.size()) - start;
}

std::vector<Token> Tokenize(absl::string_view expression) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (true) {
    while (i < expression.size() && absl::ascii_isspace(expression[i])) ++i;
    if (i == expression.size()) break;
    const char c = expression[i];
    if (c == '(' || c == ')') {
      tokens.push_back({c == '(' ? TokenKind::kOpen : TokenKind::kClose,
                        expression.substr(i, 1), i});
      ++i;
      continue;
    }
    const size_t length = WordLength(expression, i);
    const absl::string_view word = expression.substr(i, length);
    TokenKind kind = TokenKind::kWord;
    if (word == "and") {
      kind = TokenKind::kAnd;
    } else if (word == "or") {
      kind = TokenKind::kOr;
    } else if (word == "not") {
      kind = TokenKind::kNot;
    }
    tokens.push_back({kind, word, i});
    i += length;
  }
  tokens.push_back({TokenKind::kEnd, absl::string_view(), expression.size()});
  return tokens;
}

std::string Describe(const Token& token) {
  if (token.kind == TokenKind::kEnd) return "end of expression";
  return absl::StrCat("'", token.text, "' at position ", token.position);
}

class CompoundParser {
 public:
  explicit CompoundParser(absl::string_view expression)
      : tokens_(Tokenize(expression)) {}

  absl::StatusOr<NodePtr> Parse() {
    absl::StatusOr<NodePtr> node = ParseOr(0);
    if (!node.ok()) return node.status();
    const Token& token = Peek();
    if (token.kind == TokenKind::kEnd) return node;
    if (token.kind == TokenKind::kClose) {
      return absl::InvalidArgumentError(
          absl::StrCat("unbalanced parentheses: ')' at position ",
                       token.position, " has no matching '('"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "expected 'and' or 'or' before ", Describe(token)));
  }

 private:
  const Token& Peek() const { return tokens_[next_]; }
  const Token& Next() { return tokens_[next_++]; }

  absl::StatusOr<NodePtr> ParseOr(int depth) {
    return ParseChain(TokenKind::kOr, depth);
  }

  // Parses `operand (op operand)*` where op is kOr (operands are and-chains)
  // or kAnd (operands are not-expressions).
  absl::StatusOr<NodePtr> ParseChain(TokenKind op, int depth) {
    std::vector<NodePtr> children;
    while (true) {
      absl::StatusOr<NodePtr> child = op == TokenKind::kOr
                                          ? ParseChain(TokenKind::kAnd, depth)
                                          : ParseNot(depth);
      if (!child.ok()) return child.status();
      children.push_back(*std::move(child));
      if (Peek().kind != op) break;
      Next();
    }
    return op == TokenKind::kOr ? MakeOrNode(std::move(children))
                                : MakeAndNode(std::move(children));
  }

  absl::StatusOr<NodePtr> ParseNot(int depth) {
    if (Peek().kind != TokenKind::kNot) return ParsePrimary(depth);
    const Token& not_token = Next();
    if (depth + 1 > kMaxCompoundDepth) return TooDeep(not_token);
    absl::StatusOr<NodePtr> child = ParseNot(depth + 1);
    if (!child.ok()) return child.status();
    return MakeNotNode(*std::move(child));
  }

  absl::StatusOr<NodePtr> ParsePrimary(int depth) {
    const Token& token = Peek();
    if (token.kind == TokenKind::kWord) return ParseAtom(Next());
    if (token.kind != TokenKind::kOpen) return MissingOperand();
    const Token& open = Next();
    if (depth + 1 > kMaxCompoundDepth) return TooDeep(open);
    absl::StatusOr<NodePtr> inner = ParseOr(depth + 1);
    if (!inner.ok()) return inner.status();
    const Token& close = Peek();
    if (close.kind == TokenKind::kClose) {
      Next();
      return inner;
    }
    if (close.kind == TokenKind::kEnd) {
      return absl::InvalidArgumentError(
          absl::StrCat("unbalanced parentheses: '(' at position ",
                       open.position, " is not closed"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "expected 'and', 'or' or ')' before ", Describe(close)));
  }

  absl::StatusOr<NodePtr> ParseAtom(const Token& word) {
    const absl::string_view text = word.text;
    const bool prefixed = text.size() >= 2 && text[1] == '@' &&
                          (text[0] == 'G' || text[0] == 'L' || text[0] == 'E');
    if (!prefixed) {
      // A bare word is a glob on the minion id. Minion ids never contain
      // '@', so an unescaped '@' means a prefix this grammar does not have
      // ("X@foo", "g@role:web", Salt's "P@", "I@", "S@"...): an error rather
      // than a glob that can never match.
      const size_t at = UnescapedAt(text);
      if (at != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "unknown prefix '", text.substr(0, at + 1), "' at position ",
            word.position, " (known: G@ grain, L@ list, E@ regex)"));
      }
      return MakeGlobNode(text, word.position);
    }
    const absl::string_view body = text.substr(2);
    const size_t body_position = word.position + 2;
    if (body.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "empty '", text.substr(0, 2), "' target at position ",
          word.position));
    }
    switch (text[0]) {
      case 'G':
        return MakeGrainNode(body, body_position);
      case 'L': {
        // List ids are literal; the tokenizer's backslash would otherwise
        // leave "a\ b" as the ids "a\" and "b".
        const size_t backslash = body.find('\\');
        if (backslash != absl::string_view::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              "'\\' in L@ list at position ", body_position + backslash,
              " (list ids are literal; minion ids never contain '\\')"));
        }
        return MakeListNode(body, body_position);
      }
      default:
        return MakePcreNode(body, body_position);
    }
  }

  // Offset of the first '@' in `word` not preceded by an escaping
  // backslash, or npos.
  static size_t UnescapedAt(absl::string_view word) {
    for (size_t i = 0; i < word.size(); ++i) {
      if (word[i] == '\\') {
        ++i;
      } else if (word[i] == '@') {
        return i;
      }
    }
    return absl::string_view::npos;
  }

  // The next token cannot start an operand.
  absl::Status MissingOperand() const {
    const Token& found = Peek();
    if (next_ == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected a target, found ", Describe(found)));
    }
    const Token& previous = tokens_[next_ - 1];
    std::string message =
        absl::StrCat("expected a target after '", previous.text,
                     "' at position ", previous.position);
    if (found.kind != TokenKind::kEnd) {
      absl::StrAppend(&message, ", found ", Describe(found));
    }
    return absl::InvalidArgumentError(message);
  }

  static absl::Status TooDeep(const Token& token) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nesting deeper than ", kMaxCompoundDepth, " levels at ",
        Describe(token)));
  }

  std::vector<Token> tokens_;
  size_t next_ = 0;
};

}  // namespace

absl::StatusOr<NodePtr> ParseCompound(absl::string_view expression) {
  return CompoundParser(expression).Parse();
}

}  // namespace target_internal
}  // namespace muster
