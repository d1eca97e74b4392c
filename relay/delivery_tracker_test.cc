#include "relay/delivery_tracker.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/security/dispatch_signature.h"
#include "common/security/signing_keys.h"
#include "gtest/gtest.h"

namespace muster::relay {
namespace {

TrackedDispatch Dispatch(std::vector<std::string> expected, int64_t deadline_ms = 100000) {
  return {"20261202000000000001", 1, deadline_ms, "envelope-bytes", std::move(expected)};
}

wire::v1::Receipt ReceiptOf(const std::string& minion,
                            wire::v1::Receipt::Status status = wire::v1::Receipt::ACCEPTED) {
  wire::v1::Receipt receipt;
  receipt.set_jid("20261202000000000001");
  receipt.set_attempt(1);
  receipt.set_minion_id(minion);
  receipt.set_status(status);
  return receipt;
}

std::vector<std::string> MinionsOf(const std::vector<Resend>& resends) {
  std::vector<std::string> ids;
  for (const Resend& r : resends) ids.push_back(r.minion_id);
  return ids;
}

TEST(DeliveryTrackerTest, MinionConnectingAfterPublishGetsTheDispatchAtOnce) {
  DeliveryTracker tracker;
  tracker.Track(Dispatch({"a", "b"}), 0);
  std::vector<Resend> resends;
  tracker.TakeResends(10, 100, &resends);
  EXPECT_TRUE(resends.empty()) << "nothing before the first round or a connection";
  tracker.Heard("a", "id-a", 20);
  tracker.TakeResends(20, 100, &resends);
  ASSERT_EQ(MinionsOf(resends), std::vector<std::string>({"a"}));
  EXPECT_EQ(resends[0].identity, "id-a");
  EXPECT_EQ(*resends[0].envelope, "envelope-bytes");
  // The same connection heard again: no new resend.
  resends.clear();
  tracker.Heard("a", "id-a", 30);
  tracker.TakeResends(30, 100, &resends);
  EXPECT_TRUE(resends.empty());
  // A new connection (relay or minion restarted): sent again.
  tracker.Heard("a", "id-a2", 40);
  tracker.TakeResends(40, 100, &resends);
  EXPECT_EQ(MinionsOf(resends), std::vector<std::string>({"a"}));
}

// A LIST dispatch is re-sent like it was published: each minion gets its
// own small envelope with its Merkle proof, which verifies.
TEST(DeliveryTrackerTest, ListDispatchIsResentAsTheMinionsOwnEnvelopeWithProof) {
  security::SigningKey key = security::SigningKey::Generate();
  wire::v1::JobEnvelope job;
  job.set_jid("20261202000000000001");
  job.set_attempt(1);
  job.mutable_target()->set_type(muster::v1::LIST);
  job.mutable_target()->set_expression("a,b,c,d,e");
  job.set_function("test.ping");
  job.set_deadline_ms(100000);
  job.set_datacenter("dc1");
  ASSERT_TRUE(security::SignDispatch(key, job).ok());
  TrackedDispatch tracked = Dispatch({"b", "e", "not-listed"});
  tracked.envelope = job.SerializeAsString();
  tracked.list = *ListDispatch::Create(job);
  DeliveryTracker tracker;
  tracker.Track(std::move(tracked), 0);
  tracker.Heard("e", "id-e", 10);
  tracker.Heard("not-listed", "id-n", 10);
  std::vector<Resend> resends;
  tracker.TakeResends(10, 100, &resends);
  ASSERT_EQ(MinionsOf(resends), std::vector<std::string>({"e", "not-listed"}));
  std::unique_ptr<security::TrustedKeys> trusted =
      *security::TrustedKeys::Create("", {security::PublicKeyHex(key.public_key())});
  security::DispatchVerifier verifier(trusted.get(), "dc1");
  wire::v1::JobEnvelope sent;
  ASSERT_TRUE(sent.ParseFromString(*resends[0].envelope));
  EXPECT_EQ(sent.target().expression(), "e");
  EXPECT_EQ(sent.list_proof().index(), 4u);
  EXPECT_EQ(sent.list_proof().count(), 5u);
  EXPECT_EQ(verifier.Verify(sent), security::Refusal::kNone);
  // Not in the list (jobd would not expect it): the envelope as jobd wrote it.
  EXPECT_EQ(*resends[1].envelope, job.SerializeAsString());
}

TEST(DeliveryTrackerTest, RoundsResendToKnownMinionsWithoutReceiptWithBackoff) {
  DeliveryTrackerOptions options;
  options.first_resend_ms = 1000;
  options.max_resend_interval_ms = 4000;
  DeliveryTracker tracker(options);
  tracker.Heard("a", "x", 0);
  tracker.Heard("b", "x", 0);
  tracker.Heard("c", "x", 0);
  tracker.Track(Dispatch({"a", "b", "c", "never-heard"}), 0);
  tracker.OnReceipt(ReceiptOf("b"), 10);
  tracker.OnReturn("20261202000000000001", 1, "c");
  EXPECT_EQ(tracker.waiting(), 2u);
  std::vector<Resend> resends;
  tracker.TakeResends(999, 100, &resends);
  EXPECT_TRUE(resends.empty());
  tracker.TakeResends(1000, 100, &resends);
  EXPECT_EQ(MinionsOf(resends), std::vector<std::string>({"a"}));
  resends.clear();
  tracker.TakeResends(2999, 100, &resends);  // next round 2 s later
  EXPECT_TRUE(resends.empty());
  tracker.TakeResends(3000, 100, &resends);
  EXPECT_EQ(resends.size(), 1u);
  resends.clear();
  tracker.TakeResends(7000, 100, &resends);  // then 4 s (the cap)
  EXPECT_EQ(resends.size(), 1u);
  resends.clear();
  tracker.OnReceipt(ReceiptOf("a"), 7500);
  tracker.TakeResends(11000, 100, &resends);
  EXPECT_TRUE(resends.empty()) << "every heard minion acknowledged";
  EXPECT_EQ(tracker.waiting(), 1u);  // never-heard
}

TEST(DeliveryTrackerTest, ReportsReceiptsAfterTheDelayExceptThoseThatReturned) {
  DeliveryTrackerOptions options;
  options.report_delay_ms = 100;
  DeliveryTracker tracker(options);
  tracker.Track(Dispatch({"a", "b", "c"}), 0);
  tracker.OnReceipt(ReceiptOf("a"), 10);
  tracker.OnReceipt(ReceiptOf("b", wire::v1::Receipt::DECLINED), 20);
  tracker.OnReceipt(ReceiptOf("c"), 30);
  tracker.OnReturn("20261202000000000001", 1, "c");  // return implies receipt
  EXPECT_TRUE(tracker.TakeReports(50).empty());
  std::vector<wire::v1::DispatchReceipts> reports = tracker.TakeReports(110);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].jid(), "20261202000000000001");
  EXPECT_EQ(reports[0].attempt(), 1u);
  ASSERT_EQ(reports[0].minion_ids_size(), 2);
  EXPECT_EQ(reports[0].minion_ids(0), "a");
  EXPECT_EQ(reports[0].minion_ids(1), "b");
  ASSERT_EQ(reports[0].declined_size(), 1);
  EXPECT_EQ(reports[0].declined(0), "b");
  // Repeated receipts (a resend answered again) are not reported twice.
  tracker.OnReceipt(ReceiptOf("a"), 200);
  EXPECT_TRUE(tracker.TakeReports(400).empty());
  EXPECT_EQ(tracker.stats().reported, 2u);
}

TEST(DeliveryTrackerTest, ReceiptsOfUntrackedDispatchesOrMinionsAreCountedNotKept) {
  DeliveryTracker tracker;
  tracker.Track(Dispatch({"a"}), 0);
  tracker.OnReceipt(ReceiptOf("stranger"), 10);
  wire::v1::Receipt other = ReceiptOf("a");
  other.set_attempt(2);
  tracker.OnReceipt(other, 10);
  EXPECT_EQ(tracker.stats().receipts_untracked, 1u);  // the stranger
  tracker.Expire(60000);  // attempt 2 was never tracked
  EXPECT_EQ(tracker.stats().receipts_untracked, 2u);
}

TEST(DeliveryTrackerTest, ReceiptArrivingBeforeTheDispatchIsTrackedIsApplied) {
  DeliveryTrackerOptions options;
  options.report_delay_ms = 0;
  DeliveryTracker tracker(options);
  tracker.OnReceipt(ReceiptOf("a"), 5);
  tracker.Track(Dispatch({"a", "b"}), 10);
  EXPECT_EQ(tracker.waiting(), 1u);
  std::vector<wire::v1::DispatchReceipts> reports = tracker.TakeReports(10);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].minion_ids(0), "a");
  // One for a dispatch that never gets tracked is dropped after a while.
  wire::v1::Receipt orphan = ReceiptOf("a");
  orphan.set_attempt(7);
  tracker.OnReceipt(orphan, 20);
  tracker.Expire(20 + 31000);
  EXPECT_EQ(tracker.stats().receipts_untracked, 1u);
}

TEST(DeliveryTrackerTest, ReturnArrivingBeforeTheDispatchIsTrackedIsApplied) {
  DeliveryTracker tracker;
  tracker.Heard("a", "x", 0);
  tracker.Heard("b", "x", 0);
  tracker.Expire(1);  // the relay's loop goes on meanwhile
  tracker.OnReturn("20261202000000000001", 1, "a");
  tracker.Track(Dispatch({"a", "b"}), 10);
  EXPECT_EQ(tracker.waiting(), 1u);
  std::vector<Resend> resends;
  tracker.TakeResends(100000, 100, &resends);
  EXPECT_EQ(MinionsOf(resends), std::vector<std::string>({"b"})) << "a returned: never re-sent";
  EXPECT_EQ(tracker.stats().receipts_untracked, 0u);
}

TEST(DeliveryTrackerTest, ReportsAreSplitAtTheIdLimit) {
  DeliveryTrackerOptions options;
  options.report_delay_ms = 0;
  options.max_report_ids = 2;
  DeliveryTracker tracker(options);
  tracker.Track(Dispatch({"a", "b", "c", "d", "e"}), 0);
  for (const char* id : {"a", "b", "c", "d", "e"}) tracker.OnReceipt(ReceiptOf(id), 1);
  std::vector<wire::v1::DispatchReceipts> reports = tracker.TakeReports(1);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[2].minion_ids_size(), 1);
}

TEST(DeliveryTrackerTest, ExpiredDispatchesAreForgottenAndNotResent) {
  DeliveryTracker tracker;
  tracker.Heard("a", "x", 0);
  tracker.Track(Dispatch({"a"}, /*deadline_ms=*/500), 0);
  std::vector<Resend> resends;
  tracker.TakeResends(1000, 100, &resends);
  EXPECT_TRUE(resends.empty());
  tracker.Expire(1000);
  EXPECT_EQ(tracker.live_dispatches(), 0u);
  tracker.Heard("a", "y", 1001);
  tracker.TakeResends(1001, 100, &resends);
  EXPECT_TRUE(resends.empty());
}

TEST(DeliveryTrackerTest, ResendsAreBoundedPerCall) {
  DeliveryTracker tracker;
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back("m" + std::to_string(i));
  tracker.Track(Dispatch(ids), 0);
  for (const std::string& id : ids) tracker.Heard(id, "conn-" + id, 1);
  std::vector<Resend> resends;
  tracker.TakeResends(1, 4, &resends);
  EXPECT_EQ(resends.size(), 4u);
  resends.clear();
  tracker.TakeResends(1, 100, &resends);
  EXPECT_EQ(resends.size(), 6u);
}

// The numbered calls (the return thread looks an id up once) do what the
// named ones do, for dense and sparse member sets alike.
TEST(DeliveryTrackerTest, NumberedCallsMatchTheNamedOnes) {
  DeliveryTrackerOptions options;
  options.report_delay_ms = 0;
  DeliveryTracker tracker(options);
  EXPECT_FALSE(tracker.Number("a").has_value());
  uint32_t a = tracker.Intern("a");
  uint32_t b = tracker.Intern("b");
  uint32_t c = tracker.Intern("c");
  EXPECT_EQ(tracker.Number("b"), b);
  EXPECT_EQ(tracker.interned(), 3u);
  EXPECT_EQ(tracker.Intern("a"), a) << "a number never changes";
  // Dense: a, b, c. Sparse: a, c (b not expected).
  tracker.Track(Dispatch({"c", "a", "b"}), 0);
  TrackedDispatch sparse = Dispatch({"c", "a"});
  sparse.jid = "20261202000000000002";
  tracker.Track(std::move(sparse), 0);
  EXPECT_EQ(tracker.waiting(), 5u);
  tracker.Heard(b, "conn-b", 1);
  tracker.OnReturn("20261202000000000001", 1, b);
  tracker.OnReturn("20261202000000000002", 1, b);  // not a member: nothing
  tracker.OnReturn("20261202000000000002", 1, c);
  wire::v1::Receipt receipt = ReceiptOf("a");
  receipt.set_jid("20261202000000000002");
  tracker.OnReceipt(receipt, a, 2);
  EXPECT_EQ(tracker.waiting(), 2u) << "a and c of the first dispatch";
  EXPECT_EQ(tracker.stats().receipts, 1u);
  std::vector<wire::v1::DispatchReceipts> reports = tracker.TakeReports(2);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].jid(), "20261202000000000002");
  EXPECT_EQ(reports[0].minion_ids(0), "a");
  // A number past the members of a dense dispatch is not a member.
  uint32_t d = tracker.Intern("d");
  tracker.OnReturn("20261202000000000001", 1, d);
  EXPECT_EQ(tracker.waiting(), 2u);
}

// A dispatch expecting the same minions as the one before reuses its
// numbers; one expecting others is numbered afresh.
TEST(DeliveryTrackerTest, DispatchesExpectingTheSameMinionsAreTrackedAlike) {
  DeliveryTracker tracker;
  for (int n = 1; n <= 3; ++n) {
    TrackedDispatch dispatch = Dispatch(n == 3 ? std::vector<std::string>{"b", "z"}
                                               : std::vector<std::string>{"b", "a", "b"});
    dispatch.jid = "2026120200000000000" + std::to_string(n);
    tracker.Track(std::move(dispatch), 0);
  }
  EXPECT_EQ(tracker.waiting(), 6u) << "duplicates counted once";
  tracker.OnReturn("20261202000000000002", 1, "a");
  tracker.OnReturn("20261202000000000003", 1, "z");
  tracker.OnReturn("20261202000000000003", 1, "a");  // not expected by the third
  EXPECT_EQ(tracker.waiting(), 4u);
  tracker.Heard("b", "conn-b", 1);
  tracker.Heard("a", "conn-a", 1);
  std::vector<Resend> resends;
  tracker.TakeResends(1, 100, &resends);
  // b waits in all three dispatches, a in the first only.
  std::vector<std::string> ids = MinionsOf(resends);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, std::vector<std::string>({"a", "b", "b", "b"}));
}

// Early returns and receipts of several dispatches, interleaved, land on
// their own dispatch.
TEST(DeliveryTrackerTest, EarlyAnswersOfInterleavedDispatchesLandOnTheirOwn) {
  DeliveryTrackerOptions options;
  options.report_delay_ms = 0;
  DeliveryTracker tracker(options);
  uint32_t a = tracker.Intern("a");
  uint32_t b = tracker.Intern("b");
  tracker.OnReturn("20261202000000000001", 1, a);
  tracker.OnReturn("20261202000000000002", 1, b);
  wire::v1::Receipt receipt = ReceiptOf("b");
  tracker.OnReceipt(receipt, b, 1);  // of ...0001
  TrackedDispatch second = Dispatch({"a", "b"});
  second.jid = "20261202000000000002";
  tracker.Track(std::move(second), 2);
  EXPECT_EQ(tracker.waiting(), 1u) << "b returned";
  tracker.OnReturn("20261202000000000001", 1, "b");  // kept with the others of ...0001
  tracker.Track(Dispatch({"a", "b"}), 3);
  EXPECT_EQ(tracker.waiting(), 1u) << "first dispatch: a returned, b returned";
  EXPECT_EQ(tracker.TakeReports(3).size(), 0u) << "b's receipt is implied by its return";
}

}  // namespace
}  // namespace muster::relay
