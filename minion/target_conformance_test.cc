// Runs the target conformance corpus (common/target/testdata) through the
// minion's own path: a JobEnvelope as the relay publishes it, decoded by
// DecodeJobMessage (which maps the TargetType and parses the target, and
// drops the job when it does not parse), then matched as MinionAgent and
// FleetShard do.

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/target/conformance_corpus.h"
#include "gtest/gtest.h"
#include "minion/bus_messages.h"

namespace muster::minion {
namespace {

std::string EncodeJob(v1::TargetType type, const std::string& expression) {
  wire::v1::JobEnvelope job;
  job.set_jid("20260101000000000001");
  job.set_attempt(1);
  job.mutable_target()->set_type(type);
  job.mutable_target()->set_expression(expression);
  job.set_function("test.ping");
  job.set_deadline_ms(5000);
  return job.SerializeAsString();
}

TEST(MinionTargetConformanceTest, EveryCaseAgreesThroughTheDecodePath) {
  absl::StatusOr<std::vector<ConformanceCase>> cases = LoadConformanceCorpus();
  ASSERT_TRUE(cases.ok()) << cases.status();
  ASSERT_GE(cases->size(), 120u);
  for (const ConformanceCase& c : *cases) {
    v1::TargetType type;
    ASSERT_TRUE(v1::TargetType_Parse(c.type, &type)) << c.Describe();
    const std::string payload = EncodeJob(type, c.expression);
    absl::StatusOr<BusJob> job = DecodeJobMessage({"*", payload});
    if (c.expect == ConformanceExpect::kError) {
      EXPECT_FALSE(job.ok()) << c.Describe() << " was accepted";
      if (!job.ok()) {
        EXPECT_TRUE(absl::StartsWith(job.status().message(), "target: "))
            << c.Describe() << ": " << job.status();
      }
      continue;
    }
    if (!job.ok()) {
      ADD_FAILURE() << c.Describe() << ": " << job.status();
      continue;
    }
    EXPECT_EQ(job->target.Matches(c.minion_id, c.grains),
              c.expect == ConformanceExpect::kMatch)
        << c.Describe() << " on id '" << c.minion_id << "'";
  }
}

}  // namespace
}  // namespace muster::minion
