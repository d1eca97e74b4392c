#include "relay/relay_state.h"

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::relay {
namespace {

TEST(RelayStateTest, CursorDispatchesAndOutboxSurviveReopen) {
  std::string path = absl::StrCat(testing::MakeTempDir("state"), "/state.db");
  {
    auto state = RelayState::Open(path);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ((*state)->cursor(), "0-0");
    HandledDispatch dispatch{"100", 1, 5000};
    ASSERT_TRUE((*state)->Commit("7-1", &dispatch, "event-1").ok());
    ASSERT_TRUE((*state)->Commit("7-2", nullptr, "").ok());
    EXPECT_EQ((*state)->cursor(), "7-2");
  }
  auto state = RelayState::Open(path);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ((*state)->cursor(), "7-2");
  EXPECT_TRUE(*(*state)->WasHandled("100", 1));
  EXPECT_FALSE(*(*state)->WasHandled("100", 2));
  auto events = (*state)->PendingEvents(10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].event, "event-1");
  ASSERT_TRUE((*state)->DeleteEventsThrough((*events)[0].seq).ok());
  EXPECT_TRUE((*state)->PendingEvents(10)->empty());
}

// A relay killed between publishing a dispatch and committing it leaves a
// publish mark that a new process finds; committing the dispatch clears it.
TEST(RelayStateTest, PublishMarkSurvivesReopenUntilTheDispatchIsCommitted) {
  std::string path = absl::StrCat(testing::MakeTempDir("state"), "/state.db");
  {
    auto state = RelayState::Open(path);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_FALSE(*(*state)->WasPublishing("200", 1));
    ASSERT_TRUE((*state)->MarkPublishing("200", 1, 5000).ok());
    ASSERT_TRUE((*state)->MarkPublishing("201", 1, 5000).ok());
    HandledDispatch committed{"201", 1, 5000, "envelope"};
    ASSERT_TRUE((*state)->Commit("8-1", &committed, "").ok());
  }  // "killed" before 200 attempt 1 was committed
  auto state = RelayState::Open(path);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(*(*state)->WasPublishing("200", 1));
  EXPECT_FALSE(*(*state)->WasPublishing("200", 2));
  EXPECT_FALSE(*(*state)->WasPublishing("201", 1));
  HandledDispatch reread{"200", 1, 5000, ""};
  ASSERT_TRUE((*state)->Commit("8-2", &reread, "").ok());
  EXPECT_FALSE(*(*state)->WasPublishing("200", 1));
}

TEST(RelayStateTest, DispatchesArePrunedAfterTheirDeadline) {
  auto state = RelayState::Open(absl::StrCat(testing::MakeTempDir("state"), "/state.db"));
  ASSERT_TRUE(state.ok());
  HandledDispatch early{"1", 1, 1000};
  HandledDispatch late{"2", 1, 3000};
  ASSERT_TRUE((*state)->Commit("1-0", &early, "").ok());
  ASSERT_TRUE((*state)->Commit("2-0", &late, "").ok());
  auto pruned = (*state)->PruneDispatches(2000);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 1);
  EXPECT_FALSE(*(*state)->WasHandled("1", 1));
  EXPECT_TRUE(*(*state)->WasHandled("2", 1));
}

}  // namespace
}  // namespace muster::relay
