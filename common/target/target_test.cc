#include "common/target/target.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace muster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const Grains kWebGrains = {
    {"role", "web"}, {"os", "debian-12"}, {"rack", "r7"}, {"dc", "dc2"}};
const Grains kDbGrains = {{"role", "db"}, {"os", "debian-11"}, {"dc", "dc1"}};
const Grains kNoGrains;

Target MustParse(TargetKind kind, absl::string_view expression) {
  absl::StatusOr<Target> target = Target::Parse(kind, expression);
  EXPECT_TRUE(target.ok()) << expression << ": " << target.status();
  if (!target.ok()) std::abort();
  return *std::move(target);
}

bool Match(TargetKind kind, absl::string_view expression,
           absl::string_view id, const Grains& grains = kNoGrains) {
  return MustParse(kind, expression).Matches(id, grains);
}

bool Compound(absl::string_view expression, absl::string_view id,
              const Grains& grains = kNoGrains) {
  return Match(TargetKind::kCompound, expression, id, grains);
}

std::string ParseError(TargetKind kind, absl::string_view expression) {
  absl::StatusOr<Target> target = Target::Parse(kind, expression);
  EXPECT_FALSE(target.ok()) << expression << " parsed as "
                            << target->DebugString();
  if (target.ok()) return "";
  EXPECT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(target.status().message());
}

// --- Kind names -----------------------------------------------------------

TEST(TargetKindTest, NamesRoundTrip) {
  for (TargetKind kind : {TargetKind::kGlob, TargetKind::kList,
                          TargetKind::kPcre, TargetKind::kGrain,
                          TargetKind::kCompound}) {
    absl::StatusOr<TargetKind> parsed =
        TargetKindFromName(TargetKindName(kind));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(TargetKindName(TargetKind::kPcre), "pcre");
}

TEST(TargetKindTest, UnknownNamesAreRejected) {
  for (absl::string_view name : {"", "GLOB", "regex", "nodegroup", "glob "}) {
    absl::StatusOr<TargetKind> parsed = TargetKindFromName(name);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_THAT(std::string(TargetKindFromName("regex").status().message()),
              HasSubstr("unknown target kind 'regex'"));
}

// --- Glob -----------------------------------------------------------------

TEST(GlobTargetTest, MatchesWholeId) {
  EXPECT_TRUE(Match(TargetKind::kGlob, "web-0*", "web-00042.dc2.example.com"));
  EXPECT_FALSE(Match(TargetKind::kGlob, "web-0*", "db-00042.dc2.example.com"));
  EXPECT_FALSE(Match(TargetKind::kGlob, "web", "web-1"));
  EXPECT_TRUE(Match(TargetKind::kGlob, "*", "anything"));
  EXPECT_TRUE(Match(TargetKind::kGlob, "web-[0-4]?.dc[!3]*", "web-12.dc2.x"));
  EXPECT_FALSE(Match(TargetKind::kGlob, "web-[0-4]?.dc[!3]*", "web-12.dc3.x"));
}

TEST(GlobTargetTest, SurroundingWhitespaceIsIgnored) {
  EXPECT_TRUE(Match(TargetKind::kGlob, "  web-*\n", "web-1"));
}

TEST(GlobTargetTest, GrainsAreIgnored) {
  const Target target = MustParse(TargetKind::kGlob, "web*");
  EXPECT_FALSE(target.UsesGrains());
  EXPECT_TRUE(target.Matches("web1", kDbGrains));
  EXPECT_EQ(target.ListIds(), nullptr);
}

// --- List -----------------------------------------------------------------

TEST(ListTargetTest, MixedSeparators) {
  const Target target =
      MustParse(TargetKind::kList, " web-1, web-2,,web-3\tweb-4\n\nweb-5 ,");
  for (absl::string_view id : {"web-1", "web-2", "web-3", "web-4", "web-5"}) {
    EXPECT_TRUE(target.Matches(id, kNoGrains)) << id;
  }
  EXPECT_FALSE(target.Matches("web-6", kNoGrains));
  EXPECT_FALSE(target.Matches("web-", kNoGrains));
  EXPECT_FALSE(target.Matches("", kNoGrains));
  ASSERT_NE(target.ListIds(), nullptr);
  EXPECT_THAT(*target.ListIds(),
              ElementsAre("web-1", "web-2", "web-3", "web-4", "web-5"));
}

TEST(ListTargetTest, IdsAreExactNotGlobs) {
  EXPECT_FALSE(Match(TargetKind::kList, "web-*", "web-1"));
  EXPECT_TRUE(Match(TargetKind::kList, "web-*", "web-*"));
}

TEST(ListTargetTest, DuplicatesAreDroppedKeepingFirstOrder) {
  const Target target = MustParse(TargetKind::kList, "b,a,b,c,a");
  EXPECT_THAT(*target.ListIds(), ElementsAre("b", "a", "c"));
}

// --- PCRE -----------------------------------------------------------------

TEST(PcreTargetTest, FullMatchOnly) {
  EXPECT_TRUE(Match(TargetKind::kPcre, "web-0[0-9]+\\..*", "web-0042.dc2"));
  // A partial match is not a match.
  EXPECT_FALSE(Match(TargetKind::kPcre, "web", "web-1"));
  EXPECT_FALSE(Match(TargetKind::kPcre, "\\d+", "web-12"));
  EXPECT_FALSE(Match(TargetKind::kPcre, "dc2", "web-1.dc2.example.com"));
  EXPECT_TRUE(Match(TargetKind::kPcre, ".*dc2.*", "web-1.dc2.example.com"));
  EXPECT_TRUE(Match(TargetKind::kPcre, "(web|db)-\\d{2}", "db-12"));
  EXPECT_FALSE(Match(TargetKind::kPcre, "(web|db)-\\d{2}", "db-123"));
}

TEST(PcreTargetTest, InvalidRegexIncludesRe2Error) {
  const std::string error = ParseError(TargetKind::kPcre, "web-(0");
  EXPECT_THAT(error, HasSubstr("pcre target 'web-(0': invalid regular "
                               "expression at position 0: "));
  EXPECT_THAT(error, HasSubstr("missing )"));
  EXPECT_THAT(ParseError(TargetKind::kPcre, "a**"),
              HasSubstr("bad repetition operator"));
  // Backreferences are PCRE but not RE2.
  EXPECT_THAT(ParseError(TargetKind::kPcre, "(a)\\1"),
              HasSubstr("invalid regular expression"));
}

// --- Grain ----------------------------------------------------------------

TEST(GrainTargetTest, GlobOnValue) {
  EXPECT_TRUE(Match(TargetKind::kGrain, "role:web", "x", kWebGrains));
  EXPECT_FALSE(Match(TargetKind::kGrain, "role:web", "x", kDbGrains));
  EXPECT_TRUE(Match(TargetKind::kGrain, "os:debian-1[12]", "x", kDbGrains));
  EXPECT_TRUE(Match(TargetKind::kGrain, "os:*", "x", kDbGrains));
  EXPECT_FALSE(Match(TargetKind::kGrain, "role:we", "x", kWebGrains));
}

TEST(GrainTargetTest, MissingKeyDoesNotMatchEvenStar) {
  EXPECT_FALSE(Match(TargetKind::kGrain, "rack:*", "x", kDbGrains));
  EXPECT_FALSE(Match(TargetKind::kGrain, "role:*", "x", kNoGrains));
}

TEST(GrainTargetTest, SplitsAtFirstColon) {
  const Grains grains = {{"endpoint", "http://a:80"}, {"a:b", "c"}};
  EXPECT_TRUE(Match(TargetKind::kGrain, "endpoint:http://a:80", "x", grains));
  EXPECT_TRUE(Match(TargetKind::kGrain, "endpoint:*:80", "x", grains));
  // "a:b:c" is key "a", glob "b:c"; the grain "a:b" is not consulted.
  EXPECT_FALSE(Match(TargetKind::kGrain, "a:b:c", "x", grains));
  // An escaped ':' belongs to the key.
  EXPECT_TRUE(Match(TargetKind::kGrain, "a\\:b:c", "x", grains));
  EXPECT_TRUE(Compound("G@a\\:b:c", "x", grains));
}

TEST(GrainTargetTest, UsesGrains) {
  EXPECT_TRUE(MustParse(TargetKind::kGrain, "role:web").UsesGrains());
}

TEST(GrainTargetTest, LookupCallbackAvoidsGrainsMap) {
  const Target target = MustParse(TargetKind::kGrain, "role:web*");
  const std::map<std::string, std::string> grains = {{"role", "webfront"}};
  int lookups = 0;
  auto lookup = [&](absl::string_view key) -> std::optional<absl::string_view> {
    ++lookups;
    auto it = grains.find(std::string(key));
    if (it == grains.end()) return std::nullopt;
    return absl::string_view(it->second);
  };
  EXPECT_TRUE(target.Matches("x", lookup));
  EXPECT_EQ(lookups, 1);
}

// --- Compound -------------------------------------------------------------

TEST(CompoundTargetTest, SpecExample) {
  const std::string expression =
      "G@role:web and web-0* and not L@web-0001";
  EXPECT_TRUE(Compound(expression, "web-0002", kWebGrains));
  EXPECT_FALSE(Compound(expression, "web-0001", kWebGrains));
  EXPECT_FALSE(Compound(expression, "web-0002", kDbGrains));
  EXPECT_FALSE(Compound(expression, "web-1002", kWebGrains));
  EXPECT_TRUE(MustParse(TargetKind::kCompound, expression).UsesGrains());
}

TEST(CompoundTargetTest, AndBindsTighterThanOr) {
  // a or (b and c)
  EXPECT_TRUE(Compound("a or b and c", "a"));
  EXPECT_FALSE(Compound("a or b and c", "b"));
  EXPECT_EQ(MustParse(TargetKind::kCompound, "a or b and c").DebugString(),
            "compound:or(glob(a), and(glob(b), glob(c)))");
  EXPECT_EQ(MustParse(TargetKind::kCompound, "a and b or c").DebugString(),
            "compound:or(and(glob(a), glob(b)), glob(c))");
}

TEST(CompoundTargetTest, NotBindsTighterThanAnd) {
  // (not a) and b
  EXPECT_TRUE(Compound("not web-1 and web-*", "web-2"));
  EXPECT_FALSE(Compound("not web-1 and web-*", "web-1"));
  EXPECT_FALSE(Compound("not web-1 and web-*", "db-1"));
  EXPECT_EQ(MustParse(TargetKind::kCompound, "not a and b").DebugString(),
            "compound:and(not(glob(a)), glob(b))");
  EXPECT_TRUE(Compound("not not a", "a"));
}

TEST(CompoundTargetTest, ParenthesesOverridePrecedence) {
  EXPECT_FALSE(Compound("(a or b) and c", "a"));
  EXPECT_TRUE(Compound("(a* or b*) and *1", "b1"));
  EXPECT_TRUE(Compound("not (a or b)", "c"));
  EXPECT_FALSE(Compound("not (a or b)", "b"));
}

TEST(CompoundTargetTest, ParenthesesMayTouchWords) {
  EXPECT_TRUE(Compound("(web* or db*)", "db-1"));
  EXPECT_TRUE(Compound("((web*)) and(not db*)", "web-1"));
  EXPECT_TRUE(Compound("not(G@role:db)and(web*)", "web-1", kWebGrains));
  EXPECT_FALSE(Compound("not(G@role:db)and(web*)", "web-1", kDbGrains));
  EXPECT_EQ(MustParse(TargetKind::kCompound, "not(a)or(b)").DebugString(),
            "compound:or(not(glob(a)), glob(b))");
}

TEST(CompoundTargetTest, EscapedParenthesesStayInTheWord) {
  const Grains grains = {{"os", "Win(R)"}};
  EXPECT_TRUE(Compound("(G@os:Win\\(R\\))", "x", grains));
  EXPECT_TRUE(Compound("E@a\\)", "a)"));
}

TEST(CompoundTargetTest, NestedParentheses) {
  const std::string expression =
      "((web-* and (G@dc:dc2 or G@dc:dc3)) or (db-* and not (G@os:*-11)))";
  EXPECT_TRUE(Compound(expression, "web-1", kWebGrains));
  EXPECT_FALSE(Compound(expression, "web-1", kDbGrains));
  EXPECT_FALSE(Compound(expression, "db-1", kDbGrains));
  EXPECT_TRUE(Compound(expression, "db-1", kWebGrains));
}

TEST(CompoundTargetTest, Prefixes) {
  EXPECT_TRUE(Compound("G@os:debian-1?", "x", kDbGrains));
  EXPECT_FALSE(Compound("G@missing:*", "x", kDbGrains));
  EXPECT_TRUE(Compound("L@a,b,c", "b"));
  EXPECT_FALSE(Compound("L@a,b,c", "d"));
  EXPECT_TRUE(Compound("E@web-\\d+", "web-12"));
  EXPECT_FALSE(Compound("E@web", "web-12"));  // Full match.
  EXPECT_TRUE(Compound("(E@web-(1|2))", "web-2"));
  EXPECT_TRUE(Compound("E@(web|db)-1 and not E@db-.*", "web-1"));
  EXPECT_FALSE(Compound("E@(web|db)-1 and not E@db-.*", "db-1"));
}

TEST(CompoundTargetTest, KeywordsAreLowercaseOnly) {
  // "AND" is a glob word, so two adjacent atoms: an error, not an operator.
  EXPECT_THAT(ParseError(TargetKind::kCompound, "a AND b"),
              HasSubstr("expected 'and' or 'or' before 'AND' at position 2"));
}

TEST(CompoundTargetTest, BareWordsWithAnUnescapedAtAreUnknownPrefixes) {
  // Minion ids never contain '@', so such a glob could never match: it is
  // a mistyped or unsupported prefix.
  EXPECT_THAT(ParseError(TargetKind::kCompound, "XY@z"),
              HasSubstr("unknown prefix 'XY@' at position 0"));
  EXPECT_THAT(ParseError(TargetKind::kCompound, "a or user@host*"),
              HasSubstr("unknown prefix 'user@' at position 5"));
  EXPECT_THAT(ParseError(TargetKind::kCompound, "@web"),
              HasSubstr("unknown prefix '@' at position 0"));
  // Escaped, '@' is a literal byte of the glob.
  EXPECT_TRUE(Compound("user\\@host*", "user@host1"));
  // Inside a prefixed atom '@' is ordinary.
  EXPECT_TRUE(Compound("G@mail:*@example.com", "x",
                       Grains{{"mail", "ops@example.com"}}));
  EXPECT_TRUE(Compound("L@a@b", "a@b"));
}

TEST(CompoundTargetTest, BackslashInAListIsAnError) {
  EXPECT_THAT(ParseError(TargetKind::kCompound, "L@a\\ b"),
              HasSubstr("'\\' in L@ list at position 3"));
}

TEST(CompoundTargetTest, LongOrChainsAreFlat) {
  std::string expression = "w0";
  for (int i = 1; i < 5000; ++i) absl::StrAppend(&expression, " or w", i);
  EXPECT_TRUE(Compound(expression, "w4999"));
  EXPECT_FALSE(Compound(expression, "w5000"));
}

TEST(CompoundTargetTest, DepthLimit) {
  std::string ok;
  std::string too_deep;
  for (int i = 0; i < 64; ++i) ok += "(";
  ok += "a";
  for (int i = 0; i < 64; ++i) ok += ")";
  EXPECT_TRUE(Compound(ok, "a"));
  too_deep = "(" + ok + ")";
  EXPECT_THAT(ParseError(TargetKind::kCompound, too_deep),
              HasSubstr("nesting deeper than 64 levels at '(' at position 64"));
  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  EXPECT_THAT(ParseError(TargetKind::kCompound, nots + "a"),
              HasSubstr("nesting deeper than 64 levels at 'not' at position "
                        "256"));
}

// --- ListIds --------------------------------------------------------------

TEST(ListIdsTest, OnlyForPlainLists) {
  EXPECT_THAT(*MustParse(TargetKind::kCompound, "L@a,b").ListIds(),
              ElementsAre("a", "b"));
  EXPECT_THAT(*MustParse(TargetKind::kCompound, " ((L@c)) ").ListIds(),
              ElementsAre("c"));
  EXPECT_EQ(MustParse(TargetKind::kCompound, "L@a,b or c").ListIds(), nullptr);
  EXPECT_EQ(MustParse(TargetKind::kCompound, "not L@a").ListIds(), nullptr);
  EXPECT_EQ(MustParse(TargetKind::kCompound, "a").ListIds(), nullptr);
  EXPECT_EQ(MustParse(TargetKind::kPcre, "a").ListIds(), nullptr);
  EXPECT_EQ(MustParse(TargetKind::kGrain, "a:b").ListIds(), nullptr);
}

TEST(MatchesEveryIdTest, OnlyForAGlobOfStars) {
  EXPECT_TRUE(MustParse(TargetKind::kGlob, "*").MatchesEveryId());
  EXPECT_TRUE(MustParse(TargetKind::kGlob, "**").MatchesEveryId());
  EXPECT_TRUE(MustParse(TargetKind::kCompound, "*").MatchesEveryId());
  EXPECT_FALSE(MustParse(TargetKind::kGlob, "*.dc1").MatchesEveryId());
  EXPECT_FALSE(MustParse(TargetKind::kGlob, "?*").MatchesEveryId());
  EXPECT_FALSE(MustParse(TargetKind::kGlob, "\\*").MatchesEveryId());  // a literal '*'
  EXPECT_FALSE(MustParse(TargetKind::kCompound, "* and not web-1").MatchesEveryId());
  EXPECT_FALSE(MustParse(TargetKind::kPcre, ".*").MatchesEveryId());
  EXPECT_FALSE(MustParse(TargetKind::kGrain, "role:*").MatchesEveryId());
  EXPECT_FALSE(MustParse(TargetKind::kList, "*").MatchesEveryId());
}

TEST(ListIdsTest, PointerOutlivesOriginalCopy) {
  const std::vector<std::string>* ids;
  std::optional<Target> copy;
  {
    const Target original = MustParse(TargetKind::kList, "x y");
    copy = original;
    ids = original.ListIds();
  }
  EXPECT_EQ(copy->ListIds(), ids);
  EXPECT_THAT(*ids, ElementsAre("x", "y"));
}

// --- Sharing --------------------------------------------------------------

TEST(TargetTest, ConcurrentMatchingAgrees) {
  const Target target = MustParse(
      TargetKind::kCompound, "G@role:web and E@web-\\d+ and not L@web-7");
  std::vector<std::thread> threads;
  std::vector<int> counts(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&target, &counts, t] {
      for (int i = 0; i < 2000; ++i) {
        if (target.Matches(absl::StrCat("web-", i % 10), kWebGrains)) {
          ++counts[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(counts, ElementsAre(1800, 1800, 1800, 1800));
}

TEST(TargetTest, AccessorsKeepTheGivenExpression) {
  const Target target = MustParse(TargetKind::kGrain, " role:web ");
  EXPECT_EQ(target.kind(), TargetKind::kGrain);
  EXPECT_EQ(target.expression(), " role:web ");
  EXPECT_EQ(target.DebugString(), "grain:grain(role:web)");
}

// --- Malformed input ------------------------------------------------------

struct BadTarget {
  TargetKind kind;
  std::string expression;
  std::string message;  // Exact expected message.
};

class MalformedTargetTest : public ::testing::TestWithParam<BadTarget> {};

TEST_P(MalformedTargetTest, ReportsWhatAndWhere) {
  EXPECT_EQ(ParseError(GetParam().kind, GetParam().expression),
            GetParam().message);
}

constexpr TargetKind kGlob = TargetKind::kGlob;
constexpr TargetKind kList = TargetKind::kList;
constexpr TargetKind kPcre = TargetKind::kPcre;
constexpr TargetKind kGrain = TargetKind::kGrain;
constexpr TargetKind kCompound = TargetKind::kCompound;

INSTANTIATE_TEST_SUITE_P(
    Errors, MalformedTargetTest,
    ::testing::Values(
        // Empty, for every kind.
        BadTarget{kGlob, "", "glob target '': empty target"},
        BadTarget{kList, " ", "list target ' ': empty target"},
        BadTarget{kPcre, "\t", "pcre target '\\x09': empty target"},
        BadTarget{kGrain, "", "grain target '': empty target"},
        BadTarget{kCompound, " \n ", "compound target ' \\x0a ': empty target"},
        // Glob.
        BadTarget{kGlob, "web[",
                  "glob target 'web[': unterminated character class at "
                  "position 3"},
        BadTarget{kGlob, "  web[",
                  "glob target '  web[': unterminated character class at "
                  "position 5"},
        BadTarget{kGlob, "web\\",
                  "glob target 'web\\': trailing backslash at position 3"},
        BadTarget{kGlob, "[9-0]",
                  "glob target '[9-0]': invalid range '9-0' in character "
                  "class at position 1"},
        // List.
        BadTarget{kList, ",,", "list target ',,': no ids in list at position 0"},
        BadTarget{kList, " , ,",
                  "list target ' , ,': no ids in list at position 1"},
        // Grain.
        BadTarget{kGrain, "role",
                  "grain target 'role': expected 'key:glob' at position 0, "
                  "found no ':'"},
        BadTarget{kGrain, ":web",
                  "grain target ':web': empty grain key before ':' at "
                  "position 0"},
        BadTarget{kGrain, "role:",
                  "grain target 'role:': empty glob after ':' at position 4"},
        BadTarget{kGrain, "role:web[",
                  "grain target 'role:web[': unterminated character class at "
                  "position 8"},
        // Compound: operators and operands.
        BadTarget{kCompound, "a and",
                  "compound target 'a and': expected a target after 'and' at "
                  "position 2"},
        BadTarget{kCompound, "a or",
                  "compound target 'a or': expected a target after 'or' at "
                  "position 2"},
        BadTarget{kCompound, "not",
                  "compound target 'not': expected a target after 'not' at "
                  "position 0"},
        BadTarget{kCompound, "and a",
                  "compound target 'and a': expected a target, found 'and' "
                  "at position 0"},
        BadTarget{kCompound, "a and or b",
                  "compound target 'a and or b': expected a target after "
                  "'and' at position 2, found 'or' at position 6"},
        BadTarget{kCompound, "a b",
                  "compound target 'a b': expected 'and' or 'or' before 'b' "
                  "at position 2"},
        BadTarget{kCompound, "a not b",
                  "compound target 'a not b': expected 'and' or 'or' before "
                  "'not' at position 2"},
        // Compound: parentheses.
        BadTarget{kCompound, "a and (b",
                  "compound target 'a and (b': unbalanced parentheses: '(' "
                  "at position 6 is not closed"},
        BadTarget{kCompound, "((a)",
                  "compound target '((a)': unbalanced parentheses: '(' at "
                  "position 0 is not closed"},
        BadTarget{kCompound, "a)",
                  "compound target 'a)': unbalanced parentheses: ')' at "
                  "position 1 has no matching '('"},
        BadTarget{kCompound, "(a) or b)",
                  "compound target '(a) or b)': unbalanced parentheses: ')' "
                  "at position 8 has no matching '('"},
        BadTarget{kCompound, ")",
                  "compound target ')': expected a target, found ')' at "
                  "position 0"},
        BadTarget{kCompound, "()",
                  "compound target '()': expected a target after '(' at "
                  "position 0, found ')' at position 1"},
        BadTarget{kCompound, "web(1)",
                  "compound target 'web(1)': expected 'and' or 'or' before "
                  "'(' at position 3"},
        BadTarget{kCompound, "(a b)",
                  "compound target '(a b)': expected 'and', 'or' or ')' "
                  "before 'b' at position 3"},
        // Compound: prefixes and atoms, positioned in the whole expression.
        BadTarget{kCompound, "a and X@foo",
                  "compound target 'a and X@foo': unknown prefix 'X@' at "
                  "position 6 (known: G@ grain, L@ list, E@ regex)"},
        BadTarget{kCompound, "P@",
                  "compound target 'P@': unknown prefix 'P@' at position 0 "
                  "(known: G@ grain, L@ list, E@ regex)"},
        BadTarget{kCompound, "g@role:web",
                  "compound target 'g@role:web': unknown prefix 'g@' at "
                  "position 0 (known: G@ grain, L@ list, E@ regex)"},
        BadTarget{kCompound, "a or G@",
                  "compound target 'a or G@': empty 'G@' target at position "
                  "5"},
        BadTarget{kCompound, "L@ a",
                  "compound target 'L@ a': empty 'L@' target at position 0"},
        BadTarget{kCompound, "E@",
                  "compound target 'E@': empty 'E@' target at position 0"},
        BadTarget{kCompound, "a and G@role",
                  "compound target 'a and G@role': expected 'key:glob' at "
                  "position 8, found no ':'"},
        BadTarget{kCompound, "x or L@,,",
                  "compound target 'x or L@,,': no ids in list at position "
                  "7"},
        BadTarget{kCompound, "x and web[",
                  "compound target 'x and web[': unterminated character class "
                  "at position 9"},
        BadTarget{kCompound, "x and G@role:w[",
                  "compound target 'x and G@role:w[': unterminated character "
                  "class at position 14"}));

TEST(MalformedTargetTest, BadRegexInCompoundIsPositioned) {
  EXPECT_THAT(ParseError(kCompound, "a or E@web-(0"),
              HasSubstr("compound target 'a or E@web-(0': invalid regular "
                        "expression at position 7: missing )"));
}

TEST(MalformedTargetTest, LengthLimit) {
  const std::string at_limit(kMaxTargetExpressionBytes, 'a');
  EXPECT_TRUE(Target::Parse(kGlob, at_limit).ok());
  const std::string error = ParseError(kGlob, at_limit + "a");
  EXPECT_THAT(error, HasSubstr("expression is 65537 bytes, more than the "
                               "limit of 65536"));
  // The message quotes only the start of a long expression.
  EXPECT_LT(error.size(), 300u);
  EXPECT_THAT(error, HasSubstr("aaa...'"));
}

TEST(MalformedTargetTest, ListsMayBeAsLongAsARetryOfAHundredThousandMissing) {
  std::string ids;
  for (int i = 0; i < 100000; ++i) {
    absl::StrAppend(&ids, i == 0 ? "" : ",", "web-", 100000 + i, ".dc2.example.com");
  }
  ASSERT_GT(ids.size(), kMaxTargetExpressionBytes);
  absl::StatusOr<Target> list = Target::Parse(kList, ids);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_NE(list->ListIds(), nullptr);
  EXPECT_EQ(list->ListIds()->size(), 100000u);
  EXPECT_TRUE(list->Matches("web-199999.dc2.example.com", {}));
  EXPECT_FALSE(Target::Parse(kGlob, ids).ok());
  EXPECT_THAT(ParseError(kList, std::string(kMaxListTargetBytes + 1, 'a')),
              HasSubstr("more than the limit of 16777216"));
}

}  // namespace
}  // namespace muster
