// jobd's /metrics: strict Prometheus text whose figures move with what jobd
// ingests — returns, duplicates, unexpected and unknown-job returns,
// malformed entries, deliveries (dispatch latency), relay heartbeats — and
// that still answers when Redis is down.
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/metrics/metric_families.h"
#include "gtest/gtest.h"
#include "tests/dashboard_fixture.h"
#include "tests/prometheus_text.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

using muster::wire::v1::Delivery;

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

class MetricsJobdTest : public DashboardFixture {
 protected:
  PromText Scrape() {
    HttpReply reply = Get("/metrics");
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.content_type, metrics::kTextContentType);
    absl::StatusOr<PromText> text = ParsePrometheusText(reply.body);
    EXPECT_TRUE(text.ok()) << text.status() << "\n" << reply.body;
    return text.ok() ? *text : PromText();
  }
  double Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    std::optional<double> value = Scrape().Value(name, labels);
    EXPECT_TRUE(value.has_value()) << name;
    return value.value_or(-1);
  }
  bool WaitForValue(const std::string& name, const std::map<std::string, std::string>& labels,
                    double want) {
    return WaitFor([&] { return Scrape().Value(name, labels) == want; }, absl::Seconds(10));
  }
};

TEST_F(MetricsJobdTest, EveryDocumentedFamilyIsExportedWithHelpAndType) {
  PromText text = Scrape();
  for (const char* name :
       {"muster_jobd_jobs_submitted_total", "muster_jobd_job_retries_total", "muster_jobd_jobs",
        "muster_jobd_stream_entries_total", "muster_jobd_returns_ingested_total",
        "muster_jobd_returns_duplicate_total", "muster_jobd_returns_unexpected_total",
        "muster_jobd_returns_unknown_job_total", "muster_jobd_malformed_dropped_total",
        "muster_jobd_relay_events_total", "muster_jobd_deliveries_unknown_job_total",
        "muster_jobd_inventory_minions", "muster_jobd_stream_pending_entries",
        "muster_jobd_ingestion_lag_seconds", "muster_jobd_redis_up",
        "muster_jobd_sqlite_commits_total", "muster_jobd_returns_transactions_total",
        "muster_jobd_sqlite_checkpoints_total", "muster_jobd_sqlite_wal_restarts_total",
        "muster_jobd_sqlite_wal_frames", "muster_jobd_redis_failovers_followed_total",
        "muster_jobd_redis_replicas_connected", "muster_jobd_dispatches_rewritten_total",
        "muster_jobd_commit_marks_written_total"}) {
    ASSERT_TRUE(text.families.count(name)) << name;
    EXPECT_FALSE(text.families.at(name).help.empty()) << name;
  }
  EXPECT_EQ(text.families.at("muster_jobd_jobs").type, "gauge");
  EXPECT_EQ(text.families.at("muster_jobd_returns_ingested_total").type, "counter");
  EXPECT_EQ(text.Value("muster_jobd_redis_up"), 1);
  // One redis-server, no replica: none connected, no failover, no lag series.
  EXPECT_EQ(text.Value("muster_jobd_redis_replicas_connected"), 0);
  EXPECT_EQ(text.Value("muster_jobd_redis_failovers_followed_total"), 0);
  EXPECT_EQ(text.families.count("muster_jobd_redis_replica_lag_bytes"), 0u);
  EXPECT_EQ(text.families.at("muster_jobd_commit_marks_written_total").type, "counter");
  EXPECT_EQ(text.Value("muster_jobd_ingestion_lag_seconds", {{"stream", "returns"}}), 0);
}

TEST_F(MetricsJobdTest, CountersMoveWithIngestedReturns) {
  AddMinions("dc1", "web-a", 4);
  EXPECT_EQ(Value("muster_jobd_inventory_minions"), 4);
  std::string jid = Submit("web-*");
  EXPECT_EQ(Value("muster_jobd_jobs_submitted_total"), 1);
  EXPECT_EQ(Value("muster_jobd_jobs", {{"state", "running"}}), 1);

  SendReturns("dc1", jid, {"web-a0", "web-a1", "web-a2"}, {"web-a2"});
  ASSERT_TRUE(WaitForValue("muster_jobd_returns_ingested_total", {}, 3));
  // The same returns again (a relay resend): duplicates, nothing new.
  SendReturns("dc1", jid, {"web-a0", "web-a1"});
  ASSERT_TRUE(WaitForValue("muster_jobd_returns_duplicate_total", {}, 2));
  // A minion the job does not target, a jid nobody submitted, and an
  // attempt never sent: dropped, never stored (docs/PROTOCOL.md 2.2).
  SendReturns("dc1", jid, {"intruder-1"});
  SendReturns("dc1", "99990101000000000001", {"web-a3"});
  SendReturns("dc1", jid, {"web-a3"}, {}, 100);
  ASSERT_TRUE(WaitForValue("muster_jobd_returns_unknown_job_total", {}, 1));
  ASSERT_TRUE(WaitForValue("muster_jobd_returns_dropped_total", {{"reason", "never_dispatched"}}, 1));
  PromText text = Scrape();
  EXPECT_EQ(text.Value("muster_jobd_returns_dropped_total", {{"reason", "not_targeted"}}), 1);
  EXPECT_EQ(text.Value("muster_jobd_returns_dropped_total", {{"reason", "unknown_job"}}), 1);
  EXPECT_EQ(text.Value("muster_jobd_returns_dropped_total", {{"reason", "wrong_datacenter"}}), 0);
  EXPECT_EQ(text.Value("muster_jobd_returns_unexpected_total"), 0);
  EXPECT_EQ(text.Value("muster_jobd_returns_ingested_total"), 3);
  EXPECT_EQ(text.Value("muster_jobd_stream_entries_total", {{"stream", "returns"}}), 5);
  // The returns took transactions of their own; the store committed those
  // and more (the job, the inventory), and the checkpointer ran after them.
  EXPECT_GE(text.Value("muster_jobd_returns_transactions_total"), 1);
  EXPECT_GT(text.Value("muster_jobd_sqlite_commits_total"),
            text.Value("muster_jobd_returns_transactions_total"));
  ASSERT_TRUE(WaitFor([&] { return Scrape().Value("muster_jobd_sqlite_checkpoints_total") > 0; },
                      absl::Seconds(5)));

  // The last expected return completes the job.
  SendReturns("dc1", jid, {"web-a3"});
  ASSERT_TRUE(WaitForValue("muster_jobd_jobs", {{"state", "complete"}}, 1));
  EXPECT_EQ(Value("muster_jobd_jobs", {{"state", "running"}}), 0);
}

TEST_F(MetricsJobdTest, MalformedEntriesAreCountedByStreamAndReason) {
  AddMinions("dc1", "web-a", 1);
  std::string jid = Submit("web-*");
  ASSERT_TRUE(relays_->AddRaw("returns", "batch", "not a protobuf \xff\xff").ok());
  ASSERT_TRUE(relays_->AddRaw("returns", "wrong-field", "x").ok());
  ASSERT_TRUE(relays_->AddRaw("events", "event", "\xff\xff garbage").ok());
  ASSERT_TRUE(relays_->SendReturns("dc1", {RelayPlayer::MakeReturn(jid, 1, "bad id!", true)}).ok());
  ASSERT_TRUE(WaitForValue("muster_jobd_malformed_dropped_total",
                           {{"stream", "returns"}, {"reason", "bad_entry"}}, 2));
  ASSERT_TRUE(WaitForValue("muster_jobd_malformed_dropped_total",
                           {{"stream", "events"}, {"reason", "bad_entry"}}, 1));
  ASSERT_TRUE(WaitForValue("muster_jobd_malformed_dropped_total",
                           {{"stream", "returns"}, {"reason", "bad_return"}}, 1));
  EXPECT_EQ(Value("muster_jobd_returns_ingested_total"), 0);
}

TEST_F(MetricsJobdTest, DeliveriesFeedTheDispatchLatencyHistogram) {
  AddMinions("dc1", "web-a", 1);
  AddMinions("dc2", "web-b", 1);
  std::string jid = Submit("web-*");
  v1::Job job = GetJob(jid);
  ASSERT_TRUE(relays_->Deliver("dc1", jid, 1, Delivery::DELIVERED, job.created_at_ms() + 15).ok());
  ASSERT_TRUE(
      relays_->Deliver("dc2", jid, 1, Delivery::DELIVERED, job.created_at_ms() + 3000).ok());
  // A second report of the same delivery is not a second observation.
  ASSERT_TRUE(relays_->Deliver("dc1", jid, 1, Delivery::DELIVERED, job.created_at_ms() + 99).ok());
  ASSERT_TRUE(
      relays_->Deliver("dc1", "99990101000000000001", 1, Delivery::DELIVERED, NowMs()).ok());
  ASSERT_TRUE(WaitForValue("muster_jobd_deliveries_unknown_job_total", {}, 1));
  PromText text = Scrape();
  ASSERT_EQ(text.families.at("muster_jobd_dispatch_latency_seconds").type, "histogram");
  EXPECT_EQ(text.Value("muster_jobd_dispatch_latency_seconds_count", {{"datacenter", "dc1"}}), 1);
  EXPECT_EQ(text.Value("muster_jobd_dispatch_latency_seconds_bucket",
                       {{"datacenter", "dc1"}, {"le", "0.01"}}), 0);
  EXPECT_EQ(text.Value("muster_jobd_dispatch_latency_seconds_bucket",
                       {{"datacenter", "dc1"}, {"le", "0.02"}}), 1);
  EXPECT_NEAR(*text.Value("muster_jobd_dispatch_latency_seconds_sum", {{"datacenter", "dc1"}}),
              0.015, 1e-9);
  EXPECT_EQ(text.Value("muster_jobd_dispatch_latency_seconds_bucket",
                       {{"datacenter", "dc2"}, {"le", "2.5"}}), 0);
  EXPECT_EQ(text.Value("muster_jobd_dispatch_latency_seconds_bucket",
                       {{"datacenter", "dc2"}, {"le", "5"}}), 1);
  // Events applied: the re-report too (it changes nothing).
  EXPECT_EQ(text.Value("muster_jobd_relay_events_total", {{"kind", "delivery"}}), 3);
}

// Each recorded SubmitJob is one observation per stage; a refused one
// (nothing recorded) is none. The stages fit inside the total.
TEST_F(MetricsJobdTest, SubmitJobStagesAreObservedPerRecordedJob) {
  AddMinions("dc1", "web-a", 3);
  Submit("web-*");
  Submit("web-a*");
  v1::SubmitJobRequest bad;
  bad.set_function("test.ping");  // no target: INVALID_ARGUMENT, not recorded
  v1::SubmitJobResponse response;
  grpc::ClientContext context;
  ASSERT_EQ(stub_->SubmitJob(&context, bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  PromText text = Scrape();
  ASSERT_EQ(text.families.at("muster_jobd_submit_stage_seconds").type, "histogram");
  double stages_sum = 0;
  for (const char* stage : {"match", "scope", "record", "dispatch", "total"}) {
    EXPECT_EQ(text.Value("muster_jobd_submit_stage_seconds_count", {{"stage", stage}}), 2)
        << stage;
    std::optional<double> sum = text.Value("muster_jobd_submit_stage_seconds_sum", {{"stage", stage}});
    ASSERT_TRUE(sum.has_value()) << stage;
    EXPECT_GT(*sum, 0) << stage;
    if (std::string(stage) != "total") stages_sum += *sum;
  }
  EXPECT_LE(stages_sum, *text.Value("muster_jobd_submit_stage_seconds_sum", {{"stage", "total"}}));
}

TEST_F(MetricsJobdTest, RelayHeartbeatAgeIsPerRelay) {
  ASSERT_TRUE(relays_->RelayHeartbeat("dc1", NowMs() - 4000, 5000).ok());
  ASSERT_TRUE(relays_->RelayHeartbeat("dc2", NowMs(), 5000).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return Scrape().Value("muster_jobd_relay_events_total", {{"kind", "heartbeat"}}) == 2;
      },
      absl::Seconds(10)));
  PromText text = Scrape();
  std::optional<double> dc1 = text.Value("muster_jobd_relay_last_heartbeat_age_seconds",
                                         {{"relay", "relay-dc1"}, {"datacenter", "dc1"}});
  std::optional<double> dc2 = text.Value("muster_jobd_relay_last_heartbeat_age_seconds",
                                         {{"relay", "relay-dc2"}, {"datacenter", "dc2"}});
  ASSERT_TRUE(dc1 && dc2);
  EXPECT_GE(*dc1, 4.0);
  EXPECT_LT(*dc1, 30.0);
  EXPECT_LT(*dc2, *dc1);
}

// A Salt relay's master (RelayHeartbeat.salt_master) as gauges: up 0/1 and
// its keys by state; a Muster relay has none of these series.
TEST_F(MetricsJobdTest, ASaltRelaysMasterIsGaugedAndMusterRelaysHaveNoMasterSeries) {
  ASSERT_TRUE(relays_->RelayHeartbeat("dc1", NowMs(), 5000).ok());
  wire::v1::RelayHeartbeat heartbeat;
  heartbeat.set_interval_ms(5000);
  heartbeat.set_bus_kind("salt");
  heartbeat.mutable_salt_master()->set_condition(wire::v1::SaltMasterState::DOWN);
  heartbeat.mutable_salt_master()->set_keys_accepted(3);
  heartbeat.mutable_salt_master()->set_keys_pending(1);
  heartbeat.mutable_salt_master()->set_returns_caught_up(4);
  ASSERT_TRUE(relays_->SendHeartbeat("salt1", NowMs(), heartbeat).ok());
  const std::map<std::string, std::string> salt1 = {{"relay", "relay-salt1"},
                                                    {"datacenter", "salt1"}};
  ASSERT_TRUE(WaitForValue("muster_jobd_relay_salt_master_up", salt1, 0));
  PromText text = Scrape();
  EXPECT_EQ(text.families.at("muster_jobd_relay_salt_master_up").type, "gauge");
  EXPECT_EQ(text.Value("muster_jobd_relay_salt_master_keys",
                       {{"relay", "relay-salt1"}, {"datacenter", "salt1"}, {"state", "accepted"}}),
            3);
  EXPECT_EQ(text.Value("muster_jobd_relay_salt_master_keys",
                       {{"relay", "relay-salt1"}, {"datacenter", "salt1"}, {"state", "pending"}}),
            1);
  EXPECT_EQ(text.Value("muster_jobd_relay_salt_master_keys",
                       {{"relay", "relay-salt1"}, {"datacenter", "salt1"}, {"state", "rejected"}}),
            0);
  EXPECT_EQ(text.Value("muster_jobd_relay_salt_returns_caught_up_total", salt1), 4);
  EXPECT_FALSE(text.Value("muster_jobd_relay_salt_master_up",
                          {{"relay", "relay-dc1"}, {"datacenter", "dc1"}})
                   .has_value());

  heartbeat.mutable_salt_master()->set_condition(wire::v1::SaltMasterState::UP);
  ASSERT_TRUE(relays_->SendHeartbeat("salt1", NowMs(), heartbeat).ok());
  EXPECT_TRUE(WaitForValue("muster_jobd_relay_salt_master_up", salt1, 1));
}

TEST_F(MetricsJobdTest, ScrapeStillAnswersWhenRedisIsDown) {
  redis_.Stop();
  PromText text = Scrape();
  EXPECT_EQ(text.Value("muster_jobd_redis_up"), 0);
  EXPECT_FALSE(text.Value("muster_jobd_ingestion_lag_seconds", {{"stream", "returns"}}));
  EXPECT_TRUE(text.Value("muster_jobd_returns_ingested_total"));
}

}  // namespace
}  // namespace muster::testing
