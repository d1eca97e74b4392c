#include "relay/return_batcher.h"

#include "gtest/gtest.h"
#include "proto/wire.pb.h"

namespace muster::relay {
namespace {

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
  wire::v1::ReturnAck ack;
  ASSERT_TRUE(ack.ParseFromString(decoded->ack));
  ASSERT_EQ(ack.keys_size(), 3);
  EXPECT_EQ(ack.keys(2).jid(), "j2");
  EXPECT_EQ(ack.keys(2).minion_id(), "m-2");
  EXPECT_EQ(ack.keys(2).attempt(), 1u);
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

TEST(ReturnBatcherTest, InvalidPayloadsAreRejectedWithAReason) {
  EntryLimits limits;
  EXPECT_FALSE(DecodeReturnPayload("\xff\xff garbage", 1, limits).ok());
  EXPECT_FALSE(DecodeReturnPayload("", 1, limits).ok());  // no returns
  wire::v1::ReturnBatch batch;
  batch.add_returns()->set_jid("1");
  batch.mutable_returns(0)->set_attempt(1);
  batch.mutable_returns(0)->set_minion_id("bad@id");
  absl::StatusOr<DecodedReturns> bad_id =
      DecodeReturnPayload(batch.SerializeAsString(), 1, limits);
  ASSERT_FALSE(bad_id.ok());
  EXPECT_NE(bad_id.status().message().find("bad@id"), absl::string_view::npos);
  batch.mutable_returns(0)->set_minion_id("ok");
  batch.mutable_returns(0)->set_attempt(0);
  EXPECT_FALSE(DecodeReturnPayload(batch.SerializeAsString(), 1, limits).ok());
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

}  // namespace
}  // namespace muster::relay
