#include "minion/return_outbox.h"

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

using wire::v1::Return;
using wire::v1::ReturnAck;
using wire::v1::ReturnBatch;

Return MakeReturn(const std::string& jid, const std::string& minion, uint32_t attempt = 1) {
  Return ret;
  ret.set_jid(jid);
  ret.set_attempt(attempt);
  ret.set_minion_id(minion);
  ret.set_success(true);
  return ret;
}

ReturnAck AckOf(const Return& ret) {
  ReturnAck ack;
  auto* key = ack.add_keys();
  key->set_jid(ret.jid());
  key->set_attempt(ret.attempt());
  key->set_minion_id(ret.minion_id());
  return ack;
}

size_t Take(ReturnOutbox& outbox, absl::Time now) {
  ReturnBatch batch;
  return outbox.TakeDue(now, 1000, 1 << 20, &batch);
}

const absl::Time kStart = absl::FromUnixSeconds(1000000);

TEST(ReturnOutboxTest, NewReturnIsDueAtOnce) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  EXPECT_EQ(outbox.NextDue(), kStart);
  ReturnBatch batch;
  EXPECT_EQ(outbox.TakeDue(kStart, 10, 1 << 20, &batch), 1u);
  EXPECT_EQ(batch.returns(0).jid(), "j1");
  EXPECT_EQ(outbox.size(), 1u);  // Kept until acknowledged.
}

TEST(ReturnOutboxTest, ResendsAfterTwoSecondsThenDoublingUpToThirty) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  absl::Time now = kStart;
  ASSERT_EQ(Take(outbox, now), 1u);
  std::vector<int64_t> gaps;
  for (int i = 0; i < 7; ++i) {
    absl::Time due = *outbox.NextDue();
    EXPECT_EQ(Take(outbox, due - absl::Milliseconds(1)), 0u);
    ASSERT_EQ(Take(outbox, due), 1u);
    gaps.push_back(absl::ToInt64Seconds(due - now));
    now = due;
  }
  EXPECT_EQ(gaps, (std::vector<int64_t>{2, 4, 8, 16, 30, 30, 30}));
  EXPECT_EQ(outbox.resends(), 7u);
}

TEST(ReturnOutboxTest, AckStopsResends) {
  ReturnOutbox outbox;
  Return ret = MakeReturn("j1", "m1");
  outbox.Add(ret, kStart);
  ASSERT_EQ(Take(outbox, kStart), 1u);
  EXPECT_EQ(outbox.Acknowledge(AckOf(ret)), 1u);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_FALSE(outbox.NextDue().has_value());
  EXPECT_EQ(Take(outbox, kStart + absl::Hours(1)), 0u);
}

TEST(ReturnOutboxTest, AckOfUnknownOrOtherAttemptIsIgnored) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1", 1), kStart);
  EXPECT_EQ(outbox.Acknowledge(AckOf(MakeReturn("j1", "m1", 2))), 0u);
  EXPECT_EQ(outbox.Acknowledge(AckOf(MakeReturn("j2", "m1", 1))), 0u);
  EXPECT_EQ(outbox.size(), 1u);
}

TEST(ReturnOutboxTest, RejectedReturnsAreDroppedAndNeverResent) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  outbox.Add(MakeReturn("j2", "m1"), kStart);
  ASSERT_EQ(Take(outbox, kStart), 2u);
  wire::v1::ReturnAck answer = AckOf(MakeReturn("j1", "m1"));
  wire::v1::ReturnRejection* rejection = answer.add_rejected();
  rejection->mutable_key()->set_jid("j2");
  rejection->mutable_key()->set_attempt(1);
  rejection->mutable_key()->set_minion_id("m1");
  rejection->set_reason("output_too_large");
  EXPECT_EQ(outbox.Acknowledge(answer), 1u);
  EXPECT_EQ(outbox.DropRejected(answer), 1u);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_EQ(Take(outbox, kStart + absl::Hours(1)), 0u);
  EXPECT_EQ(outbox.DropRejected(answer), 0u);  // already gone: ignored
}

TEST(ReturnOutboxTest, RemoveForgetsOnlyTheNamedReturns) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  outbox.Add(MakeReturn("j2", "m1"), kStart);
  EXPECT_EQ(outbox.Remove(AckOf(MakeReturn("j1", "m1")).keys()), 1u);
  EXPECT_EQ(outbox.size(), 1u);
  wire::v1::ReturnBatch batch;
  ASSERT_EQ(outbox.TakeDue(kStart, 10, 1 << 20, &batch), 1u);
  EXPECT_EQ(batch.returns(0).jid(), "j2");
}

TEST(ReturnOutboxTest, RemoveReportsWhichKeysItRemovedOnlyOnce) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  outbox.Add(MakeReturn("j2", "m1"), kStart);
  wire::v1::ReturnAck ack = AckOf(MakeReturn("j9", "m1"));
  *ack.add_keys() = AckOf(MakeReturn("j2", "m1")).keys(0);
  *ack.add_keys() = AckOf(MakeReturn("j1", "m1")).keys(0);
  *ack.add_keys() = AckOf(MakeReturn("j2", "m1")).keys(0);  // acked twice in one ACK
  std::vector<int> removed;
  EXPECT_EQ(outbox.Acknowledge(ack, &removed), 2u);
  EXPECT_EQ(removed, (std::vector<int>{1, 2}));
  removed.clear();
  EXPECT_EQ(outbox.Acknowledge(ack, &removed), 0u);  // a repeated ACK
  EXPECT_TRUE(removed.empty());
}

TEST(ReturnOutboxTest, DuplicateAddIsIgnored) {
  ReturnOutbox outbox;
  EXPECT_TRUE(outbox.Add(MakeReturn("j1", "m1"), kStart));
  EXPECT_FALSE(outbox.Add(MakeReturn("j1", "m1"), kStart));
  EXPECT_TRUE(outbox.Add(MakeReturn("j1", "m2"), kStart));
  EXPECT_EQ(outbox.size(), 2u);
}

TEST(ReturnOutboxTest, TakeDueRespectsCountAndByteLimits) {
  ReturnOutbox outbox;
  for (int i = 0; i < 10; ++i) {
    Return ret = MakeReturn("j1", "m" + std::to_string(i));
    ret.set_stdout(std::string(1000, 'x'));
    outbox.Add(ret, kStart);
  }
  ReturnBatch batch;
  EXPECT_EQ(outbox.TakeDue(kStart, 3, 1 << 20, &batch), 3u);
  batch.Clear();
  EXPECT_EQ(outbox.TakeDue(kStart, 100, 2500, &batch), 2u);
  batch.Clear();
  // One oversized return still goes out alone.
  EXPECT_EQ(outbox.TakeDue(kStart, 100, 10, &batch), 1u);
  batch.Clear();
  EXPECT_EQ(outbox.TakeDue(kStart, 100, 1 << 20, &batch), 4u);
}

TEST(ReturnOutboxTest, ResendAllNowMakesEverythingDueAndResetsBackoff) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  absl::Time now = kStart;
  for (int i = 0; i < 5; ++i) {
    Take(outbox, now);
    now = *outbox.NextDue();
  }
  absl::Time reconnect = now - absl::Seconds(10);
  outbox.ResendAllNow(reconnect);
  EXPECT_EQ(outbox.NextDue(), reconnect);
  ASSERT_EQ(Take(outbox, reconnect), 1u);
  EXPECT_EQ(outbox.NextDue(), reconnect + absl::Seconds(2));
  EXPECT_EQ(Take(outbox, reconnect + absl::Seconds(1)), 0u);
  // The old schedule item is stale: one send at the new due time only.
  EXPECT_EQ(Take(outbox, now), 1u);
  EXPECT_EQ(Take(outbox, now), 0u);
}

TEST(ReturnOutboxTest, ManyReturnsComeOutInDueOrder) {
  ReturnOutbox outbox;
  for (int i = 0; i < 1000; ++i) {
    outbox.Add(MakeReturn("j" + std::to_string(i), "m"), kStart + absl::Milliseconds(i));
  }
  ReturnBatch batch;
  EXPECT_EQ(outbox.TakeDue(kStart + absl::Milliseconds(499), 10000, 1 << 30, &batch), 500u);
  EXPECT_EQ(batch.returns(0).jid(), "j0");
  EXPECT_EQ(batch.returns(499).jid(), "j499");
}

}  // namespace
}  // namespace muster::minion
