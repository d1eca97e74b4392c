// salt_wire against a real salt-master 3006.1 and two real salt-minions
// (tests/support/salt_cluster.h): publish with list targeting and Muster's
// "<20-digit jid>_<attempt>" Salt jids, read the returns from the event bus
// and again from the job cache, read keys and grains, show a minion runs a
// jid once however often it is published, and survive a master restart
// (new key file, new event socket). Prints the timings it sees.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "relay/salt/event_reader.h"
#include "relay/salt/job_cache.h"
#include "relay/salt/master_config.h"
#include "relay/salt/master_inventory.h"
#include "relay/salt/master_publisher.h"
#include "relay/salt/test_files.h"
#include "tests/support/process.h"
#include "tests/support/salt_cluster.h"

namespace muster::relay::salt {
namespace {

using ::muster::testing::SaltMaster;
using ::muster::testing::SaltMinion;

// Salt's start-up is slow on 2 shared cores (30 s idle, minutes when other
// builds and clusters share them).
constexpr absl::Duration kClusterStartTimeout = absl::Minutes(4);

// A Muster-style Salt jid: a 20-digit Muster jid and the attempt.
std::string SaltJid(int job, int attempt) {
  return absl::StrFormat("2026120600000000%04d_%d", job, attempt);
}

// The events of one Salt job seen on the bus.
struct JobEvents {
  std::vector<SaltPublishEvent> publishes;
  std::vector<SaltReturn> returns;
  absl::Time last_return = absl::InfinitePast();
};

class SaltWireIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::muster::testing::MakeTempDir("salt_wire"));
    // One directory per daemon.
    std::filesystem::create_directories(*dir_ + "/master");
    auto master = SaltMaster::Start(*dir_ + "/master");
    ASSERT_TRUE(master.ok()) << master.status();
    master_ = master->release();
    for (const char* id : {"m1", "m2"}) {
      std::filesystem::create_directories(*dir_ + "/" + id);
      auto minion = SaltMinion::Start(*master_, *dir_ + "/" + id, id);
      ASSERT_TRUE(minion.ok()) << minion.status();
      minions_.push_back(minion->release());
    }
    const absl::Time start = absl::Now();
    absl::Status up =
        ::muster::testing::WaitForSaltMinions(*master_, {"m1", "m2"}, kClusterStartTimeout);
    ASSERT_TRUE(up.ok()) << up << "\n" << master_->LogTail();
    std::printf("cluster: minions answered %.1f s after their start\n",
                absl::ToDoubleSeconds(absl::Now() - start));
  }
  static void TearDownTestSuite() {
    for (SaltMinion* minion : minions_) delete minion;
    minions_.clear();
    delete master_;
    master_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(master_, nullptr);
    auto config = LoadMasterConfig(master_->config_path());
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    reader_ = std::make_unique<MasterEventReader>(
        MasterEventReaderOptions{config_.EventPublisherPath()});
    ASSERT_TRUE(reader_->Connect().ok());
    publisher_ = std::make_unique<MasterPublisher>(PublisherOptionsFor(config_));
  }

  // Reads the bus until `done` holds for what was seen, or `timeout`.
  void ReadUntil(const std::function<bool()>& done, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done() && absl::Now() < deadline) {
      for (MasterEvent& event : reader_->Poll(absl::Milliseconds(100))) {
        if (event.kind == MasterEvent::Kind::kPublish) {
          seen_[event.publish.salt_jid].publishes.push_back(event.publish);
        } else {
          JobEvents& job = seen_[event.ret.salt_jid];
          job.returns.push_back(event.ret);
          job.last_return = absl::Now();
        }
      }
    }
  }

  bool HasReturns(const std::string& jid, size_t count) {
    return seen_[jid].returns.size() >= count;
  }

  // Publishes and waits for one return per target; returns the result.
  PublishResult PublishAndCollect(const PublishRequest& request) {
    const absl::Time start = absl::Now();
    auto result = publisher_->Publish(request);
    EXPECT_TRUE(result.ok()) << result.status() << "\n" << master_->LogTail();
    if (!result.ok()) return {};
    ReadUntil([&] { return HasReturns(request.salt_jid, request.targets.size()); },
              absl::Seconds(60));
    EXPECT_EQ(seen_[request.salt_jid].returns.size(), request.targets.size())
        << master_->LogTail();
    std::printf("%-14s %s: publish round trip %.1f ms, last return %.0f ms after publish\n",
                request.fun.c_str(), request.salt_jid.c_str(),
                absl::ToDoubleMilliseconds(result->round_trip),
                absl::ToDoubleMilliseconds(seen_[request.salt_jid].last_return - start));
    return *result;
  }

  static std::string* dir_;
  static SaltMaster* master_;
  static std::vector<SaltMinion*> minions_;
  MasterConfig config_;
  std::unique_ptr<MasterEventReader> reader_;
  std::unique_ptr<MasterPublisher> publisher_;
  std::map<std::string, JobEvents> seen_;
};

std::string* SaltWireIntegrationTest::dir_ = nullptr;
SaltMaster* SaltWireIntegrationTest::master_ = nullptr;
std::vector<SaltMinion*> SaltWireIntegrationTest::minions_;

TEST_F(SaltWireIntegrationTest, PublishReadReturnsFromBusAndCacheThenSurviveAMasterRestart) {
  // The config as the relay reads it matches the master the harness wrote.
  // (The harness writes short aliases of its directories into the config.)
  auto same = [](const std::string& a, const std::string& b) {
    return std::filesystem::canonical(a) == std::filesystem::canonical(b);
  };
  EXPECT_EQ(config_.ret_port, master_->ret_port());
  EXPECT_TRUE(same(config_.cachedir, master_->cachedir()));
  EXPECT_TRUE(same(config_.sock_dir, master_->sock_dir()));
  EXPECT_TRUE(same(config_.pki_dir, master_->pki_dir()));
  EXPECT_TRUE(same(PublisherOptionsFor(config_).key_file, master_->root_key_path()));

  // 1. test.ping, list targeting, a Muster-style jid.
  PublishRequest ping;
  ping.salt_jid = SaltJid(1, 1);
  ping.targets = {"m1", "m2"};
  ping.fun = "test.ping";
  PublishResult pinged = PublishAndCollect(ping);
  EXPECT_EQ(pinged.salt_jid, ping.salt_jid);  // the master kept our jid
  EXPECT_EQ(std::set<std::string>(pinged.minions.begin(), pinged.minions.end()),
            (std::set<std::string>{"m1", "m2"}));
  EXPECT_TRUE(pinged.missing.empty());
  ReadUntil([&] { return !seen_[ping.salt_jid].publishes.empty(); }, absl::Seconds(5));
  ASSERT_EQ(seen_[ping.salt_jid].publishes.size(), 1u);
  EXPECT_EQ(seen_[ping.salt_jid].publishes[0].minions.size(), 2u);
  for (const SaltReturn& ret : seen_[ping.salt_jid].returns) {
    EXPECT_EQ(ret.fun, "test.ping");
    EXPECT_TRUE(ret.success);
    EXPECT_EQ(ret.retcode, 0);
    EXPECT_FALSE(ret.retcode_derived);
    EXPECT_EQ(ret.return_json, "true");
    EXPECT_FALSE(ret.stamp.empty());
  }

  // 2. cmd.run with a failing exit code and one target without a key.
  PublishRequest run;
  run.salt_jid = SaltJid(2, 1);
  run.targets = {"m1", "m2"};
  run.fun = "cmd.run";
  run.args = {"echo hello; exit 3"};
  PublishResult ran = PublishAndCollect(run);
  for (const SaltReturn& ret : seen_[run.salt_jid].returns) {
    EXPECT_EQ(ret.fun, "cmd.run");
    EXPECT_FALSE(ret.success);
    EXPECT_EQ(ret.retcode, 3);
    EXPECT_EQ(ret.return_json, "\"hello\"");
    EXPECT_EQ(ret.fun_args_json, nlohmann::json(run.args).dump());
  }
  PublishRequest ghost = ping;
  ghost.salt_jid = SaltJid(3, 1);
  ghost.targets = {"m1", "ghost"};
  auto partly = publisher_->Publish(ghost);
  ASSERT_TRUE(partly.ok()) << partly.status();
  EXPECT_EQ(partly->minions, (std::vector<std::string>{"m1"}));
  EXPECT_EQ(partly->missing, (std::vector<std::string>{"ghost"}));
  ghost.salt_jid = SaltJid(4, 1);
  ghost.targets = {"ghost"};
  auto nobody = publisher_->Publish(ghost);
  EXPECT_TRUE(absl::IsNotFound(nobody.status())) << nobody.status();

  // 3. The same returns from the job cache.
  for (const std::string& jid : {ping.salt_jid, run.salt_jid}) {
    auto cached = ReadJobReturns(config_.cachedir, jid, config_.hash_type);
    ASSERT_TRUE(cached.ok()) << cached.status();
    ASSERT_EQ(cached->size(), 2u) << jid;
    std::map<std::string, SaltReturn> by_minion;
    for (const SaltReturn& ret : seen_[jid].returns) by_minion[ret.minion_id] = ret;
    for (const SaltReturn& ret : *cached) {
      ASSERT_EQ(by_minion.count(ret.minion_id), 1u) << ret.minion_id;
      const SaltReturn& live = by_minion[ret.minion_id];
      EXPECT_EQ(ret.fun, live.fun);
      EXPECT_EQ(ret.retcode, live.retcode);
      EXPECT_EQ(ret.success, live.success);
      EXPECT_EQ(ret.return_json, live.return_json);
      EXPECT_EQ(ret.fun_args_json, live.fun_args_json);
    }
  }

  // 4. Keys and grains.
  auto keys = ReadMasterKeys(config_.pki_dir);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->accepted, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_TRUE(keys->pending.empty());
  for (const char* id : {"m1", "m2"}) {
    auto grains = ReadCachedGrains(config_.cachedir, id);
    ASSERT_TRUE(grains.ok()) << grains.status();
    EXPECT_EQ(grains->at("id"), id);
    EXPECT_EQ(grains->at("saltversion"), "3006.1");
    EXPECT_FALSE(grains->at("os").empty());
  }

  // 5. The same jid published again: the master accepts it, the minions
  // ignore it. A later job is the barrier: minions take publishes in order.
  auto again = publisher_->Publish(ping);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->salt_jid, ping.salt_jid);
  PublishRequest barrier = ping;
  barrier.salt_jid = SaltJid(5, 1);
  PublishAndCollect(barrier);
  // Each minion logged receiving the jid twice ("Executing command") and
  // starting it once (salt/minion.py _handle_decoded_payload: jid_queue).
  for (SaltMinion* minion : minions_) {
    const std::string received = "Executing command test.ping with jid " + ping.salt_jid;
    const std::string started = "Starting a new job " + ping.salt_jid;
    auto count = [&](const std::string& needle) {
      const std::string log = ReadFile(minion->log_path());
      int n = 0;
      for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) {
        ++n;
      }
      return n;
    };
    EXPECT_TRUE(::muster::testing::WaitFor([&] { return count(received) == 2; },
                                           absl::Seconds(10)))
        << minion->id() << " did not log the second publish of " << ping.salt_jid;
    EXPECT_EQ(count(started), 1) << minion->id() << " ran " << ping.salt_jid << " twice";
  }
  // A second return would be on the bus by now (test.ping returns in < 1 s).
  ReadUntil([] { return false; }, absl::Seconds(2));
  EXPECT_EQ(seen_[ping.salt_jid].returns.size(), 2u) << "a minion ran a jid twice";
  EXPECT_EQ(seen_[ping.salt_jid].publishes.size(), 2u);  // the master published it twice
  auto cached = ReadJobReturns(config_.cachedir, ping.salt_jid, config_.hash_type);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->size(), 2u);

  // 5b. But a minion forgets the jids it saw when it restarts (jid_queue is
  // in memory): the same jid published again runs again there, the master
  // fires a second return event for it, and its job cache keeps the first.
  SaltMinion* m1 = minions_[0];
  ASSERT_EQ(m1->id(), "m1");
  ASSERT_TRUE(m1->Restart().ok()) << m1->LogTail();
  ASSERT_TRUE(::muster::testing::WaitForSaltMinions(*master_, {"m1"}, kClusterStartTimeout).ok())
      << m1->LogTail();
  auto rerun = publisher_->Publish(ping);
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  ReadUntil([&] { return HasReturns(ping.salt_jid, 3); }, absl::Seconds(30));
  std::map<std::string, int> returns_per_minion;
  for (const SaltReturn& ret : seen_[ping.salt_jid].returns) ++returns_per_minion[ret.minion_id];
  EXPECT_EQ(returns_per_minion["m1"], 2) << "the restarted minion ran the jid again";
  EXPECT_EQ(returns_per_minion["m2"], 1);
  cached = ReadJobReturns(config_.cachedir, ping.salt_jid, config_.hash_type);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached->size(), 2u);
  EXPECT_TRUE(::muster::testing::WaitFor(
      [&] {
        return ReadFile(master_->log_path()).find("An extra return was detected from minion m1") !=
               std::string::npos;
      },
      absl::Seconds(10)));

  // 6. The master restarts: a new key file and a new event socket.
  const std::string old_key = ReadFile(master_->root_key_path());
  const int64_t connects_before = reader_->counters().connects;
  const absl::Time restart = absl::Now();
  master_->Stop();
  // While it is down: a publish is Unavailable (never sent), within its
  // timeout, and the event reader sees the connection close.
  MasterPublisherOptions quick = PublisherOptionsFor(config_);
  quick.timeout = absl::Seconds(1);
  MasterPublisher down_publisher(quick);
  PublishRequest lost = ping;
  lost.salt_jid = SaltJid(7, 1);
  const absl::Time sent = absl::Now();
  auto refused = down_publisher.Publish(lost);
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_LT(absl::Now() - sent, absl::Seconds(3));
  EXPECT_EQ(down_publisher.requests_sent(), 0);
  ReadUntil([&] { return !reader_->connected(); }, absl::Seconds(5));
  EXPECT_FALSE(reader_->connected());
  ASSERT_TRUE(master_->Restart().ok()) << master_->LogTail();
  std::printf("master restart took %.1f s\n", absl::ToDoubleSeconds(absl::Now() - restart));
  EXPECT_NE(ReadFile(master_->root_key_path()), old_key) << "the key file was not rewritten";
  ASSERT_TRUE(
      ::muster::testing::WaitForSaltMinions(*master_, {"m1", "m2"}, kClusterStartTimeout).ok())
      << master_->LogTail();
  std::printf("minions answered again %.1f s after the restart began\n",
              absl::ToDoubleSeconds(absl::Now() - restart));
  PublishRequest after = ping;
  after.salt_jid = SaltJid(6, 1);
  PublishResult restarted = PublishAndCollect(after);
  EXPECT_TRUE(restarted.key_reread) << "the publisher should have re-read the key";
  EXPECT_GT(reader_->counters().connects, connects_before) << "no reconnect to the event bus";
  EXPECT_EQ(reader_->counters().malformed_frames, 0);
  std::printf("event bus: %lld frames, %lld returns, %lld publishes, %lld connects\n",
              static_cast<long long>(reader_->counters().frames),
              static_cast<long long>(reader_->counters().returns),
              static_cast<long long>(reader_->counters().publishes),
              static_cast<long long>(reader_->counters().connects));

  // The publish refused while the master was down never reached it.
  EXPECT_TRUE(absl::IsNotFound(
      ReadJobReturns(config_.cachedir, lost.salt_jid, config_.hash_type).status()));

  // 7. The job cache survived the restart.
  auto old_job = ReadJobReturns(config_.cachedir, run.salt_jid, config_.hash_type);
  ASSERT_TRUE(old_job.ok()) << old_job.status();
  EXPECT_EQ(old_job->size(), 2u);
}

}  // namespace
}  // namespace muster::relay::salt
