#include "bench/run_limits.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/cluster_probe.h"
#include "common/sqlite/sqlite.h"

namespace muster::bench {
namespace {

constexpr absl::string_view kStream = "bench:limits";

}  // namespace

absl::StatusOr<double> RedisHopsMs(RedisConnection& redis, int samples) {
  const std::string payload(512, 'x');
  std::vector<double> latencies;
  std::string last_id = "0-0";
  for (int i = 0; i < samples; ++i) {
    Clock::time_point start = Clock::now();
    absl::StatusOr<RedisReply> added =
        redis.Command({"XADD", kStream, "MAXLEN", "~", "1000", "*", "body", payload});
    if (!added.ok()) return added.status();
    if (added->IsError()) return absl::InternalError(absl::StrCat("XADD: ", added->str()));
    absl::StatusOr<RedisReply> read =
        redis.Command({"XREAD", "COUNT", "1", "STREAMS", kStream, last_id});
    Clock::time_point end = Clock::now();
    if (!read.ok()) return read.status();
    if (read->IsError() || !read->IsArray()) {
      return absl::InternalError(absl::StrCat("XREAD: ", read->str()));
    }
    last_id = std::string(added->str());
    latencies.push_back(MsBetween(start, end));
  }
  if (absl::StatusOr<RedisReply> deleted = redis.Command({"DEL", kStream}); !deleted.ok()) {
    return deleted.status();
  }
  if (latencies.empty()) return absl::InvalidArgumentError("RedisHopsMs: no samples");
  return Quantile(latencies, 0.5);
}

absl::StatusOr<double> SqliteCommitMs(const std::string& path, int samples) {
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path);
  if (!db.ok()) return db.status();
  if (absl::Status created =
          (*db)->Exec("CREATE TABLE IF NOT EXISTS rows (k INTEGER PRIMARY KEY, v BLOB)");
      !created.ok()) {
    return created;
  }
  absl::StatusOr<Statement> insert = (*db)->Prepare("INSERT INTO rows (v) VALUES (?)");
  if (!insert.ok()) return insert.status();
  const std::string payload(100, 'x');
  std::vector<double> latencies;
  for (int i = 0; i < samples; ++i) {
    Clock::time_point start = Clock::now();
    if (absl::Status begun = (*db)->Exec("BEGIN"); !begun.ok()) return begun;
    insert->Reset();
    if (absl::Status inserted = insert->BindBlob(1, payload).Run(); !inserted.ok()) {
      return inserted;
    }
    if (absl::Status committed = (*db)->Exec("COMMIT"); !committed.ok()) return committed;
    latencies.push_back(MsBetween(start, Clock::now()));
  }
  if (latencies.empty()) return absl::InvalidArgumentError("SqliteCommitMs: no samples");
  return Quantile(latencies, 0.5);
}

}  // namespace muster::bench
