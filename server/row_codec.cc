#include "server/row_codec.h"

#include <algorithm>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/expected_set.h"
#include "common/status/status_macros.h"

namespace muster::server {
namespace {

void AppendString(absl::string_view item, std::string* out) {
  AppendVarint(item.size(), out);
  out->append(item.data(), item.size());
}

// Walks a blob written by EncodeStrings item by item, without copying.
class StringListReader {
 public:
  explicit StringListReader(absl::string_view blob) : blob_(blob) {}

  absl::StatusOr<uint64_t> Count() {
    uint64_t count = 0;
    // Each item takes at least one byte, so a count beyond the blob's size
    // is corrupt (and must not size anything).
    if (!ReadVarint(blob_, &pos_, &count) || count > blob_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("string list: bad count at byte 0 of ", blob_.size()));
    }
    return count;
  }

  absl::StatusOr<absl::string_view> Next(uint64_t index) {
    size_t at = pos_;
    uint64_t size = 0;
    if (!ReadVarint(blob_, &pos_, &size) || size > blob_.size() - pos_) {
      return absl::InvalidArgumentError(
          absl::StrCat("string list: bad item ", index, " at byte ", at, " of ", blob_.size()));
    }
    absl::string_view item = blob_.substr(pos_, size);
    pos_ += size;
    return item;
  }

  absl::Status Finish() const {
    if (pos_ == blob_.size()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "string list: ", blob_.size() - pos_, " trailing bytes after byte ", pos_));
  }

 private:
  absl::string_view blob_;
  size_t pos_ = 0;
};

// Reads the columns of one row, keeping the first that does not fit its
// field; the row is named (and a message built) only for an error.
class Columns {
 public:
  explicit Columns(const Statement& s) : s_(s) {}

  int64_t Int(int column) const { return s_.Int(column); }
  bool Bool(int column) const { return s_.Int(column) != 0; }
  std::string Text(int column) const { return std::string(s_.Text(column)); }
  std::string Blob(int column) const { return std::string(s_.Blob(column)); }
  absl::string_view BlobView(int column) const { return s_.Blob(column); }

  // An INTEGER column held in a narrower field.
  template <typename T>
  T Narrow(int column, const char* name) {
    static_assert(sizeof(T) < sizeof(int64_t), "for narrower fields only");
    int64_t value = s_.Int(column);
    if (value < int64_t{std::numeric_limits<T>::min()} ||
        value > int64_t{std::numeric_limits<T>::max()}) {
      Fail(name, absl::StrCat(value, " is out of range"));
      return 0;
    }
    return static_cast<T>(value);
  }

  // An INTEGER column holding a count: never negative.
  uint64_t Count(int column, const char* name) {
    int64_t value = s_.Int(column);
    if (value < 0) {
      Fail(name, absl::StrCat(value, " is negative"));
      return 0;
    }
    return static_cast<uint64_t>(value);
  }

  void Fail(const char* column, absl::string_view why) {
    if (bad_column_ != nullptr) return;
    bad_column_ = column;
    why_ = std::string(why);
  }

  // OK, or DataLoss "<row>: column <name>: <why>" with `row` naming the
  // table and the row's key.
  absl::Status Check(absl::FunctionRef<std::string()> row) const {
    if (bad_column_ == nullptr) return absl::OkStatus();
    return absl::DataLossError(absl::StrCat(row(), ": column ", bad_column_, ": ", why_));
  }

 private:
  const Statement& s_;
  const char* bad_column_ = nullptr;
  std::string why_;
};

}  // namespace

std::string EncodeStrings(const std::vector<std::string>& items) {
  std::string out;
  AppendVarint(items.size(), &out);
  for (const std::string& item : items) AppendString(item, &out);
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeStrings(absl::string_view blob) {
  StringListReader reader(blob);
  ASSIGN_OR_RETURN(uint64_t count, reader.Count());
  std::vector<std::string> items;
  items.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(absl::string_view item, reader.Next(i));
    items.emplace_back(item);
  }
  RETURN_IF_ERROR(reader.Finish());
  return items;
}

std::string JoinUnreachableIds(const std::vector<std::string>& ids) {
  size_t count = std::min(ids.size(), kMaxUnreachableIds);
  return absl::StrJoin(ids.begin(), ids.begin() + count, "\n");
}

std::vector<std::string> SplitUnreachableIds(absl::string_view text) {
  if (text.empty()) return {};
  return absl::StrSplit(text, '\n');
}

std::string EncodeAsked(const std::vector<std::pair<std::string, uint64_t>>& asked) {
  std::string out;
  AppendVarint(asked.size() * 2, &out);
  for (const auto& [datacenter, count] : asked) {
    AppendString(datacenter, &out);
    AppendString(absl::AlphaNum(count).Piece(), &out);
  }
  return out;
}

absl::Status DecodeAsked(absl::string_view blob,
                         std::vector<std::pair<std::string, uint64_t>>* asked) {
  asked->clear();
  StringListReader reader(blob);
  ASSIGN_OR_RETURN(uint64_t items, reader.Count());
  if (items % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("asked: ", items, " items, not datacenter and count pairs"));
  }
  asked->reserve(items / 2);
  for (uint64_t i = 0; i < items; i += 2) {
    ASSIGN_OR_RETURN(absl::string_view datacenter, reader.Next(i));
    ASSIGN_OR_RETURN(absl::string_view digits, reader.Next(i + 1));
    uint64_t count = 0;
    if (!absl::SimpleAtoi(digits, &count)) {
      return absl::InvalidArgumentError(absl::StrCat("asked: count '", absl::CHexEscape(digits),
                                                     "' of datacenter '",
                                                     absl::CHexEscape(datacenter), "'"));
    }
    asked->emplace_back(std::string(datacenter), count);
  }
  return reader.Finish();
}

absl::Status ForEachRow(Statement& s, absl::FunctionRef<absl::Status()> row) {
  absl::Status status;
  while (status.ok()) {
    absl::StatusOr<bool> more = s.Step();
    if (!more.ok()) {
      status = more.status();
    } else if (!*more) {
      break;
    } else {
      status = row();
    }
  }
  s.Reset();
  return status;
}

absl::Status ReadJobRow(const Statement& s, JobRow* job) {
  Columns c(s);
  job->num = c.Int(0);
  job->jid = c.Text(1);
  job->target_type = c.Narrow<int>(2, "target_type");
  job->expression = c.Text(3);
  job->function = c.Text(4);
  absl::StatusOr<std::vector<std::string>> args = DecodeStrings(c.BlobView(5));
  if (args.ok()) {
    job->args = std::move(*args);
  } else {
    c.Fail("args", args.status().message());
  }
  job->timeout_ms = c.Narrow<uint32_t>(6, "timeout_ms");
  job->submitter = c.Text(7);
  job->created_at_ms = c.Int(8);
  job->ended_at_ms = c.Int(9);
  job->state = static_cast<JobState>(c.Narrow<int>(10, "state"));
  job->attempt = c.Narrow<uint32_t>(11, "attempt");
  job->attempt_at_ms = c.Int(12);
  job->deadline_ms = c.Int(13);
  job->unexpected_other = c.Count(14, "unexpected_other");
  return c.Check([&] { return absl::StrCat("jobs row jid=", job->jid, " (num ", job->num, ")"); });
}

absl::Status ReadDatacenterRow(const Statement& s, int64_t job_num, DatacenterRow* row) {
  Columns c(s);
  row->datacenter = c.Text(0);
  row->expected = c.Count(1, "expected");
  row->returned = c.Count(2, "returned");
  row->succeeded = c.Count(3, "succeeded");
  row->failed = c.Count(4, "failed");
  row->unexpected = c.Count(5, "unexpected");
  row->members = c.Blob(6);
  row->received = c.Count(7, "received");
  return c.Check([&] {
    return absl::StrCat("job_datacenters row job_num=", job_num, " datacenter=", row->datacenter);
  });
}

absl::Status ReadDeliveryRow(const Statement& s, int64_t job_num, DeliveryRow* row) {
  Columns c(s);
  row->job_num = job_num;
  row->attempt = c.Narrow<uint32_t>(0, "attempt");
  row->datacenter = c.Text(1);
  row->status = c.Narrow<int>(2, "status");
  row->at_ms = c.Int(3);
  row->relay_id = c.Text(4);
  row->messages = c.Narrow<uint32_t>(5, "messages");
  row->unreachable = c.Count(6, "unreachable");
  row->unreachable_ids = SplitUnreachableIds(s.Text(7));
  return c.Check([&] {
    return absl::StrCat("deliveries row job_num=", job_num, " attempt=", s.Int(0),
                        " datacenter=", row->datacenter);
  });
}

absl::Status ReadAttemptRow(const Statement& s, int64_t job_num, AttemptRow* row) {
  Columns c(s);
  row->job_num = job_num;
  row->attempt = c.Narrow<uint32_t>(0, "attempt");
  row->started_at_ms = c.Int(1);
  row->deadline_ms = c.Int(2);
  row->ended_at_ms = c.Int(3);
  row->state = c.Narrow<int>(4, "state");
  if (absl::Status asked = DecodeAsked(c.BlobView(5), &row->asked); !asked.ok()) {
    c.Fail("asked", asked.message());
  }
  return c.Check(
      [&] { return absl::StrCat("attempts row job_num=", job_num, " attempt=", s.Int(0)); });
}

absl::Status ReadReturnRow(const Statement& s, int64_t job_num, ReturnRow* row) {
  Columns c(s);
  row->job_num = job_num;
  row->minion_id = c.Text(0);
  row->attempt = c.Narrow<uint32_t>(1, "attempt");
  row->datacenter = c.Text(2);
  row->success = c.Bool(3);
  row->retcode = c.Narrow<int32_t>(4, "retcode");
  row->stdout_text = c.Blob(5);
  row->stderr_text = c.Blob(6);
  row->truncated = c.Bool(7);
  row->started_at_ms = c.Int(8);
  row->ended_at_ms = c.Int(9);
  row->received_at_ms = c.Int(10);
  row->expected = c.Bool(11);
  return c.Check([&] {
    return absl::StrCat("returns row job_num=", job_num, " minion=", row->minion_id,
                        " attempt=", s.Int(1));
  });
}

absl::Status ReadReturnKey(const Statement& s, int64_t job_num, ReturnKeyView* key) {
  Columns c(s);
  key->minion_num = c.Narrow<uint32_t>(0, "minion");
  key->datacenter = s.Text(1);
  key->attempt = c.Narrow<uint32_t>(2, "attempt");
  key->success = c.Bool(3);
  key->expected = c.Bool(4);
  return c.Check([&] {
    return absl::StrCat("returns row job_num=", job_num, " minion=", s.Int(0),
                        " attempt=", s.Int(2));
  });
}

absl::Status ReadReceipt(const Statement& s, int64_t job_num, uint32_t* minion) {
  Columns c(s);
  *minion = c.Narrow<uint32_t>(0, "minion");
  return c.Check([&] { return absl::StrCat("receipts row job_num=", job_num); });
}

absl::Status ReadMinionRow(const Statement& s, MinionRow* row) {
  Columns c(s);
  row->num = c.Int(0);
  row->id = c.Text(1);
  row->datacenter = c.Text(2);
  row->grains = c.Blob(3);
  row->last_seen_ms = c.Int(4);
  row->alive = c.Bool(5);
  row->relay_id = c.Text(6);
  return absl::OkStatus();
}

absl::Status ReadRelayRow(const Statement& s, RelayRow* row) {
  Columns c(s);
  row->relay_id = c.Text(0);
  row->datacenter = c.Text(1);
  row->last_heartbeat_ms = c.Int(2);
  row->heartbeat = c.Blob(3);
  return absl::OkStatus();
}

}  // namespace muster::server
