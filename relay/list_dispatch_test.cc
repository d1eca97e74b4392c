#include "relay/list_dispatch.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"

namespace muster::relay {
namespace {

class ListDispatchTest : public ::testing::Test {
 protected:
  wire::v1::JobEnvelope SignedList(const std::string& expression) {
    wire::v1::JobEnvelope job;
    job.set_jid("20261206050000000001");
    job.set_attempt(2);
    job.mutable_target()->set_type(muster::v1::LIST);
    job.mutable_target()->set_expression(expression);
    job.set_function("cmd.run");
    job.add_args("echo");
    job.add_args("hello");
    job.set_created_at_ms(absl::ToUnixMillis(absl::Now()));
    job.set_deadline_ms(job.created_at_ms() + 60000);
    job.set_timeout_ms(60000);
    job.set_datacenter("dc1");
    job.set_submitter("test");
    EXPECT_TRUE(security::SignDispatch(key_, job).ok());
    return job;
  }

  security::SigningKey key_ = security::SigningKey::Generate();
  std::unique_ptr<security::TrustedKeys> trusted_ =
      *security::TrustedKeys::Create("", {security::PublicKeyHex(key_.public_key())});
  security::DispatchVerifier verifier_{trusted_.get(), "dc1"};
};

TEST_F(ListDispatchTest, EachMinionsEnvelopeNamesOnlyItAndVerifies) {
  wire::v1::JobEnvelope job = SignedList("a.dc1, b.dc1,a.dc1, c.dc1, d.dc1, e.dc1");
  absl::StatusOr<std::shared_ptr<const ListDispatch>> list = ListDispatch::Create(job);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)->ids(),
            (std::vector<std::string>{"a.dc1", "b.dc1", "c.dc1", "d.dc1", "e.dc1"}));
  for (uint32_t i = 0; i < (*list)->ids().size(); ++i) {
    wire::v1::JobEnvelope single;
    ASSERT_TRUE(single.ParseFromString((*list)->EnvelopeFor(i)));
    EXPECT_EQ(single.target().type(), muster::v1::LIST);
    EXPECT_EQ(single.target().expression(), (*list)->ids()[i]);
    EXPECT_EQ(single.list_proof().index(), i);
    EXPECT_EQ(single.list_proof().count(), 5u);
    // Every other field unchanged, signature included.
    EXPECT_EQ(single.jid(), job.jid());
    EXPECT_EQ(single.args_size(), 2);
    EXPECT_EQ(single.signature(), job.signature());
    EXPECT_EQ(verifier_.Verify(single), security::Refusal::kNone) << i;
    EXPECT_EQ((*list)->IndexOf((*list)->ids()[i]), i);
  }
  EXPECT_FALSE((*list)->IndexOf("x.dc1").has_value());
}

TEST_F(ListDispatchTest, AnotherIdWithAProofDoesNotVerify) {
  std::shared_ptr<const ListDispatch> list = *ListDispatch::Create(SignedList("a.dc1,b.dc1,c.dc1"));
  wire::v1::JobEnvelope forged = list->ParsedEnvelopeFor(1);
  forged.mutable_target()->set_expression("mallory.dc1");
  EXPECT_EQ(verifier_.Verify(forged), security::Refusal::kBadSignature);
  forged = list->ParsedEnvelopeFor(1);
  forged.mutable_list_proof()->set_index(5);
  EXPECT_EQ(verifier_.Verify(forged), security::Refusal::kBadListProof);
}

TEST_F(ListDispatchTest, ALongRetryListGivesSmallEnvelopes) {
  std::string ids;
  for (int i = 0; i < 50000; ++i) absl::StrAppend(&ids, i == 0 ? "" : ",", "m-", i, ".dc1");
  wire::v1::JobEnvelope job = SignedList(ids);
  std::shared_ptr<const ListDispatch> list = *ListDispatch::Create(job);
  ASSERT_EQ(list->ids().size(), 50000u);
  std::string last = list->EnvelopeFor(49999);
  EXPECT_LT(last.size(), 1200u);
  EXPECT_EQ(verifier_.Verify(list->ParsedEnvelopeFor(49999)), security::Refusal::kNone);
  EXPECT_EQ(verifier_.Verify(list->ParsedEnvelopeFor(31337)), security::Refusal::kNone);
}

TEST_F(ListDispatchTest, NotAListOrAnUnparsableListIsInvalid) {
  wire::v1::JobEnvelope job = SignedList("a.dc1");
  job.mutable_target()->set_type(muster::v1::GLOB);
  EXPECT_EQ(ListDispatch::Create(job).status().code(), absl::StatusCode::kInvalidArgument);
  job.mutable_target()->set_type(muster::v1::LIST);
  job.mutable_target()->set_expression("  ");
  EXPECT_EQ(ListDispatch::Create(job).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace muster::relay
