// Completeness: who of a job's expected set has answered, per datacenter.
//
// A DatacenterTally owns one datacenter's frozen expected set (sorted
// inventory numbers) and one state word per member, and keeps the counters
// of muster.v1.Completeness exact as returns are recorded: a member counts
// once in `returned` however many attempts it answers, and the latest
// attempt decides whether it counts as succeeded or failed. The per-member
// arrays (about 8 bytes per minion) exist only while a job is active or being
// inspected; a finished job keeps just its counters (Unload()).
#ifndef MUSTER_SERVER_COMPLETENESS_H_
#define MUSTER_SERVER_COMPLETENESS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace muster::server {

struct Counters {
  uint64_t expected = 0;
  uint64_t returned = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t unexpected = 0;
  // Expected minions that acknowledged receipt or returned (>= returned).
  uint64_t received = 0;

  uint64_t missing() const { return expected - returned; }
  void Add(const Counters& other);
};

class DatacenterTally {
 public:
  DatacenterTally() = default;
  // A tally with only counters (members not loaded).
  explicit DatacenterTally(Counters counters) : counters_(counters) {}

  // Replaces the members by `sorted_members` (strictly increasing) and
  // resets every counter: no returns yet.
  void Load(std::vector<uint32_t> sorted_members);
  // Drops the per-member arrays; counters stay.
  void Unload();
  bool loaded() const { return loaded_; }

  // Position of `minion` in the expected set, or -1. Requires loaded().
  int64_t Find(uint32_t minion) const;
  // Records a return of the member at `position` (which implies receipt).
  // Requires loaded().
  void Record(size_t position, uint32_t attempt, bool success);
  // Records that the member at `position` acknowledged receipt of the job
  // (idempotent). Requires loaded().
  void RecordReceipt(size_t position);
  bool HasReceived(size_t position) const { return received_[position]; }
  void RecordUnexpected() { ++counters_.unexpected; }

  bool HasReturned(size_t position) const { return state_[position] != 0; }
  const std::vector<uint32_t>& members() const { return members_; }
  const Counters& counters() const { return counters_; }

 private:
  bool loaded_ = false;
  Counters counters_;
  std::vector<uint32_t> members_;
  // Per member: 0 = no return; else attempt * 2 + success of the latest.
  std::vector<uint32_t> state_;
  // Per member: acknowledged receipt, or returned.
  std::vector<bool> received_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_COMPLETENESS_H_
