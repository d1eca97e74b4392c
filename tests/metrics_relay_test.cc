// relayd's own /metrics (--metrics_listen): strict Prometheus text whose
// counters move when a minion's returns are forwarded, frames are
// malformed, returns are rejected, jobs are injected, and Redis comes back
// after an outage.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/wire.pb.h"
#include "tests/prometheus_text.h"
#include "tests/relay_fake_minion.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kWait = absl::Seconds(15);

class MetricsRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.Start().ok());
    auto connection = redis_.Connect();
    ASSERT_TRUE(connection.ok());
    redis_connection_ = *std::move(connection);
    metrics_port_ = FreePort();
    relay_ = std::make_unique<RelayProcess>(
        "dc1", redis_.address_string(),
        std::vector<std::string>{absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port_)});
    absl::Status started = relay_->Start();
    ASSERT_TRUE(started.ok()) << started.message();
  }

  absl::StatusOr<PromText> TryScrape() {
    httplib::Client client("127.0.0.1", metrics_port_);
    client.set_connection_timeout(2);
    client.set_read_timeout(2);
    httplib::Result result = client.Get("/metrics");
    if (!result) return absl::UnavailableError("no answer from relayd's /metrics");
    EXPECT_EQ(result->status, 200);
    absl::StatusOr<PromText> text = ParsePrometheusText(result->body);
    EXPECT_TRUE(text.ok()) << text.status() << "\n" << result->body;
    return text;
  }
  PromText Scrape() {
    absl::StatusOr<PromText> text = TryScrape();
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : PromText();
  }
  bool WaitForValue(const std::string& name, const std::map<std::string, std::string>& labels,
                    double want) {
    return WaitFor(
        [&] {
          absl::StatusOr<PromText> text = TryScrape();
          return text.ok() && text->Value(name, labels) == want;
        },
        kWait);
  }

  RedisServer redis_;
  std::unique_ptr<RedisConnection> redis_connection_;
  int metrics_port_ = 0;
  std::unique_ptr<RelayProcess> relay_;
  zmq::context_t context_{1};
};

TEST_F(MetricsRelayTest, ReadyLineNamesTheMetricsAddress) {
  EXPECT_TRUE(absl::StrContains(relay_->process().ReadLog(),
                                absl::StrCat(" metrics=127.0.0.1:", metrics_port_)));
  PromText text = Scrape();
  for (const char* name :
       {"muster_relay_returns_forwarded_total", "muster_relay_returns_spooled_total",
        "muster_relay_spool_depth", "muster_relay_malformed_frames_total",
        "muster_relay_malformed_entries_total", "muster_relay_jobs_injected_total",
        "muster_relay_jobs_expired_total", "muster_relay_jobs_duplicate_total",
        "muster_relay_minions_connected", "muster_relay_redis_errors_total",
        "muster_relay_redis_reconnects_total", "muster_relay_returns_rejected_total",
        "muster_relay_bus_messages_refused_total", "muster_relay_zap_refused_total",
        "muster_relay_minion_keys", "muster_relay_secure",
        "muster_relay_redis_failovers_followed_total", "muster_relay_unconfirmed_entries",
        "muster_relay_unconfirmed_bytes", "muster_relay_unconfirmed_deliveries",
        "muster_relay_entries_rewritten_total", "muster_relay_job_cursor_rewinds_total",
        "muster_relay_reading_from_replica"}) {
    ASSERT_TRUE(text.families.count(name)) << name;
  }
  EXPECT_EQ(text.Value("muster_relay_returns_forwarded_total"), 0);
  EXPECT_EQ(text.Value("muster_relay_secure"), 1);
  // One redis-server, no --redis_replica: the primary, no failover.
  EXPECT_EQ(text.Value("muster_relay_reading_from_replica"), 0);
  EXPECT_EQ(text.Value("muster_relay_redis_failovers_followed_total"), 0);
  EXPECT_EQ(text.Value("muster_relay_entries_rewritten_total", {{"stream", "deliveries"}}), 0);
}

TEST_F(MetricsRelayTest, CountersMoveWithReturnsJobsAndMalformedFrames) {
  auto accepted = AcceptedFakeMinion(context_, *relay_, *redis_connection_, "dc1", "web-1.dc1");
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  FakeMinion& minion = **accepted;
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("40000000000000000001", 1, muster::v1::GLOB, "*", "dc1"))
                  .ok());
  ASSERT_TRUE(AddJob(*redis_connection_,
                     MakeJob("40000000000000000002", 1, muster::v1::GLOB, "*", "dc1",
                             absl::Seconds(-1)))
                  .ok());
  ASSERT_TRUE(redis_connection_->Command({"XADD", "muster:jobs:dc1", "*", "job", "\xff garbage"})
                  .ok());
  minion.SendReturns({MakeReturn("40000000000000000001", 1, minion.id(), "ok")});
  ASSERT_TRUE(minion.PumpUntil([&] { return minion.acked().size() == 1; }, kWait));
  minion.SendRaw({"NOPE", "payload"});
  minion.SendRaw({"RET"});
  minion.SendRaw({"RET", "\xff\xff\xff garbage"});

  ASSERT_TRUE(WaitForValue("muster_relay_returns_forwarded_total", {}, 1));
  ASSERT_TRUE(WaitForValue("muster_relay_malformed_frames_total", {{"reason", "bad_type"}}, 1));
  ASSERT_TRUE(WaitForValue("muster_relay_jobs_injected_total", {}, 1));
  // The expired job and the garbage entry come after the first job in the
  // stream: the relay may count them a moment after the injection.
  ASSERT_TRUE(WaitForValue("muster_relay_jobs_expired_total", {}, 1));
  ASSERT_TRUE(WaitForValue("muster_relay_malformed_entries_total", {}, 1));
  ASSERT_TRUE(WaitForValue("muster_relay_malformed_frames_total", {{"reason", "bad_return"}}, 1));
  PromText text = Scrape();
  EXPECT_EQ(text.Value("muster_relay_malformed_frames_total", {{"reason", "frame_count"}}), 1);
  EXPECT_EQ(text.Value("muster_relay_malformed_frames_total", {{"reason", "bad_return"}}), 1);
  EXPECT_EQ(text.Value("muster_relay_jobs_expired_total"), 1);
  EXPECT_EQ(text.Value("muster_relay_malformed_entries_total"), 1);
  EXPECT_EQ(text.Value("muster_relay_spool_depth"), 0);
}

// One RET holding good returns and returns that can never be accepted:
// the good ones reach Redis (every byte value intact) and are acknowledged,
// each bad one is answered with its reason and counted, and the peer's next
// message goes through (docs/PROTOCOL.md 3.3).
TEST_F(MetricsRelayTest, BadReturnsAreRejectedAndTheGoodOnesOfTheirMessageStored) {
  auto accepted = AcceptedFakeMinion(context_, *relay_, *redis_connection_, "dc1", "web-1.dc1");
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  FakeMinion& minion = **accepted;
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  const std::string jid = "50000000000000000001";
  std::vector<wire::v1::Return> returns = {
      MakeReturn(jid, 1, minion.id(), every_byte),
      MakeReturn(jid, 0, minion.id(), "attempt 0"),
      MakeReturn("", 1, minion.id(), "no jid"),
      MakeReturn(std::string(65, '7'), 1, minion.id(), "long jid"),
      MakeReturn(jid, 1, "bad@id", "bad minion id"),
      MakeReturn(jid, 2, minion.id(), std::string((1 << 20) + 1, 'x')),
      MakeReturn(jid, 3, minion.id(), "also good"),
  };
  minion.SendReturns(returns);
  const ReturnKeyTuple good1(jid, 1, minion.id());
  const ReturnKeyTuple good2(jid, 3, minion.id());
  ASSERT_TRUE(minion.PumpUntil(
      [&] { return minion.acked().size() == 2 && minion.rejected().size() == 5; }, kWait))
      << "acked " << minion.acked().size() << ", rejected " << minion.rejected().size();
  EXPECT_EQ(minion.acked(), (std::set<ReturnKeyTuple>{good1, good2}));
  std::map<ReturnKeyTuple, std::string> want_rejected = {
      {{jid, 0, minion.id()}, "bad_attempt"},
      {{"", 1, minion.id()}, "bad_jid"},
      {{std::string(65, '7'), 1, minion.id()}, "bad_jid"},
      {{jid, 1, "bad@id"}, "bad_minion_id"},
      {{jid, 2, minion.id()}, "output_too_large"},
  };
  EXPECT_EQ(minion.rejected(), want_rejected);

  auto batches = ReadReturnBatches(*redis_connection_);
  ASSERT_TRUE(batches.ok());
  std::map<ReturnKeyTuple, std::string> stored;
  for (const wire::v1::ReturnBatch& batch : *batches) {
    for (const wire::v1::Return& ret : batch.returns()) {
      stored[{ret.jid(), ret.attempt(), ret.minion_id()}] = ret.stdout();
    }
  }
  EXPECT_EQ(stored, (std::map<ReturnKeyTuple, std::string>{{good1, every_byte},
                                                           {good2, "also good"}}));

  ASSERT_TRUE(WaitForValue("muster_relay_returns_rejected_total", {{"reason", "bad_jid"}}, 2));
  PromText text = Scrape();
  EXPECT_EQ(text.Value("muster_relay_returns_rejected_total", {{"reason", "bad_attempt"}}), 1);
  EXPECT_EQ(text.Value("muster_relay_returns_rejected_total", {{"reason", "bad_minion_id"}}), 1);
  EXPECT_EQ(text.Value("muster_relay_returns_rejected_total", {{"reason", "output_too_large"}}),
            1);
  EXPECT_EQ(text.Value("muster_relay_returns_forwarded_total"), 2);
  EXPECT_EQ(text.Value("muster_relay_malformed_frames_total", {{"reason", "bad_return"}}), 0);

  // The peer is not held up: its next message is stored and acknowledged.
  minion.SendReturns({MakeReturn("50000000000000000002", 1, minion.id(), "next")});
  ASSERT_TRUE(minion.PumpUntil([&] { return minion.acked().size() == 3; }, kWait));
  ASSERT_TRUE(WaitForValue("muster_relay_returns_forwarded_total", {}, 3));
}

TEST_F(MetricsRelayTest, RedisOutageShowsAsSpoolDepthThenReconnects) {
  auto accepted = AcceptedFakeMinion(context_, *relay_, *redis_connection_, "dc1", "web-1.dc1");
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  FakeMinion& minion = **accepted;
  ASSERT_TRUE(WaitForValue("muster_relay_redis_reconnects_total", {}, 0));
  redis_.Stop();
  minion.SendReturns({MakeReturn("40000000000000000003", 1, minion.id(), "ok")});
  ASSERT_TRUE(minion.PumpUntil([&] { return minion.acked().size() == 1; }, kWait));
  ASSERT_TRUE(WaitForValue("muster_relay_spool_depth", {}, 1));
  EXPECT_EQ(Scrape().Value("muster_relay_returns_spooled_total"), 1);
  ASSERT_TRUE(redis_.Start().ok());
  ASSERT_TRUE(WaitForValue("muster_relay_spool_depth", {}, 0));
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<PromText> text = TryScrape();
        return text.ok() && text->Value("muster_relay_redis_reconnects_total") >= 1.0 &&
               text->Value("muster_relay_returns_forwarded_total") == 1.0;
      },
      kWait));
}

}  // namespace
}  // namespace muster::testing
