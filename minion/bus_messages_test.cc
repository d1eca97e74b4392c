#include "minion/bus_messages.h"

#include "gtest/gtest.h"

namespace muster::minion {
namespace {

using wire::v1::JobEnvelope;

std::string EncodeJob(const std::string& expression, v1::TargetType type = v1::GLOB) {
  JobEnvelope job;
  job.set_jid("20260101000000000001");
  job.set_attempt(1);
  job.mutable_target()->set_type(type);
  job.mutable_target()->set_expression(expression);
  job.set_function("test.ping");
  job.set_deadline_ms(5000);
  return job.SerializeAsString();
}

TEST(BusMessagesTest, DecodesABroadcastJob) {
  std::string payload = EncodeJob("web*");
  absl::StatusOr<BusJob> job = DecodeJobMessage({"*", payload});
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->topic, "*");
  EXPECT_EQ(job->envelope.function(), "test.ping");
  EXPECT_TRUE(job->target.Matches("web-1", Grains{}));
  EXPECT_FALSE(job->target.Matches("db-1", Grains{}));
  EXPECT_EQ(job->deadline(), absl::FromUnixMillis(5000));
}

TEST(BusMessagesTest, UnspecifiedTargetTypeIsGlob) {
  std::string payload = EncodeJob("web*", v1::TARGET_TYPE_UNSPECIFIED);
  absl::StatusOr<BusJob> job = DecodeJobMessage({"@web-1@", payload});
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->target.kind(), TargetKind::kGlob);
}

TEST(BusMessagesTest, RejectsMalformedMessages) {
  std::string good = EncodeJob("*");
  EXPECT_FALSE(DecodeJobMessage({"*"}).ok());
  EXPECT_FALSE(DecodeJobMessage({"*", good, "extra"}).ok());
  EXPECT_FALSE(DecodeJobMessage({"web", good}).ok());
  EXPECT_FALSE(DecodeJobMessage({"@@", good}).ok());
  EXPECT_FALSE(DecodeJobMessage({"*", "\xff\xff\xff garbage"}).ok());
  EXPECT_FALSE(DecodeJobMessage({"*", EncodeJob("web[")}).ok());
  EXPECT_FALSE(DecodeJobMessage({"*", ""}).ok());  // No jid.
}

TEST(BusMessagesTest, TimeoutFallsBackToTheDeadline) {
  absl::StatusOr<BusJob> job = DecodeJobMessage({"*", EncodeJob("*")});
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->RunTimeout(absl::FromUnixMillis(4000)), absl::Seconds(1));
  job->envelope.set_timeout_ms(250);
  EXPECT_EQ(job->RunTimeout(absl::FromUnixMillis(4000)), absl::Milliseconds(250));
}

TEST(BusMessagesTest, DecodesAcks) {
  wire::v1::ReturnAck ack;
  ack.add_keys()->set_jid("j");
  std::string payload = ack.SerializeAsString();
  absl::StatusOr<wire::v1::ReturnAck> decoded = DecodeAckMessage({"ACK", payload});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->keys(0).jid(), "j");
  EXPECT_FALSE(DecodeAckMessage({"RET", payload}).ok());
  EXPECT_FALSE(DecodeAckMessage({"ACK"}).ok());
  EXPECT_FALSE(DecodeAckMessage({"ACK", "\xff\xff"}).ok());
}

TEST(BusMessagesTest, MakeReturnCopiesTheKeyAndResult) {
  JobEnvelope job;
  job.set_jid("j1");
  job.set_attempt(2);
  job.set_function("cmd.run");
  FunctionResult result;
  result.success = true;
  result.stdout_text = "out";
  wire::v1::Return ret = MakeReturn(job, "m1", result, absl::FromUnixMillis(10),
                                    absl::FromUnixMillis(20));
  EXPECT_EQ(ret.jid(), "j1");
  EXPECT_EQ(ret.attempt(), 2u);
  EXPECT_EQ(ret.minion_id(), "m1");
  EXPECT_EQ(ret.stdout(), "out");
  EXPECT_EQ(ret.function(), "cmd.run");
  EXPECT_EQ(ret.ended_at_ms(), 20);
}

}  // namespace
}  // namespace muster::minion
