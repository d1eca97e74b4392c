#include "minion/return_outbox.h"

#include <algorithm>
#include <random>
#include <string>

#include "absl/container/flat_hash_map.h"
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

// TakeDue, with the returns taken appended to `batch` (their encoding
// parses as a ReturnBatch).
size_t TakeInto(ReturnOutbox& outbox, absl::Time now, size_t max_returns, size_t max_bytes,
                ReturnBatch* batch) {
  std::string payload;
  size_t taken = outbox.TakeDue(now, max_returns, max_bytes, &payload);
  ReturnBatch parsed;
  EXPECT_TRUE(parsed.ParseFromString(payload));
  EXPECT_EQ(parsed.returns_size(), static_cast<int>(taken));
  batch->MergeFrom(parsed);
  return taken;
}

size_t Take(ReturnOutbox& outbox, absl::Time now) {
  ReturnBatch batch;
  return TakeInto(outbox, now, 1000, 1 << 20, &batch);
}

const absl::Time kStart = absl::FromUnixSeconds(1000000);

TEST(ReturnOutboxTest, NewReturnIsDueAtOnce) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("j1", "m1"), kStart);
  EXPECT_EQ(outbox.NextDue(), kStart);
  ReturnBatch batch;
  EXPECT_EQ(TakeInto(outbox, kStart, 10, 1 << 20, &batch), 1u);
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
  ASSERT_EQ(TakeInto(outbox, kStart, 10, 1 << 20, &batch), 1u);
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
  EXPECT_EQ(TakeInto(outbox, kStart, 3, 1 << 20, &batch), 3u);
  batch.Clear();
  EXPECT_EQ(TakeInto(outbox, kStart, 100, 2500, &batch), 2u);
  batch.Clear();
  // One oversized return still goes out alone.
  EXPECT_EQ(TakeInto(outbox, kStart, 100, 10, &batch), 1u);
  batch.Clear();
  EXPECT_EQ(TakeInto(outbox, kStart, 100, 1 << 20, &batch), 4u);
}

// The answer log (fleetsim --answer_log) hears of first sends only.
TEST(ReturnOutboxTest, TakeDueNamesItsFirstSendsNotItsResends) {
  ReturnOutbox outbox;
  outbox.Add(MakeReturn("20260101000000000001", "a"), kStart);
  outbox.Add(MakeReturn("20260101000000000001", "b", 2), kStart);
  std::string payload;
  std::vector<ReturnKeyView> first;
  ASSERT_EQ(outbox.TakeDue(kStart, 100, 1 << 20, &payload, &first), 2u);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].minion_id, "a");
  EXPECT_EQ(first[1].minion_id, "b");
  EXPECT_EQ(first[1].attempt, 2u);
  EXPECT_EQ(first[1].jid, "20260101000000000001");
  // Both resent after their timeout, and a new one sent for the first time.
  outbox.Add(MakeReturn("20260101000000000001", "c"), kStart + absl::Seconds(3));
  first.clear();
  payload.clear();
  ASSERT_EQ(outbox.TakeDue(kStart + absl::Seconds(3), 100, 1 << 20, &payload, &first), 3u);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].minion_id, "c");
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
  EXPECT_EQ(TakeInto(outbox, kStart + absl::Milliseconds(499), 10000, 1 << 30, &batch), 500u);
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
  EXPECT_EQ(TakeInto(outbox, kStart, 100, 1 << 20, &batch), 3u);
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
  EXPECT_EQ(TakeInto(outbox, ack_at, 100, 1 << 20, &batch), 1u);
  EXPECT_EQ(batch.returns(0).jid(), "j3");
  EXPECT_EQ(outbox.in_flight(), 3u);
  // Resends of returns in flight do not need room: j0 and j2 come back
  // after the RTO, j4 still waits.
  batch.Clear();
  EXPECT_EQ(TakeInto(outbox, kStart + absl::Seconds(2), 100, 1 << 20, &batch), 2u);
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
  EXPECT_EQ(TakeInto(outbox, reconnect, 100, 1 << 20, &batch), 2u);
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
  std::vector<ReturnKeyView> held = outbox.TakeHeldBack(kStart + grace, grace, 2);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].jid, "j2");
  EXPECT_EQ(held[1].jid, "j3");
  held = outbox.TakeHeldBack(kStart + grace, grace, 100);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].jid, "j4");
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

TEST(ReturnOutboxTest, TakenReturnsAreEncodedExactlyAsAReturnBatch) {
  ReturnOutbox outbox;
  ReturnBatch expected;
  for (int i = 0; i < 3; ++i) {
    Return ret = MakeReturn("20261207004425000001", "sim-0000" + std::to_string(i) + ".dc1");
    ret.set_retcode(-1);
    ret.set_stdout(std::string(300 * i, 'o'));  // lengths of 1 and 2 varint bytes
    ret.set_stderr("e");
    ret.set_truncated(i == 2);
    ret.set_started_at_ms(1765000000000 + i);
    ret.set_ended_at_ms(1765000000005 + i);
    ret.set_function("test.ping");
    outbox.Add(ret, kStart);
    *expected.add_returns() = ret;
  }
  std::string payload;
  ASSERT_EQ(outbox.TakeDue(kStart, 100, 1 << 20, &payload), 3u);
  EXPECT_EQ(payload, expected.SerializeAsString());
}

ReturnFields FieldsOf(const Return& ret) {
  ReturnFields fields;
  fields.jid = ret.jid();
  fields.attempt = ret.attempt();
  fields.minion_id = ret.minion_id();
  fields.success = ret.success();
  fields.retcode = ret.retcode();
  fields.stdout_text = ret.stdout();
  fields.stderr_text = ret.stderr();
  fields.truncated = ret.truncated();
  fields.started_at_ms = ret.started_at_ms();
  fields.ended_at_ms = ret.ended_at_ms();
  fields.function = ret.function();
  return fields;
}

TEST(ReturnOutboxTest, ReturnFieldsAreEncodedExactlyAsTheMessage) {
  std::vector<Return> returns;
  returns.push_back(Return());  // every field at its default
  returns.push_back(MakeReturn("20261207004425000001", "sim-00001.dc1.example.com"));
  Return full = MakeReturn("j", "m", 4000000000u);
  full.set_retcode(-1);  // ten bytes, sign-extended
  full.set_stdout(std::string(200000, 'o'));
  full.set_stderr(std::string(127, 'e'));
  full.set_truncated(true);
  full.set_started_at_ms(1765000000000);
  full.set_ended_at_ms(-5);
  full.set_function("test.ping");
  returns.push_back(full);
  Return failed = MakeReturn("j2", "m");
  failed.set_success(false);
  failed.set_retcode(137);
  failed.set_stderr(std::string(128, 'e'));  // a two-byte length
  returns.push_back(failed);
  ReturnOutbox by_message;
  ReturnOutbox by_fields;
  ReturnBatch expected;
  for (const Return& ret : returns) {
    ASSERT_TRUE(by_message.Add(ret, kStart));
    ASSERT_TRUE(by_fields.Add(FieldsOf(ret), kStart));
    *expected.add_returns() = ret;
  }
  EXPECT_FALSE(by_fields.Add(FieldsOf(returns[1]), kStart));  // a duplicate key
  std::string from_message, from_fields;
  ASSERT_EQ(by_message.TakeDue(kStart, 100, 1 << 30, &from_message), returns.size());
  ASSERT_EQ(by_fields.TakeDue(kStart, 100, 1 << 30, &from_fields), returns.size());
  EXPECT_EQ(from_message, expected.SerializeAsString());
  EXPECT_TRUE(from_fields == from_message);  // (not printed: 200 KB)
}

TEST(ReturnOutboxTest, OutOfOrderAcksLeaveExactlyTheOthersToResend) {
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 4});
  std::vector<Return> returns;
  for (int i = 0; i < 6; ++i) {
    returns.push_back(MakeReturn("j" + std::to_string(i), "m"));
    outbox.Add(returns.back(), kStart);
  }
  ASSERT_EQ(Take(outbox, kStart), 4u);  // j0..j3 in flight, j4 j5 wait
  absl::Time ack_at = kStart + absl::Milliseconds(10);
  EXPECT_EQ(outbox.Acknowledge(AckOf(returns[2]), ack_at), 1u);
  EXPECT_EQ(outbox.Acknowledge(AckOf(returns[0]), ack_at), 1u);
  EXPECT_EQ(outbox.in_flight(), 2u);
  EXPECT_EQ(outbox.size(), 4u);
  ReturnBatch batch;
  ASSERT_EQ(TakeInto(outbox, ack_at, 100, 1 << 20, &batch), 2u);  // the window's room
  EXPECT_EQ(batch.returns(0).jid(), "j4");
  EXPECT_EQ(batch.returns(1).jid(), "j5");
  EXPECT_EQ(outbox.Acknowledge(AckOf(returns[5]), ack_at), 1u);
  // Resends, oldest due first: j1 and j3 (sent at kStart), then j4.
  batch.Clear();
  ASSERT_EQ(TakeInto(outbox, kStart + absl::Seconds(10), 100, 1 << 20, &batch), 3u);
  EXPECT_EQ(batch.returns(0).jid(), "j1");
  EXPECT_EQ(batch.returns(1).jid(), "j3");
  EXPECT_EQ(batch.returns(2).jid(), "j4");
  EXPECT_EQ(outbox.resends(), 3u);
  for (int i : {4, 1, 3}) EXPECT_EQ(outbox.Acknowledge(AckOf(returns[i]), ack_at), 1u);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_EQ(outbox.in_flight(), 0u);
  EXPECT_EQ(outbox.NextDue(), std::nullopt);
  // Acknowledged keys are forgotten: the same key may be queued again.
  EXPECT_TRUE(outbox.Add(returns[0], ack_at));
}

TEST(ReturnOutboxTest, AnUnacknowledgedReturnIsResentWhileLaterOnesComeAndGo) {
  ReturnOutbox outbox;
  Return holdout = MakeReturn("j0", "slow");
  outbox.Add(holdout, kStart);
  ASSERT_EQ(Take(outbox, kStart), 1u);
  absl::Time now = kStart;
  uint64_t resent = 0;
  for (int i = 1; i <= 3000; ++i) {
    now += absl::Milliseconds(10);
    Return ret = MakeReturn("j" + std::to_string(i), "m");
    outbox.Add(ret, now);
    ReturnBatch batch;
    TakeInto(outbox, now, 1000, 1 << 20, &batch);
    for (const Return& sent : batch.returns()) resent += sent.jid() == "j0" ? 1 : 0;
    ASSERT_EQ(outbox.Acknowledge(AckOf(ret), now), 1u);
    ASSERT_EQ(outbox.size(), 1u);
    ASSERT_EQ(outbox.in_flight(), 1u);
  }
  EXPECT_EQ(resent, outbox.resends());
  EXPECT_GE(resent, 3u);  // after 2, 4, 8, 16 s
  EXPECT_EQ(outbox.held_back_records(), 0u);
  EXPECT_EQ(outbox.Acknowledge(AckOf(holdout), now), 1u);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_EQ(outbox.NextDue(), std::nullopt);
}

TEST(ReturnOutboxTest, AReturnRemovedBeforeItsFirstSendIsNeverSent) {
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 1});
  for (int i = 0; i < 4; ++i) outbox.Add(MakeReturn("j" + std::to_string(i), "m"), kStart);
  ASSERT_EQ(Take(outbox, kStart), 1u);  // j0
  EXPECT_EQ(outbox.Remove(AckOf(MakeReturn("j1", "m")).keys(), kStart), 1u);
  EXPECT_EQ(outbox.Remove(AckOf(MakeReturn("j0", "m")).keys(), kStart), 1u);
  const absl::Duration grace = absl::Milliseconds(500);
  std::vector<ReturnKeyView> held = outbox.TakeHeldBack(kStart + grace, grace, 100);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].jid, "j2");
  EXPECT_EQ(held[1].jid, "j3");
  ReturnBatch batch;
  ASSERT_EQ(TakeInto(outbox, kStart, 100, 1 << 20, &batch), 1u);
  EXPECT_EQ(batch.returns(0).jid(), "j2");
}

TEST(ReturnOutboxTest, AReusedEntryCarriesNothingOfTheReturnBefore) {
  ReturnOutbox outbox;
  Return big = MakeReturn("j1", "m1");
  big.set_stdout(std::string(2000, 'x'));
  big.set_stderr("err");
  outbox.Add(big, kStart);
  ASSERT_EQ(Take(outbox, kStart), 1u);
  ASSERT_EQ(outbox.Acknowledge(AckOf(big), kStart), 1u);
  Return small = MakeReturn("j2", "m2");
  outbox.Add(small, kStart);
  ReturnBatch batch;
  ASSERT_EQ(TakeInto(outbox, kStart, 10, 1 << 20, &batch), 1u);
  EXPECT_EQ(batch.returns(0).SerializeAsString(), small.SerializeAsString());
  EXPECT_EQ(outbox.Acknowledge(AckOf(big), kStart), 0u);
  EXPECT_EQ(outbox.Acknowledge(AckOf(small), kStart), 1u);
}

TEST(ReturnOutboxTest, RandomAcksNeverLoseOrRepeatAReturn) {
  // Acks in random order and random subsets: every return is sent until it
  // is acknowledged, and never after.
  ReturnOutbox outbox(ResendPolicy{absl::Seconds(2), absl::Seconds(30), 64});
  std::mt19937 random(20);
  absl::flat_hash_map<std::string, bool> acked;
  absl::Time now = kStart;
  int added = 0;
  for (int round = 0; round < 400; ++round) {
    for (int i = 0; i < 20; ++i, ++added) {
      std::string jid = "j" + std::to_string(added);
      acked[jid] = false;
      outbox.Add(MakeReturn(jid, "m"), now);
    }
    now += absl::Milliseconds(1 + random() % 1500);
    ReturnBatch batch;
    TakeInto(outbox, now, 1000, 1 << 30, &batch);
    ReturnAck ack;
    for (const Return& ret : batch.returns()) {
      ASSERT_FALSE(acked.at(ret.jid())) << ret.jid() << " sent after its ACK";
      if (random() % 3 != 0) {
        *ack.add_keys() = AckOf(ret).keys(0);
        acked[ret.jid()] = true;
      }
    }
    std::shuffle(ack.mutable_keys()->begin(), ack.mutable_keys()->end(), random);
    ASSERT_EQ(outbox.Acknowledge(ack, now), static_cast<size_t>(ack.keys_size()));
  }
  // Drain: everything left comes out and is acknowledged.
  for (int i = 0; i < 1000 && outbox.size() > 0; ++i) {
    now = std::max(now, outbox.NextDue().value_or(now));
    ReturnBatch batch;
    TakeInto(outbox, now, 1000, 1 << 30, &batch);
    ReturnAck ack;
    for (const Return& ret : batch.returns()) {
      ASSERT_FALSE(acked.at(ret.jid()));
      acked[ret.jid()] = true;
      *ack.add_keys() = AckOf(ret).keys(0);
    }
    outbox.Acknowledge(ack, now);
  }
  EXPECT_EQ(outbox.size(), 0u);
  for (const auto& [jid, done] : acked) EXPECT_TRUE(done) << jid;
}

}  // namespace
}  // namespace muster::minion
