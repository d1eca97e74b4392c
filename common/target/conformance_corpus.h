// The target conformance corpus (testdata/target_conformance.tsv): the
// cases every implementation of the target grammar of docs/PROTOCOL.md must
// agree on. This reads the file for tests; its format is described at the
// top of the file itself.
//
//   absl::StatusOr<std::vector<ConformanceCase>> cases =
//       LoadConformanceCorpus();
//   for (const ConformanceCase& c : *cases) { ... c.expect ... }

#ifndef MUSTER_COMMON_TARGET_CONFORMANCE_CORPUS_H_
#define MUSTER_COMMON_TARGET_CONFORMANCE_CORPUS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/target/target.h"

namespace muster {

// Workspace-relative path of the corpus (a data dependency of the tests
// that read it: //common/target:conformance_corpus_data).
inline constexpr absl::string_view kConformanceCorpusPath =
    "common/target/testdata/target_conformance.tsv";

enum class ConformanceExpect { kMatch, kNoMatch, kError };

struct ConformanceCase {
  int line = 0;          // 1-based line in the file.
  std::string type;      // A muster.v1.TargetType name, e.g. "GLOB".
  std::string expression;
  std::string minion_id;
  Grains grains;
  ConformanceExpect expect = ConformanceExpect::kMatch;
  std::string note;

  // "line 42: COMPOUND 'a b'" for failure messages.
  std::string Describe() const;
};

// Parses the corpus text. InvalidArgument names the first bad line.
absl::StatusOr<std::vector<ConformanceCase>> ParseConformanceCorpus(
    absl::string_view text);

// Reads and parses the corpus from the test's runfiles.
absl::StatusOr<std::vector<ConformanceCase>> LoadConformanceCorpus();

// The matcher kind for a TargetType name (TARGET_TYPE_UNSPECIFIED is glob);
// InvalidArgument for any other name.
absl::StatusOr<TargetKind> TargetKindFromTypeName(absl::string_view type);

}  // namespace muster

#endif  // MUSTER_COMMON_TARGET_CONFORMANCE_CORPUS_H_
