// UnconfirmedLog: the stream entries a relay has written to Redis (or is
// about to) that jobd has not yet confirmed committed (docs/PROTOCOL.md
// 2.4). Redis replication is asynchronous: an XADD the primary answered can
// vanish in a failover. The relay therefore keeps every entry, numbered,
// until jobd's commit mark covers it, and writes again whatever a failover
// (or any reconnect) may have lost.
//
// On disk: segment files <dir>/<first seq, 20 digits>.log, each a run of
// records [u32 length][u32 crc32 of seq and value][u64 seq][value]
// (little-endian; a seq with the top bit set is a tombstone: the entry of
// that seq is abandoned, see Abandon()), appended with write(2): a record is on disk, in the page
// cache, before Append() returns, so a killed relay keeps it (a power cut
// is the minions' and the spool's business: entries here are also in
// Redis). The newest segment always exists, even empty, so the next seq
// survives a restart after everything was confirmed: a seq is never
// reused within an epoch. Open() reads the segments back and cuts a torn
// last record. Confirmed segments are deleted whole.
// Not thread-safe: owned by one thread.
#ifndef MUSTER_RELAY_UNCONFIRMED_LOG_H_
#define MUSTER_RELAY_UNCONFIRMED_LOG_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace muster::relay {

struct UnconfirmedEntry {
  uint64_t seq = 0;
  std::string value;
};

// The relay's writer epoch (StreamSeq.epoch): read from `path`, or made
// (64 random bits, never 0) and written there (0600) the first time.
absl::StatusOr<uint64_t> LoadOrCreateWriterEpoch(const std::string& path);

class UnconfirmedLog {
 public:
  // A segment takes no more records past this size.
  static constexpr uint64_t kSegmentBytes = 16 << 20;

  // Opens (creating, mode 0700) the log in `dir`.
  static absl::StatusOr<std::unique_ptr<UnconfirmedLog>> Open(const std::string& dir);
  ~UnconfirmedLog();
  UnconfirmedLog(const UnconfirmedLog&) = delete;
  UnconfirmedLog& operator=(const UnconfirmedLog&) = delete;

  // The seq the next Append() must carry (1 for a new log).
  uint64_t next_seq() const { return next_seq_; }
  // The lowest seq held, or next_seq() when nothing is: every seq below it
  // was confirmed.
  uint64_t floor() const { return held_.empty() ? next_seq_ : held_.front().seq; }

  // Appends entry `seq` (== next_seq()) with its value; `now_ms` is kept as
  // its write time. On error nothing is held and next_seq() still grows:
  // the entry goes to Redis unprotected (the caller counts it).
  absl::Status Append(uint64_t seq, absl::string_view value, int64_t now_ms);
  // Appends `values` as entries next_seq(), next_seq() + 1, ... with
  // writev(2), one call for the lot (per segment), no copy of a value; an
  // error holds none of them (like Append: they go to Redis unprotected;
  // any that reached the disk whole come back after a restart and are
  // written again, at worst a duplicate).
  absl::Status AppendAll(absl::Span<const absl::string_view> values, int64_t now_ms);

  // Forgets entry `seq` (held): its XADD failed and its returns went to the
  // spool instead, which writes them again with a new seq. Appends a
  // tombstone (a record whose seq has the top bit set and no value), so a
  // restart does not bring it back.
  void Abandon(uint64_t seq);

  // Forgets every entry with seq <= `through` (confirmed by jobd) and
  // deletes the segments that held only those.
  void Confirm(uint64_t through);

  // Held entries with after < seq <= through, oldest first, values read
  // back from disk, stopping once `max_bytes` is reached (at least one
  // entry when there is one).
  absl::StatusOr<std::vector<UnconfirmedEntry>> Read(uint64_t after, uint64_t through,
                                                     size_t max_bytes) const;
  // Marks entries up to `through` as written again at `now_ms`.
  void Rewritten(uint64_t through, int64_t now_ms);

  size_t held() const { return held_.size(); }
  uint64_t held_bytes() const { return held_bytes_; }
  // Write time of the oldest held entry (0 when none).
  int64_t oldest_written_ms() const { return held_.empty() ? 0 : held_.front().written_ms; }
  // Write time of the held entry `seq`, or 0 if it is not held.
  int64_t written_ms(uint64_t seq) const;

 private:
  struct Held {
    uint64_t seq;
    uint64_t segment;  // first seq of its segment
    uint64_t offset;   // of the record
    uint32_t length;   // of the value
    int64_t written_ms;
  };
  struct Segment {
    std::string path;
    uint64_t size = 0;
    uint64_t last_seq = 0;  // 0: no record yet
  };

  explicit UnconfirmedLog(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Load();
  // Reads the records of `segment` into held_; cuts a torn tail.
  absl::Status LoadSegment(uint64_t first_seq, Segment& segment);
  absl::Status StartSegment(uint64_t first_seq);
  std::string SegmentPath(uint64_t first_seq) const;

  const std::string dir_;
  std::map<uint64_t, Segment> segments_;  // by first seq; the last is active
  int active_fd_ = -1;
  std::deque<Held> held_;
  uint64_t held_bytes_ = 0;
  uint64_t next_seq_ = 1;
};

}  // namespace muster::relay

#endif  // MUSTER_RELAY_UNCONFIRMED_LOG_H_
