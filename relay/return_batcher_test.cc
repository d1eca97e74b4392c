#include "relay/return_batcher.h"

#include "gtest/gtest.h"
#include "proto/wire.pb.h"

namespace muster::relay {
namespace {

wire::v1::ReturnAck AckOf(const DecodedReturns& decoded) {
  wire::v1::ReturnAck ack;
  EXPECT_TRUE(ack.ParseFromString(decoded.ack));
  return ack;
}

std::string Payload(int returns, const std::string& prefix = "j") {
  wire::v1::ReturnBatch batch;
  for (int i = 0; i < returns; ++i) {
    wire::v1::Return* ret = batch.add_returns();
    ret->set_jid(prefix + std::to_string(i));
    ret->set_attempt(1);
    ret->set_minion_id("m-" + std::to_string(i));
    ret->set_stdout("out");
  }
  return batch.SerializeAsString();
}

TEST(ReturnBatcherTest, SmallPayloadIsKeptAsIsWithAckForEveryReturn) {
  std::string payload = Payload(3);
  absl::StatusOr<DecodedReturns> decoded = DecodeReturnPayload(payload, 42, EntryLimits{});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->chunks.size(), 1u);
  EXPECT_EQ(decoded->chunks[0].batch, payload);
  EXPECT_EQ(decoded->returns, 3);
  const wire::v1::ReturnAck ack = AckOf(*decoded);
  ASSERT_EQ(ack.keys_size(), 3);
  EXPECT_EQ(ack.keys(2).jid(), "j2");
  EXPECT_EQ(ack.keys(2).minion_id(), "m-2");
  EXPECT_EQ(ack.keys(2).attempt(), 1u);
}

// The ACK is encoded by hand as the returns are checked: the bytes must be
// exactly what ReturnAck's serializer makes (minions parse it as one).
TEST(ReturnBatcherTest, AckBytesAreWhatTheSerializerWrites) {
  wire::v1::ReturnBatch batch;
  const std::string long_jid(64, '7');
  for (int i = 0; i < 6; ++i) {
    wire::v1::Return* ret = batch.add_returns();
    ret->set_jid(i == 1 ? long_jid : "2026120200000000000" + std::to_string(i));
    ret->set_attempt(i == 2 ? 300 : i == 3 ? 0 : 1);  // 300: two-byte varint; 0: rejected
    ret->set_minion_id(i == 4 ? "not ok" : std::string(100 + i, 'm'));  // "not ok": rejected
  }
  absl::StatusOr<DecodedReturns> decoded =
      DecodeReturnPayload(batch.SerializeAsString(), 1, EntryLimits{},
                          [](const wire::v1::Return& ret) {
                            return ret.minion_id().size() == 105 ? KeyAdmission::kReject
                                                                 : KeyAdmission::kAccept;
                          });
  ASSERT_TRUE(decoded.ok());
  wire::v1::ReturnAck expected;
  for (int i : {0, 1, 2}) {
    wire::v1::ReturnKey* key = expected.add_keys();
    key->set_jid(batch.returns(i).jid());
    key->set_attempt(batch.returns(i).attempt());
    key->set_minion_id(batch.returns(i).minion_id());
  }
  wire::v1::ReturnAck parsed = AckOf(*decoded);
  ASSERT_EQ(parsed.rejected_size(), 3);
  *expected.mutable_rejected() = parsed.rejected();
  EXPECT_EQ(parsed.rejected(0).key().attempt(), 0u);
  EXPECT_EQ(parsed.rejected(1).key().minion_id(), "not ok");
  EXPECT_EQ(parsed.rejected(2).reason(), "unbound_id");
  EXPECT_EQ(decoded->ack, expected.SerializeAsString());
}

TEST(ReturnBatcherTest, BigPayloadIsSplitIntoEntrySizedChunks) {
  EntryLimits limits;
  limits.max_returns = 4;
  absl::StatusOr<DecodedReturns> decoded = DecodeReturnPayload(Payload(10), 1, limits);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->chunks.size(), 3u);
  EXPECT_EQ(decoded->chunks[0].returns, 4);
  EXPECT_EQ(decoded->chunks[2].returns, 2);
}

TEST(ReturnBatcherTest, PayloadsThatDoNotParseOrHoldNothingAreMalformed) {
  EntryLimits limits;
  EXPECT_FALSE(DecodeReturnPayload("\xff\xff garbage", 1, limits).ok());
  EXPECT_FALSE(DecodeReturnPayload("", 1, limits).ok());  // no returns
}

TEST(ReturnBatcherTest, BadReturnsAreRejectedOneByOneAndTheOthersAccepted) {
  wire::v1::ReturnBatch batch;
  auto add = [&](const std::string& jid, uint32_t attempt, const std::string& minion) {
    wire::v1::Return* ret = batch.add_returns();
    ret->set_jid(jid);
    ret->set_attempt(attempt);
    ret->set_minion_id(minion);
    ret->set_stdout(std::string("a\xff\0b", 4));  // any bytes are fine
    return ret;
  };
  add("1", 1, "good-1");
  add("1", 1, "bad@id");
  add("", 1, "m");
  add(std::string(65, '9'), 1, "m");
  add("1", 0, "m");
  add("1", 1, "big")->set_stderr(std::string((1 << 20) + 1, 'x'));
  add("2", 1, "good-2");
  absl::StatusOr<DecodedReturns> decoded =
      DecodeReturnPayload(batch.SerializeAsString(), 7, EntryLimits{});
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->returns, 2);
  ASSERT_EQ(decoded->rejected.size(), 5u);
  EXPECT_EQ(decoded->rejected[0].reason, ReturnRejectReason::kBadMinionId);
  EXPECT_NE(decoded->rejected[0].detail.find("bad@id"), std::string::npos);
  EXPECT_EQ(decoded->rejected[1].reason, ReturnRejectReason::kBadJid);
  EXPECT_EQ(decoded->rejected[2].reason, ReturnRejectReason::kBadJid);
  EXPECT_EQ(decoded->rejected[3].reason, ReturnRejectReason::kBadAttempt);
  EXPECT_EQ(decoded->rejected[4].reason, ReturnRejectReason::kOutputTooLarge);

  const wire::v1::ReturnAck ack = AckOf(*decoded);
  ASSERT_EQ(ack.keys_size(), 2);
  EXPECT_EQ(ack.keys(0).minion_id(), "good-1");
  EXPECT_EQ(ack.keys(1).minion_id(), "good-2");
  ASSERT_EQ(ack.rejected_size(), 5);
  EXPECT_EQ(ack.rejected(0).key().minion_id(), "bad@id");  // echoed as sent
  EXPECT_EQ(ack.rejected(0).reason(), "bad_minion_id");
  EXPECT_EQ(ack.rejected(2).key().jid(), std::string(65, '9'));
  EXPECT_EQ(ack.rejected(3).key().attempt(), 0u);
  EXPECT_EQ(ack.rejected(4).reason(), "output_too_large");

  // Only the accepted returns are written, bytes intact.
  ASSERT_EQ(decoded->chunks.size(), 1u);
  wire::v1::ReturnBatch written;
  ASSERT_TRUE(written.ParseFromString(decoded->chunks[0].batch));
  ASSERT_EQ(written.returns_size(), 2);
  EXPECT_EQ(decoded->chunks[0].returns, 2);
  EXPECT_EQ(written.returns(1).minion_id(), "good-2");
  EXPECT_EQ(written.returns(1).stdout(), std::string("a\xff\0b", 4));
}

TEST(ReturnBatcherTest, AllRejectedLeavesNothingToWriteButAnAnswer) {
  wire::v1::ReturnBatch batch;
  batch.add_returns()->set_jid("1");  // attempt 0, no minion id
  absl::StatusOr<DecodedReturns> decoded =
      DecodeReturnPayload(batch.SerializeAsString(), 1, EntryLimits{});
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->chunks.empty());
  const wire::v1::ReturnAck ack = AckOf(*decoded);
  EXPECT_EQ(ack.keys_size(), 0);
  EXPECT_EQ(ack.rejected_size(), 1);
}

TEST(ReturnBatcherTest, PackedEntriesConcatenateChunksAndCarryRelayFields) {
  EntryLimits limits;
  limits.max_returns = 5;
  std::vector<ReturnChunk> chunks = {{Payload(3, "a"), 3, 100},
                                     {Payload(2, "b"), 2, 200},
                                     {Payload(4, "c"), 4, 300}};
  std::vector<const ReturnChunk*> pointers = {&chunks[0], &chunks[1], &chunks[2]};
  std::vector<PackedEntry> entries = PackEntries(pointers, limits, "relay-x", "dcx");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first_chunk, 0u);
  EXPECT_EQ(entries[0].end_chunk, 2u);
  EXPECT_EQ(entries[1].first_chunk, 2u);
  wire::v1::ReturnBatch first;
  ASSERT_TRUE(first.ParseFromString(entries[0].value));
  EXPECT_EQ(first.returns_size(), 5);
  EXPECT_EQ(first.returns(0).jid(), "a0");
  EXPECT_EQ(first.returns(4).jid(), "b1");
  EXPECT_EQ(first.relay_id(), "relay-x");
  EXPECT_EQ(first.datacenter(), "dcx");
  EXPECT_EQ(first.received_at_ms(), 100);
  wire::v1::ReturnBatch second;
  ASSERT_TRUE(second.ParseFromString(entries[1].value));
  EXPECT_EQ(second.returns_size(), 4);
  EXPECT_EQ(second.received_at_ms(), 300);
}

TEST(ReturnBatcherTest, RelayFieldsSentByAMinionAreReplaced) {
  wire::v1::ReturnBatch batch;
  wire::v1::Return* ret = batch.add_returns();
  ret->set_jid("1");
  ret->set_attempt(1);
  ret->set_minion_id("m");
  batch.set_relay_id("forged");
  absl::StatusOr<DecodedReturns> decoded =
      DecodeReturnPayload(batch.SerializeAsString(), 5, EntryLimits{});
  ASSERT_TRUE(decoded.ok());
  std::vector<const ReturnChunk*> pointers = {&decoded->chunks[0]};
  wire::v1::ReturnBatch entry;
  ASSERT_TRUE(entry.ParseFromString(PackEntries(pointers, EntryLimits{}, "real", "dc")[0].value));
  EXPECT_EQ(entry.relay_id(), "real");
}

TEST(ReturnBatcherTest, ReturnsOfIdsNotBoundToTheSenderAreRejectedUnboundId) {
  wire::v1::ReturnBatch batch;
  for (const char* id : {"mine", "theirs"}) {
    wire::v1::Return* ret = batch.add_returns();
    ret->set_jid("1");
    ret->set_attempt(1);
    ret->set_minion_id(id);
  }
  absl::StatusOr<DecodedReturns> decoded =
      DecodeReturnPayload(batch.SerializeAsString(), 5, EntryLimits{},
                          [](const wire::v1::Return& ret) {
                            const std::string& id = ret.minion_id();
                            return id == "mine" ? KeyAdmission::kAccept : KeyAdmission::kReject;
                          });
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->returns, 1);
  ASSERT_EQ(AckOf(*decoded).keys_size(), 1);
  EXPECT_EQ(AckOf(*decoded).keys(0).minion_id(), "mine");
  ASSERT_EQ(AckOf(*decoded).rejected_size(), 1);
  EXPECT_EQ(AckOf(*decoded).rejected(0).key().minion_id(), "theirs");
  EXPECT_EQ(AckOf(*decoded).rejected(0).reason(), "unbound_id");
  ASSERT_EQ(decoded->chunks.size(), 1u);
  wire::v1::ReturnBatch stored;
  ASSERT_TRUE(stored.ParseFromString(decoded->chunks[0].batch));
  ASSERT_EQ(stored.returns_size(), 1);
  EXPECT_EQ(stored.returns(0).minion_id(), "mine");
}

}  // namespace
// A return whose minion id the relay has no record of yet (it just
// restarted, or the minion's heartbeat is still on its way) is in neither
// list of the ACK: the minion keeps it and sends it again, so a genuine
// return is never dropped on a transient gap in the relay's knowledge.
TEST(DecodeReturnPayloadTest, DeferredReturnsAreNeitherAcknowledgedNorRejected) {
  wire::v1::ReturnBatch batch;
  for (const char* id : {"known", "unknown", "theirs"}) {
    wire::v1::Return* ret = batch.add_returns();
    ret->set_jid("50000000000000000001");
    ret->set_attempt(1);
    ret->set_minion_id(id);
  }
  absl::StatusOr<DecodedReturns> decoded = DecodeReturnPayload(
      batch.SerializeAsString(), 5, EntryLimits{}, [](const wire::v1::Return& ret) {
                            const std::string& id = ret.minion_id();
        if (id == "known") return KeyAdmission::kAccept;
        return id == "unknown" ? KeyAdmission::kDefer : KeyAdmission::kReject;
      });
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->returns, 1);
  EXPECT_EQ(decoded->deferred, 1);
  ASSERT_EQ(AckOf(*decoded).keys_size(), 1);
  EXPECT_EQ(AckOf(*decoded).keys(0).minion_id(), "known");
  ASSERT_EQ(AckOf(*decoded).rejected_size(), 1);
  EXPECT_EQ(AckOf(*decoded).rejected(0).key().minion_id(), "theirs");
  ASSERT_EQ(decoded->chunks.size(), 1u);
  wire::v1::ReturnBatch stored;
  ASSERT_TRUE(stored.ParseFromString(decoded->chunks[0].batch));
  ASSERT_EQ(stored.returns_size(), 1);
  EXPECT_EQ(stored.returns(0).minion_id(), "known");
}

}  // namespace muster::relay
