#include "minion/outbox_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace muster::minion {
namespace {

constexpr uint32_t kJournalVersion = 1;
constexpr size_t kRecordHeaderBytes = 8;  // length + crc32c
constexpr char kJournalFile[] = "outbox.journal";
constexpr char kCompactingFile[] = "outbox.journal.new";
constexpr char kLockFile[] = "LOCK";

absl::Status ErrnoStatus(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " '", path, "': ", strerror(errno)));
}

void PutFixed32(std::string* out, uint32_t value) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  out->append(bytes, 4);
}

uint32_t GetFixed32(const char* bytes) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  }
  return value;
}

// Keys of the live index; the jid is length-prefixed so no jid can make two
// keys equal.
std::string DispatchKey(absl::string_view jid, uint32_t attempt) {
  return absl::StrCat(jid.size(), ":", jid, "/", attempt);
}
std::string ReturnKeyOf(absl::string_view jid, uint32_t attempt, absl::string_view minion_id) {
  return absl::StrCat(DispatchKey(jid, attempt), "/", minion_id);
}

// Appends one framed record to `out`; returns its framed size.
uint32_t FrameRecord(const journal::v1::JournalRecord& record, std::string* out) {
  std::string payload = record.SerializeAsString();
  PutFixed32(out, static_cast<uint32_t>(payload.size()));
  PutFixed32(out, Crc32c(payload.data(), payload.size()));
  out->append(payload);
  return static_cast<uint32_t>(kRecordHeaderBytes + payload.size());
}

// Calls `record` for each whole, valid record of `data` with its offset and
// framed size, and describes the ignored tail in `contents`.
template <typename Fn>
void ParseRecords(absl::string_view data, JournalContents* contents, Fn record) {
  uint64_t offset = 0;
  std::string reason;
  while (offset < data.size()) {
    size_t left = data.size() - offset;
    if (left < kRecordHeaderBytes) {
      reason = absl::StrCat("a record header cut short (", left, " of 8 bytes)");
      break;
    }
    uint32_t length = GetFixed32(data.data() + offset);
    uint32_t crc = GetFixed32(data.data() + offset + 4);
    if (length > left - kRecordHeaderBytes) {
      reason = absl::StrCat("a record of ", length, " bytes runs past the end of the file");
      break;
    }
    const char* payload = data.data() + offset + kRecordHeaderBytes;
    if (Crc32c(payload, length) != crc) {
      reason = "a record's checksum does not match";
      break;
    }
    journal::v1::JournalRecord parsed;
    if (!parsed.ParseFromArray(payload, static_cast<int>(length)) ||
        parsed.record_case() == journal::v1::JournalRecord::RECORD_NOT_SET) {
      reason = "a record does not parse";
      break;
    }
    uint32_t size = static_cast<uint32_t>(kRecordHeaderBytes + length);
    record(std::move(parsed), offset, size);
    offset += size;
  }
  if (!reason.empty()) {
    contents->ignored_offset = offset;
    contents->ignored_bytes = data.size() - offset;
    contents->ignored_reason = reason;
  }
}

absl::StatusOr<std::string> ReadWholeFile(int fd, const std::string& path) {
  std::string data;
  char chunk[1 << 16];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("reading", path);
    if (n == 0) return data;
    data.append(chunk, static_cast<size_t>(n));
  }
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("writing", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// mkdir -p with mode 0700 for what it creates.
absl::Status MakeDirectories(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("state directory: empty path");
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string prefix = dir.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("creating state directory", prefix);
    }
    if (slash == std::string::npos) break;
  }
  struct stat info;
  if (stat(dir.c_str(), &info) != 0) return ErrnoStatus("state directory", dir);
  if (!S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state directory '", dir, "' is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening", dir);
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return ErrnoStatus("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

uint32_t Crc32c(const char* data, size_t size) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xff] ^ (crc >> 8);
  }
  return crc ^ 0xffffffffu;
}

absl::StatusOr<JournalContents> ReadJournalFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening", path);
  absl::StatusOr<std::string> data = ReadWholeFile(fd, path);
  close(fd);
  RETURN_IF_ERROR(data.status());
  JournalContents contents;
  ParseRecords(*data, &contents, [&](journal::v1::JournalRecord record, uint64_t, uint32_t) {
    contents.records.push_back(std::move(record));
  });
  return contents;
}

OutboxJournal::OutboxJournal(std::string dir, JournalOptions options, int lock_fd)
    : dir_(std::move(dir)),
      path_(absl::StrCat(dir_, "/", kJournalFile)),
      options_(options),
      lock_fd_(lock_fd) {}

OutboxJournal::~OutboxJournal() {
  // Whatever is buffered is written; a failure here has nowhere to go.
  (void)Flush();
  if (fd_ >= 0) close(fd_);
  close(lock_fd_);  // Releases the flock.
}

absl::StatusOr<std::unique_ptr<OutboxJournal>> OutboxJournal::Open(const std::string& dir,
                                                                   absl::Time now,
                                                                   JournalReplay* replay,
                                                                   JournalOptions options) {
  if (absl::Status made = MakeDirectories(dir); !made.ok()) return made;
  std::string lock_path = absl::StrCat(dir, "/", kLockFile);
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return ErrnoStatus("opening", lock_path);
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    close(lock_fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state directory '", dir, "' is in use by another minion (", lock_path, " is locked)"));
    }
    errno = error;
    return ErrnoStatus("locking", lock_path);
  }
  std::unique_ptr<OutboxJournal> journal(new OutboxJournal(dir, options, lock_fd));
  JournalReplay read;
  if (absl::Status replayed = journal->Replay(&read); !replayed.ok()) return replayed;
  if (absl::Status compacted = journal->Compact(now); !compacted.ok()) return compacted;
  // Report what is still live after the compaction.
  *replay = JournalReplay();
  replay->ignored_offset = read.ignored_offset;
  replay->ignored_bytes = read.ignored_bytes;
  replay->ignored_reason = std::move(read.ignored_reason);
  for (journal::v1::AcceptedDispatch& dispatch : read.accepted) {
    auto it = journal->dispatches_.find(DispatchKey(dispatch.jid(), dispatch.attempt()));
    if (it == journal->dispatches_.end()) continue;
    if (!it->second.returned) replay->interrupted.push_back(dispatch);
    replay->accepted.push_back(std::move(dispatch));
  }
  for (wire::v1::Return& ret : read.returns) {
    if (journal->returns_.contains(ReturnKeyOf(ret.jid(), ret.attempt(), ret.minion_id()))) {
      replay->returns.push_back(std::move(ret));
    }
  }
  return journal;
}

absl::Status OutboxJournal::Replay(JournalReplay* replay) {
  fd_ = open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT) return absl::OkStatus();  // A first start.
    return ErrnoStatus("opening", path_);
  }
  ASSIGN_OR_RETURN(std::string data, ReadWholeFile(fd_, path_));
  JournalContents tail;
  bool first = true;
  absl::Status status;
  ParseRecords(data, &tail,
               [&](journal::v1::JournalRecord record, uint64_t offset, uint32_t size) {
                 if (!status.ok()) return;
                 if (first) {
                   first = false;
                   if (!record.has_header()) {
                     status = absl::DataLossError("no journal header");
                   } else if (record.header().version() != kJournalVersion) {
                     status = absl::FailedPreconditionError(absl::StrCat(
                         "journal '", path_, "' has version ", record.header().version(),
                         "; this minion reads version ", kJournalVersion,
                         " (left untouched)"));
                   }
                   return;
                 }
                 if (!Index(record, Span{offset, size})) return;
                 if (record.has_accepted()) {
                   replay->accepted.push_back(std::move(*record.mutable_accepted()));
                 } else if (record.has_produced()) {
                   replay->returns.push_back(std::move(*record.mutable_produced()));
                 }
               });
  if (absl::IsFailedPrecondition(status)) return status;
  if (!status.ok()) {
    // The first record is not a header: nothing in the file can be trusted.
    dispatches_.clear();
    returns_.clear();
    replay->accepted.clear();
    replay->returns.clear();
    tail.ignored_offset = 0;
    tail.ignored_bytes = data.size();
    tail.ignored_reason = std::string(status.message());
  }
  // Only the whole records count; Compact copies them out of this file.
  file_bytes_ = tail.ignored_reason.empty() ? data.size() : tail.ignored_offset;
  replay->ignored_offset = tail.ignored_offset;
  replay->ignored_bytes = tail.ignored_bytes;
  replay->ignored_reason = std::move(tail.ignored_reason);
  return absl::OkStatus();
}

bool OutboxJournal::Index(const journal::v1::JournalRecord& record, Span span) {
  switch (record.record_case()) {
    case journal::v1::JournalRecord::kAccepted: {
      const journal::v1::AcceptedDispatch& dispatch = record.accepted();
      return dispatches_
          .try_emplace(DispatchKey(dispatch.jid(), dispatch.attempt()),
                       Dispatch{absl::FromUnixMillis(dispatch.deadline_ms()), span, false})
          .second;
    }
    case journal::v1::JournalRecord::kProduced: {
      const wire::v1::Return& ret = record.produced();
      if (!returns_.try_emplace(ReturnKeyOf(ret.jid(), ret.attempt(), ret.minion_id()), span)
               .second) {
        return false;
      }
      auto it = dispatches_.find(DispatchKey(ret.jid(), ret.attempt()));
      if (it != dispatches_.end()) it->second.returned = true;
      return true;
    }
    case journal::v1::JournalRecord::kRemoved: {
      bool removed = false;
      for (const wire::v1::ReturnKey& key : record.removed().keys()) {
        removed |= returns_.erase(ReturnKeyOf(key.jid(), key.attempt(), key.minion_id())) > 0;
      }
      return removed;
    }
    default:
      return false;
  }
}

void OutboxJournal::Append(const journal::v1::JournalRecord& record) {
  std::string framed;
  uint32_t size = FrameRecord(record, &framed);
  if (!Index(record, Span{file_bytes_ + buffer_.size(), size})) return;
  buffer_.append(framed);
}

void OutboxJournal::AppendAccepted(const journal::v1::AcceptedDispatch& dispatch) {
  journal::v1::JournalRecord record;
  *record.mutable_accepted() = dispatch;
  Append(record);
}

void OutboxJournal::AppendProduced(const wire::v1::Return& ret) {
  journal::v1::JournalRecord record;
  *record.mutable_produced() = ret;
  Append(record);
}

void OutboxJournal::AppendRemoved(
    const google::protobuf::RepeatedPtrField<wire::v1::ReturnKey>& keys) {
  if (keys.empty()) return;
  journal::v1::JournalRecord record;
  *record.mutable_removed()->mutable_keys() = keys;
  Append(record);
}

absl::Status OutboxJournal::OpenForAppend() {
  fd_ = open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return ErrnoStatus("opening", path_);
  return absl::OkStatus();
}

absl::Status OutboxJournal::Flush() {
  if (buffer_.empty()) return absl::OkStatus();
  if (fd_ < 0) {
    if (absl::Status opened = OpenForAppend(); !opened.ok()) return opened;
  }
  absl::Status written = WriteAll(fd_, buffer_, path_);
  if (!written.ok()) {
    // Cut a partial write off, so the spans of the buffered records stay
    // right for the next attempt.
    if (ftruncate(fd_, static_cast<off_t>(file_bytes_)) != 0) {
      return ErrnoStatus("truncating after a failed write", path_);
    }
    return written;
  }
  file_bytes_ += buffer_.size();
  buffer_.clear();
  unsynced_ = true;
  return absl::OkStatus();
}

absl::Status OutboxJournal::Sync() {
  if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
  if (!unsynced_) return absl::OkStatus();
  if (fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_);
  ++syncs_;
  unsynced_ = false;
  return absl::OkStatus();
}

absl::Status OutboxJournal::MaybeCompact(absl::Time now) {
  uint64_t limit = std::max(options_.min_compact_bytes, 2 * compacted_bytes_);
  if (file_bytes_ + buffer_.size() <= limit) return absl::OkStatus();
  return Compact(now);
}

absl::Status OutboxJournal::Compact(absl::Time now) {
  if (absl::Status flushed = Flush(); !flushed.ok()) return flushed;
  // The live records, in file order; the rest are dropped.
  std::vector<Span*> live;
  for (auto it = dispatches_.begin(); it != dispatches_.end();) {
    if (it->second.returned && it->second.deadline + options_.dedup_margin < now) {
      dispatches_.erase(it++);
    } else {
      live.push_back(&it->second.span);
      ++it;
    }
  }
  for (auto& [key, span] : returns_) live.push_back(&span);
  std::sort(live.begin(), live.end(),
            [](const Span* a, const Span* b) { return a->offset < b->offset; });

  std::string next_path = absl::StrCat(dir_, "/", kCompactingFile);
  int next = open(next_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (next < 0) return ErrnoStatus("creating", next_path);
  std::string out;
  journal::v1::JournalRecord header;
  header.mutable_header()->set_version(kJournalVersion);
  FrameRecord(header, &out);
  uint64_t written = 0;
  absl::Status status;
  std::vector<std::pair<Span*, uint64_t>> moved;  // New offsets, applied on success.
  moved.reserve(live.size());
  for (Span* span : live) {
    moved.emplace_back(span, written + out.size());
    size_t at = out.size();
    out.resize(at + span->size);
    ssize_t n = pread(fd_, out.data() + at, span->size, static_cast<off_t>(span->offset));
    if (n != static_cast<ssize_t>(span->size)) {
      status = ErrnoStatus("reading back", path_);
      break;
    }
    if (out.size() >= (1 << 20)) {
      status = WriteAll(next, out, next_path);
      if (!status.ok()) break;
      written += out.size();
      out.clear();
    }
  }
  if (status.ok()) status = WriteAll(next, out, next_path);
  written += out.size();
  if (status.ok() && fdatasync(next) != 0) status = ErrnoStatus("fdatasync", next_path);
  close(next);
  if (status.ok() && rename(next_path.c_str(), path_.c_str()) != 0) {
    status = ErrnoStatus("renaming onto", path_);
  }
  if (!status.ok()) {
    unlink(next_path.c_str());
    return status;
  }
  // Renamed: the new file is the journal, whatever happens next.
  for (auto& [span, offset] : moved) span->offset = offset;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  file_bytes_ = written;
  compacted_bytes_ = written;
  unsynced_ = false;
  if (absl::Status opened = OpenForAppend(); !opened.ok()) return opened;
  return SyncDirectory(dir_);
}

}  // namespace muster::minion
