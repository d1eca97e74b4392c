#include "common/status/status_macros.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace muster {
namespace {

absl::Status FailIf(bool fail, int* calls) {
  ++*calls;
  return fail ? absl::InvalidArgumentError("step failed") : absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<std::string>> Make(bool fail, int* calls) {
  ++*calls;
  if (fail) return absl::NotFoundError("nothing to make");
  return std::make_unique<std::string>("made");
}

absl::Status TwoSteps(bool first_fails, bool second_fails, int* calls) {
  RETURN_IF_ERROR(FailIf(first_fails, calls));
  RETURN_IF_ERROR(FailIf(second_fails, calls));
  return absl::OkStatus();
}

absl::StatusOr<std::string> MakeTwice(bool first_fails, bool second_fails, int* calls) {
  ASSIGN_OR_RETURN(std::unique_ptr<std::string> first, Make(first_fails, calls));
  ASSIGN_OR_RETURN(auto second, Make(second_fails, calls));  // two on one scope
  return *first + "+" + *second;
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstFailure) {
  int calls = 0;
  EXPECT_TRUE(TwoSteps(false, false, &calls).ok());
  EXPECT_EQ(calls, 2);
  calls = 0;
  absl::Status status = TwoSteps(true, false, &calls);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "step failed");
  EXPECT_EQ(calls, 1);
}

TEST(StatusMacrosTest, AssignOrReturnMovesTheValueOrReturnsTheStatus) {
  int calls = 0;
  absl::StatusOr<std::string> made = MakeTwice(false, false, &calls);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(*made, "made+made");
  EXPECT_EQ(calls, 2);
  calls = 0;
  made = MakeTwice(false, true, &calls);
  EXPECT_EQ(made.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(calls, 2);
  calls = 0;
  made = MakeTwice(true, false, &calls);
  EXPECT_EQ(made.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace muster
