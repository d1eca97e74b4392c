#include "server/job_types.h"

#include <string>

#include "gtest/gtest.h"
#include "server/job_types_proto.h"

namespace muster::server {
namespace {

TEST(JobTypesTest, StatesAreActiveOrFinalAndNamedAsTheApiNamesThem) {
  EXPECT_TRUE(IsActive(JobState::kPending));
  EXPECT_TRUE(IsActive(JobState::kRunning));
  EXPECT_FALSE(IsActive(JobState::kComplete));
  EXPECT_TRUE(IsFinal(JobState::kIncomplete));
  EXPECT_TRUE(IsFinal(JobState::kCancelled));
  EXPECT_FALSE(IsFinal(JobState::kUnspecified));
  for (int n = 1; n < kJobStateCount; ++n) {
    JobState state = static_cast<JobState>(n);
    EXPECT_EQ(JobStateName(state), muster::v1::JobState_Name(JobStateToProto(state)));
    // The stored number is the API's number.
    EXPECT_EQ(static_cast<int>(JobStateToProto(state)), n);
    EXPECT_EQ(JobStateFromProto(n), state);
  }
  EXPECT_FALSE(JobStateFromProto(muster::v1::JOB_STATE_UNSPECIFIED).has_value());
  EXPECT_FALSE(JobStateFromProto(99).has_value());
}

TEST(JobTypesTest, TargetTypesRoundTripAndUnspecifiedReadsAsGlob) {
  for (int n = 1; n <= 5; ++n) {
    std::optional<TargetType> type = TargetTypeFromProto(n);
    ASSERT_TRUE(type.has_value()) << n;
    EXPECT_EQ(static_cast<int>(*type), n);
    EXPECT_EQ(static_cast<int>(TargetTypeToProto(*type)), n);
  }
  EXPECT_EQ(TargetTypeFromProto(muster::v1::TARGET_TYPE_UNSPECIFIED), TargetType::kGlob);
  EXPECT_FALSE(TargetTypeFromProto(42).has_value());
}

TEST(JobTypesTest, JidsAreTwentyDigitsAndLongValuesAreCutInMessages) {
  EXPECT_TRUE(IsJid("20261206010203000001"));
  EXPECT_FALSE(IsJid("2026120601020300000"));
  EXPECT_FALSE(IsJid("2026120601020300000x"));
  EXPECT_EQ(QuoteValue("abc"), "'abc'");
  EXPECT_EQ(QuoteValue(std::string(100, 'a')), "'" + std::string(80, 'a') + "...'");
}

}  // namespace
}  // namespace muster::server
