#include "server/writer_gate.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/sqlite/sqlite.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::server {
namespace {

// Records the order in which writers got the gate.
class Order {
 public:
  void Add(const std::string& who) {
    absl::MutexLock lock(&mu_);
    order_.push_back(who);
  }
  std::vector<std::string> Get() {
    absl::MutexLock lock(&mu_);
    return order_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
};

// A thread that takes the gate, records itself and lets go.
std::thread Writer(WriterGate& gate, WriteKind kind, std::string name, Order& order) {
  return std::thread([&gate, kind, name, &order] {
    WriterToken token(&gate, kind);
    order.Add(name);
  });
}

bool WaitUntilWaiting(WriterGate& gate, int control, int bulk) {
  return testing::WaitFor(
      [&] {
        WriterGate::Waiting waiting = gate.waiting();
        return waiting.control == control && waiting.bulk == bulk;
      },
      absl::Seconds(5));
}

// The tests below hold the gate with Acquire/Release and only EXPECT while
// they hold it, so that no failed assertion returns with the gate held.

// Holds the gate while a bulk write and then a control write queue behind
// it, lets go, and returns the order in which they got it.
std::vector<std::string> OrderOfABulkThenAControlWrite(WriterGate& gate) {
  Order order;
  gate.Acquire(WriteKind::kControl);
  std::thread bulk = Writer(gate, WriteKind::kBulk, "bulk", order);
  EXPECT_TRUE(WaitUntilWaiting(gate, 0, 1));
  std::thread control = Writer(gate, WriteKind::kControl, "control", order);
  EXPECT_TRUE(WaitUntilWaiting(gate, 1, 1));
  gate.Release();
  bulk.join();
  control.join();
  return order.Get();
}

TEST(WriterGateTest, AWaitingControlWriteGoesBeforeAWaitingBulkWrite) {
  WriterGate gate;
  // The bulk write queues first; the control write still goes first.
  EXPECT_EQ(OrderOfABulkThenAControlWrite(gate), (std::vector<std::string>{"control", "bulk"}));
  EXPECT_EQ(gate.waiting().control, 0);
  EXPECT_EQ(gate.waiting().bulk, 0);
}

TEST(WriterGateTest, ABulkHolderSeesAWaitingControlWriteUntilItIsGranted) {
  WriterGate gate;
  absl::Notification granted;
  gate.Acquire(WriteKind::kBulk);
  EXPECT_FALSE(gate.ControlWaiting());  // nobody waits: no reason to yield
  std::thread control([&] {
    WriterToken token(&gate, WriteKind::kControl);
    granted.Notify();
  });
  EXPECT_TRUE(testing::WaitFor([&] { return gate.ControlWaiting(); }, absl::Seconds(5)));
  EXPECT_FALSE(granted.HasBeenNotified());  // the holder still holds it
  gate.Release();
  control.join();
  EXPECT_TRUE(granted.HasBeenNotified());
  EXPECT_FALSE(gate.ControlWaiting());
}

TEST(WriterGateTest, ABulkWriteGoesAfterAtMostFourControlWritesInARow) {
  WriterGate gate;
  Order order;
  gate.Acquire(WriteKind::kControl);
  std::thread bulk = Writer(gate, WriteKind::kBulk, "bulk", order);
  EXPECT_TRUE(WaitUntilWaiting(gate, 0, 1));
  constexpr int kControls = WriterGate::kMaxControlStreak + 1;
  std::vector<std::thread> controls;
  for (int i = 0; i < kControls; ++i) {
    controls.push_back(Writer(gate, WriteKind::kControl, "control", order));
  }
  EXPECT_TRUE(WaitUntilWaiting(gate, kControls, 1));
  gate.Release();
  bulk.join();
  for (std::thread& control : controls) control.join();
  std::vector<std::string> expected(WriterGate::kMaxControlStreak, "control");
  expected.push_back("bulk");
  expected.push_back("control");
  EXPECT_EQ(order.Get(), expected);
}

TEST(WriterGateTest, ControlWritesWithNoBulkWaitingDoNotCountTowardsTheStreak) {
  // Many control writes while no bulk write waited: a control write that
  // then waits beside a bulk write still goes first.
  WriterGate gate;
  for (int i = 0; i < 3 * WriterGate::kMaxControlStreak; ++i) {
    WriterToken token(&gate, WriteKind::kControl);
  }
  EXPECT_EQ(OrderOfABulkThenAControlWrite(gate), (std::vector<std::string>{"control", "bulk"}));
}

// The gate is what keeps jobd's writers from meeting inside SQLite: writers
// on their own connections with no busy timeout at all never see
// SQLITE_BUSY, and every transaction lands.
TEST(WriterGateTest, WritersThroughTheGateNeverMeetInsideSqlite) {
  const std::string path = testing::MakeTempDir("writer_gate") + "/gate.db";
  {
    absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("CREATE TABLE rows(writer INTEGER, n INTEGER)").ok());
  }
  WriterGate gate;
  constexpr int kWriters = 4;
  constexpr int kTransactions = 50;
  std::vector<absl::Status> results(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
      if (!db.ok()) {
        results[w] = db.status();
        return;
      }
      (*db)->SetBusyTimeout(absl::ZeroDuration());
      WriteKind kind = w % 2 == 0 ? WriteKind::kControl : WriteKind::kBulk;
      for (int t = 0; t < kTransactions && results[w].ok(); ++t) {
        WriterToken token(&gate, kind);
        results[w] = (*db)->Exec(absl::StrCat("BEGIN IMMEDIATE; INSERT INTO rows VALUES(", w,
                                              ", ", t, "); COMMIT;"));
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM rows"), kWriters * kTransactions);
}

}  // namespace
}  // namespace muster::server
