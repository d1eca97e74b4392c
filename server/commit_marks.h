// CommitMarks: jobd's side of "nothing Redis loses is lost" (docs/PROTOCOL.md
// 2.4). The ingesters tell it, after each commit, the StreamSeq of every
// entry they committed; it keeps one CommitTracker per (relay, stream) and
// writes each changed mark to {prefix}committed:{datacenter}, field
// "<stream>:<relay id>", from its own thread (every 20 ms when one changed,
// and all of them every second, so a mark Redis lost in a failover is back
// within a second). Relays keep every entry until a mark covers it.
// Thread-safe.
#ifndef MUSTER_SERVER_COMMIT_MARKS_H_
#define MUSTER_SERVER_COMMIT_MARKS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/redis/commit_mark.h"
#include "common/redis/redis_link.h"
#include "proto/wire.pb.h"

namespace muster::server {

// One committed entry's numbering, as an ingester collects it.
struct CommittedSeq {
  std::string datacenter;
  std::string relay_id;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t floor = 0;
};

class CommitMarks {
 public:
  // Every relay id a datacenter may have is tracked, up to this many
  // (relay, stream) pairs (relay ids are validated where they enter).
  static constexpr size_t kMaxTracked = 10000;

  CommitMarks(RedisLinkOptions link, std::string prefix);
  ~CommitMarks();

  // Collects `seq` of an entry into `out` when the entry carries one.
  static void Collect(const wire::v1::StreamSeq& seq, const std::string& datacenter,
                      const std::string& relay_id, std::vector<CommittedSeq>* out);

  // Records entries committed to the store (call only after the commit).
  void Committed(absl::string_view stream, const std::vector<CommittedSeq>& seqs)
      ABSL_LOCKS_EXCLUDED(mu_);

  void Start();
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  struct Stats {
    uint64_t marks_written = 0;  // HSETs of a mark
    uint64_t write_failures = 0;
    uint64_t tracked = 0;        // (relay, stream) pairs
    uint64_t held = 0;           // committed seqs above a hole, all pairs
  };
  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  // The mark of (stream, datacenter, relay), for tests and the API.
  CommitMark Mark(absl::string_view stream, absl::string_view datacenter,
                  absl::string_view relay_id) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // stream, dc, relay
  struct Tracked {
    CommitTracker tracker;
    bool dirty = false;
  };
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the dirty marks (all when `all`); false when Redis failed.
  bool Write(bool all) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string prefix_;
  RedisLink link_;  // the thread's own
  mutable absl::Mutex mu_;
  std::map<Key, Tracked> tracked_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> marks_written_{0};
  std::atomic<uint64_t> write_failures_{0};
  std::thread thread_;
};

}  // namespace muster::server

#endif  // MUSTER_SERVER_COMMIT_MARKS_H_
