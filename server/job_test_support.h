// What the unit tests of the tracker's parts share: a JobStore on a fresh
// SQLite file in a temporary directory, and an Inventory of minions named
// web-00000, web-00001, ... spread over datacenters dc1, dc2, ... (minion i
// in dc(i % datacenters + 1)), committed through the store like a relay's
// inventory events.
#ifndef MUSTER_SERVER_JOB_TEST_SUPPORT_H_
#define MUSTER_SERVER_JOB_TEST_SUPPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "server/inventory.h"
#include "server/job_store.h"
#include "server/job_types.h"

namespace muster::server {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override { store_.reset(); }

  static std::string MinionId(int i);
  // Adds minions web-{first}..web-{first + count - 1}, seen now.
  void AddMinions(int first, int count, int datacenters);
  // A cmd.run job for `expression` (a glob) with `timeout_ms`.
  static JobSpec Spec(const std::string& expression, uint32_t timeout_ms = 60000);
  // The state column of job `jid` in the file; -1 when there is none.
  int StoredState(const std::string& jid);
  // Rows in the returns table for job number `num`.
  int64_t StoredReturns(int64_t num);

  std::unique_ptr<JobStore> store_;
  Inventory inventory_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_JOB_TEST_SUPPORT_H_
