// Runs the target conformance corpus (testdata/target_conformance.tsv)
// through the matcher jobd uses for expected sets and the minion uses to
// decide whether to run. The C++ minion's decode path runs the same corpus
// in minion/target_conformance_test, the Python minion in
// tests/python_minion.

#include <string>
#include <vector>

#include "common/target/conformance_corpus.h"
#include "common/target/target.h"
#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(TargetConformanceTest, CorpusIsLargeAndCoversEveryType) {
  absl::StatusOr<std::vector<ConformanceCase>> cases = LoadConformanceCorpus();
  ASSERT_TRUE(cases.ok()) << cases.status();
  EXPECT_GE(cases->size(), 120u);
  for (absl::string_view type :
       {"GLOB", "LIST", "PCRE", "GRAIN", "COMPOUND", "TARGET_TYPE_UNSPECIFIED"}) {
    int count = 0;
    for (const ConformanceCase& c : *cases) count += c.type == type;
    EXPECT_GT(count, 0) << type;
  }
}

TEST(TargetConformanceTest, EveryCaseAgrees) {
  absl::StatusOr<std::vector<ConformanceCase>> cases = LoadConformanceCorpus();
  ASSERT_TRUE(cases.ok()) << cases.status();
  for (const ConformanceCase& c : *cases) {
    const TargetKind kind = *TargetKindFromTypeName(c.type);
    absl::StatusOr<Target> target = Target::Parse(kind, c.expression);
    switch (c.expect) {
      case ConformanceExpect::kError:
        EXPECT_FALSE(target.ok())
            << c.Describe() << " parsed as " << target->DebugString();
        if (!target.ok()) {
          EXPECT_EQ(target.status().code(), absl::StatusCode::kInvalidArgument)
              << c.Describe();
        }
        break;
      case ConformanceExpect::kMatch:
      case ConformanceExpect::kNoMatch:
        if (!target.ok()) {
          ADD_FAILURE() << c.Describe() << ": " << target.status();
          break;
        }
        EXPECT_EQ(target->Matches(c.minion_id, c.grains),
                  c.expect == ConformanceExpect::kMatch)
            << c.Describe() << " on id '" << c.minion_id << "' ("
            << target->DebugString() << ")";
        break;
    }
  }
}

TEST(TargetConformanceTest, ParserRejectsMalformedLines) {
  EXPECT_FALSE(ParseConformanceCorpus("GLOB\ta\tb\t-\n").ok());
  EXPECT_FALSE(ParseConformanceCorpus("NOPE\ta\tb\t-\tmatch\n").ok());
  EXPECT_FALSE(ParseConformanceCorpus("GLOB\ta\tb\t-\tmaybe\n").ok());
  EXPECT_FALSE(ParseConformanceCorpus("GLOB\ta\tb\tkey\tmatch\n").ok());
  absl::StatusOr<std::vector<ConformanceCase>> cases = ParseConformanceCorpus(
      "# comment\n\nGRAIN\ta<x3A><x20>\tid<x09>\tk=<xC3><xA9>;e=\terror\tn\n");
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_EQ(cases->size(), 1u);
  EXPECT_EQ((*cases)[0].line, 3);
  EXPECT_EQ((*cases)[0].expression, "a: ");
  EXPECT_EQ((*cases)[0].minion_id, "id\t");
  EXPECT_EQ((*cases)[0].grains.at("k"), "\xC3\xA9");
  EXPECT_EQ((*cases)[0].grains.at("e"), "");
  EXPECT_EQ((*cases)[0].expect, ConformanceExpect::kError);
  EXPECT_EQ((*cases)[0].note, "n");
}

}  // namespace
}  // namespace muster
