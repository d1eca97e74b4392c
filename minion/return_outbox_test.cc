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
  EXPECT_EQ(outbox.Acknowledge(AckOf(ret), kStart), 1u);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_FALSE(outbox.NextDue().has_value());
  EXPECT_EQ(Take(outbox, kStart + absl::Hours(1)), 0u);
}

TEST(ReturnOutboxTest, AckOfUnknownOrOtherAttemptIsIgnored) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1", 1), kStart);
  EXPECT_EQ(outbox.Acknowledge(AckOf(MakeReturn("j1", "m1", 2)), kStart), 0u);
  EXPECT_EQ(outbox.Acknowledge(AckOf(MakeReturn("j2", "m1", 1)), kStart), 0u);
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
  EXPECT_EQ(outbox.Acknowledge(answer, kStart), 1u);
  EXPECT_EQ(outbox.DropRejected(answer, kStart), 1u);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_EQ(Take(outbox, kStart + absl::Hours(1)), 0u);
  EXPECT_EQ(outbox.DropRejected(answer, kStart), 0u);  // already gone: ignored
}

TEST(ReturnOutboxTest, RemoveForgetsOnlyTheNamedReturns) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  outbox.Add(MakeReturn("j2", "m1"), kStart);
  EXPECT_EQ(outbox.Remove(AckOf(MakeReturn("j1", "m1")).keys(), kStart), 1u);
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
  EXPECT_EQ(outbox.Acknowledge(ack, kStart, &removed), 2u);
  EXPECT_EQ(removed, (std::vector<int>{1, 2}));
  removed.clear();
  EXPECT_EQ(outbox.Acknowledge(ack, kStart, &removed), 0u);  // a repeated ACK
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
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 1000});
  for (int i = 0; i < 1000; ++i) {
    outbox.Add(MakeReturn("j" + std::to_string(i), "m"), kStart + absl::Milliseconds(i));
  }
  ReturnBatch batch;
  EXPECT_EQ(outbox.TakeDue(kStart + absl::Milliseconds(499), 10000, 1 << 30, &batch), 500u);
  EXPECT_EQ(batch.returns(0).jid(), "j0");
  EXPECT_EQ(batch.returns(499).jid(), "j499");
}

TEST(ReturnOutboxTest, WindowHoldsBackFirstSendsUntilAcksFreeIt) {
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 3});
  std::vector<Return> returns;
  for (int i = 0; i < 5; ++i) {
    returns.push_back(MakeReturn("j" + std::to_string(i), "m"));
    outbox.Add(returns.back(), kStart);
  }
  ReturnBatch batch;
  EXPECT_EQ(outbox.TakeDue(kStart, 100, 1 << 20, &batch), 3u);
  EXPECT_EQ(outbox.in_flight(), 3u);
  EXPECT_EQ(batch.returns(2).jid(), "j2");
  // Nothing more until an ACK or a resend falls due.
  EXPECT_EQ(outbox.NextDue(), kStart + absl::Seconds(2));
  EXPECT_EQ(Take(outbox, kStart + absl::Seconds(1)), 0u);
  // An ACK frees one slot: the oldest waiting return goes, at once.
  absl::Time ack_at = kStart + absl::Milliseconds(100);
  EXPECT_EQ(outbox.Acknowledge(AckOf(returns[1]), ack_at), 1u);
  EXPECT_EQ(outbox.NextDue(), kStart);
  batch.Clear();
  EXPECT_EQ(outbox.TakeDue(ack_at, 100, 1 << 20, &batch), 1u);
  EXPECT_EQ(batch.returns(0).jid(), "j3");
  EXPECT_EQ(outbox.in_flight(), 3u);
  // Resends of returns in flight do not need room: j0 and j2 come back
  // after the RTO, j4 still waits.
  batch.Clear();
  EXPECT_EQ(outbox.TakeDue(kStart + absl::Seconds(2), 100, 1 << 20, &batch), 2u);
  EXPECT_EQ(batch.returns(0).jid(), "j0");
  EXPECT_EQ(batch.returns(1).jid(), "j2");
  EXPECT_EQ(outbox.resends(), 2u);
  EXPECT_EQ(outbox.size(), 4u);
}

TEST(ReturnOutboxTest, ResendTimeoutFollowsTheMeasuredRoundTrip) {
  ReturnOutbox outbox;
  EXPECT_EQ(outbox.rto(), absl::Seconds(2));
  // Round trips of 3 s (a relay with a backlog): the RTO grows past them,
  // so nothing is resent while the relay works through its queue.
  absl::Time now = kStart;
  for (int i = 0; i < 20; ++i) {
    Return ret = MakeReturn("j" + std::to_string(i), "m");
    outbox.Add(ret, now);
    ASSERT_EQ(Take(outbox, now), 1u);
    now += absl::Seconds(3);
    ASSERT_EQ(outbox.Acknowledge(AckOf(ret), now), 1u);
  }
  EXPECT_EQ(outbox.resends(), 0u) << "no resend before the first ACK came back";
  EXPECT_GT(outbox.rto(), absl::Seconds(3));
  EXPECT_LE(outbox.rto(), absl::Seconds(30));
  Return late = MakeReturn("late", "m");
  outbox.Add(late, now);
  ASSERT_EQ(Take(outbox, now), 1u);
  EXPECT_EQ(Take(outbox, now + absl::Seconds(3)), 0u);
  // Fast round trips bring it back down, never below the first interval.
  for (int i = 0; i < 50; ++i) {
    Return ret = MakeReturn("f" + std::to_string(i), "m");
    outbox.Add(ret, now);
    Take(outbox, now);
    now += absl::Milliseconds(5);
    outbox.Acknowledge(AckOf(ret), now);
  }
  EXPECT_EQ(outbox.rto(), absl::Seconds(2));
}

TEST(ReturnOutboxTest, ResentReturnsGiveNoRoundTripSample) {
  ReturnOutbox outbox;
  Return ret = MakeReturn("j1", "m1");
  outbox.Add(ret, kStart);
  Take(outbox, kStart);
  ASSERT_EQ(Take(outbox, kStart + absl::Seconds(2)), 1u);  // resent
  // The timeout fired: the RTO backs off. Its ACK may answer either send
  // (Karn): no sample, the backed-off RTO stays.
  EXPECT_EQ(outbox.rto(), absl::Seconds(4));
  outbox.Acknowledge(AckOf(ret), kStart + absl::Seconds(20));
  EXPECT_EQ(outbox.rto(), absl::Seconds(4));
  EXPECT_EQ(outbox.in_flight(), 0u);
}

TEST(ReturnOutboxTest, ReconnectResendsOnlyWhatIsInFlight) {
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 2});
  for (int i = 0; i < 4; ++i) outbox.Add(MakeReturn("j" + std::to_string(i), "m"), kStart);
  ASSERT_EQ(Take(outbox, kStart), 2u);
  absl::Time reconnect = kStart + absl::Milliseconds(500);
  outbox.ResendAllNow(reconnect);
  ReturnBatch batch;
  EXPECT_EQ(outbox.TakeDue(reconnect, 100, 1 << 20, &batch), 2u);
  EXPECT_EQ(batch.returns(0).jid(), "j0");
  EXPECT_EQ(batch.returns(1).jid(), "j1");
  EXPECT_EQ(outbox.in_flight(), 2u);
}

TEST(ReturnOutboxTest, ReturnsHeldBackByTheWindowAreTakenOnceForReceipts) {
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 2});
  for (int i = 0; i < 5; ++i) outbox.Add(MakeReturn("j" + std::to_string(i), "m"), kStart);
  ASSERT_EQ(Take(outbox, kStart), 2u);  // j0, j1 leave; j2..j4 wait
  const absl::Duration grace = absl::Milliseconds(500);
  EXPECT_EQ(outbox.NextHeldBack(grace), kStart + grace);
  EXPECT_TRUE(outbox.TakeHeldBack(kStart + absl::Milliseconds(499), grace, 100).empty());
  std::vector<const Return*> held = outbox.TakeHeldBack(kStart + grace, grace, 2);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0]->jid(), "j2");
  EXPECT_EQ(held[1]->jid(), "j3");
  held = outbox.TakeHeldBack(kStart + grace, grace, 100);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0]->jid(), "j4");
  EXPECT_TRUE(outbox.TakeHeldBack(kStart + absl::Seconds(9), grace, 100).empty());
  EXPECT_EQ(outbox.NextHeldBack(grace), std::nullopt);
  EXPECT_EQ(outbox.size(), 5u);  // still to be sent
}

TEST(ReturnOutboxTest, AReturnSentInTimeNeedsNoReceipt) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m"), kStart);
  ASSERT_EQ(Take(outbox, kStart), 1u);
  EXPECT_EQ(outbox.NextHeldBack(absl::Milliseconds(500)), std::nullopt);
  EXPECT_TRUE(outbox.TakeHeldBack(kStart + absl::Seconds(5), absl::Milliseconds(500), 10).empty());
}

TEST(ReturnOutboxTest, AMinionThatNeverReceiptsKeepsNoRecordOfSentReturns) {
  // The reference minion never calls TakeHeldBack: what it sent and had
  // acknowledged must not pile up for it.
  ReturnOutbox outbox;
  for (int i = 0; i < 1000; ++i) {
    Return ret = MakeReturn("j" + std::to_string(i), "m");
    outbox.Add(ret, kStart);
    ASSERT_EQ(Take(outbox, kStart), 1u);
    outbox.Acknowledge(AckOf(ret), kStart);
    EXPECT_LE(outbox.held_back_records(), 1u) << "after return " << i;
  }
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_EQ(outbox.NextHeldBack(absl::Milliseconds(500)), std::nullopt);
  EXPECT_EQ(outbox.NextDue(), std::nullopt);
}

}  // namespace
}  // namespace muster::minion
