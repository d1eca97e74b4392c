#include "server/job_test_support.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "proto/wire.pb.h"
#include "server/relay_report_codec.h"
#include "tests/support/process.h"

namespace muster::server {

void JobStoreTest::SetUp() {
  auto store = JobStore::Open(muster::testing::MakeTempDir("server_jobs") + "/muster.db");
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
}

std::string JobStoreTest::MinionId(int i) { return absl::StrFormat("web-%05d", i); }

void JobStoreTest::AddMinions(int first, int count, int datacenters) {
  int64_t now = absl::ToUnixMillis(absl::Now());
  uint64_t skipped = 0;
  ASSERT_TRUE(store_->Write([&](StoreSession& s) -> absl::Status {
    for (int d = 0; d < datacenters; ++d) {
      std::string dc = absl::StrCat("dc", d + 1);
      muster::wire::v1::InventoryUpdate update;
      for (int i = first; i < first + count; ++i) {
        if (i % datacenters != d) continue;
        muster::wire::v1::MinionInfo* info = update.add_upserts();
        info->set_minion_id(MinionId(i));
        info->set_last_seen_ms(now);
      }
      InventoryChange change = InventoryChangeOf(update);
      absl::Status status =
          inventory_.ApplyUpdate(s, absl::StrCat("relay-", dc), dc, change, now, &skipped);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }).ok());
  ASSERT_EQ(skipped, 0u);
}

JobSpec JobStoreTest::Spec(const std::string& expression, uint32_t timeout_ms) {
  JobSpec spec;
  spec.target_type = TargetType::kGlob;
  spec.expression = expression;
  spec.function = "cmd.run";
  spec.args = {"true"};
  spec.timeout_ms = timeout_ms;
  spec.submitter = "test";
  return spec;
}

int JobStoreTest::StoredState(const std::string& jid) {
  int64_t state = -1;
  EXPECT_TRUE(store_->Read([&](StoreSession& s) -> absl::Status {
    absl::StatusOr<int64_t> value =
        s.db().QueryInt(absl::StrCat("SELECT state FROM jobs WHERE jid='", jid, "'"));
    if (value.ok()) state = *value;
    return absl::OkStatus();
  }).ok());
  return static_cast<int>(state);
}

int64_t JobStoreTest::StoredReturns(int64_t num) {
  int64_t count = -1;
  EXPECT_TRUE(store_->Read([&](StoreSession& s) -> absl::Status {
    absl::StatusOr<int64_t> counted = s.CountReturns(num);
    if (!counted.ok()) return counted.status();
    count = *counted;
    return absl::OkStatus();
  }).ok());
  return count;
}

}  // namespace muster::server
