#include "relay/unconfirmed_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status/status_macros.h"
#include "spdlog/spdlog.h"

namespace muster::relay {
namespace {

constexpr size_t kHeaderBytes = 16;  // u32 length, u32 crc, u64 seq
// A value larger than any stream entry (PROTOCOL 6) is a torn record.
constexpr uint32_t kMaxValueBytes = 64 << 20;
constexpr uint64_t kTombstone = uint64_t{1} << 63;

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}
uint64_t GetU64(const char* in) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

uint32_t Checksum(const char* seq_bytes, absl::string_view value) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(seq_bytes), 8);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(value.data()),
              static_cast<uInt>(value.size()));
  return static_cast<uint32_t>(crc);
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Writes every byte of `iov` (which it may change) to `fd`.
absl::Status WriteAllV(int fd, std::vector<iovec>& iov, const std::string& path) {
  size_t next = 0;
  while (next < iov.size()) {
    ssize_t n = writev(fd, iov.data() + next, static_cast<int>(iov.size() - next));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", path);
    }
    size_t done = static_cast<size_t>(n);
    while (next < iov.size() && done >= iov[next].iov_len) {
      done -= iov[next].iov_len;
      ++next;
    }
    if (next < iov.size()) {
      iov[next].iov_base = static_cast<char*>(iov[next].iov_base) + done;
      iov[next].iov_len -= done;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadAt(int fd, uint64_t offset, size_t size, std::string* out,
                    const std::string& path) {
  out->resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, out->data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read", path);
    }
    if (n == 0) return absl::DataLossError(absl::StrCat("'", path, "' ends early"));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> LoadOrCreateWriterEpoch(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    std::string text;
    char buffer[64];
    ssize_t n = read(fd, buffer, sizeof(buffer));
    close(fd);
    uint64_t epoch = 0;
    if (n > 0) text.assign(buffer, static_cast<size_t>(n));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (!absl::SimpleHexAtoi(text, &epoch) || epoch == 0) {
      return absl::DataLossError(
          absl::StrCat("'", path, "' does not hold a writer epoch (16 hex digits)"));
    }
    return epoch;
  }
  if (errno != ENOENT) return Errno("open", path);
  uint64_t epoch = 0;
  while (epoch == 0) {
    if (getrandom(&epoch, sizeof(epoch), 0) != sizeof(epoch)) return Errno("getrandom", path);
  }
  std::string tmp = absl::StrCat(path, ".tmp");
  fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create", tmp);
  absl::Status written = WriteAll(fd, absl::StrFormat("%016x\n", epoch), tmp);
  if (written.ok() && fsync(fd) != 0) written = Errno("fsync", tmp);
  close(fd);
  RETURN_IF_ERROR(written);
  if (rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", path);
  return epoch;
}

absl::StatusOr<std::unique_ptr<UnconfirmedLog>> UnconfirmedLog::Open(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir", dir);
  std::unique_ptr<UnconfirmedLog> log(new UnconfirmedLog(dir));
  RETURN_IF_ERROR(log->Load());
  return log;
}

UnconfirmedLog::~UnconfirmedLog() {
  if (active_fd_ >= 0) close(active_fd_);
}

std::string UnconfirmedLog::SegmentPath(uint64_t first_seq) const {
  return absl::StrFormat("%s/%020u.log", dir_, first_seq);
}

absl::Status UnconfirmedLog::Load() {
  DIR* listing = opendir(dir_.c_str());
  if (listing == nullptr) return Errno("opendir", dir_);
  while (dirent* item = readdir(listing)) {
    absl::string_view name = item->d_name;
    uint64_t first_seq = 0;
    if (!absl::ConsumeSuffix(&name, ".log") || name.size() != 20 ||
        !absl::SimpleAtoi(name, &first_seq) || first_seq == 0) {
      continue;
    }
    segments_[first_seq].path = SegmentPath(first_seq);
  }
  closedir(listing);
  for (auto& [first_seq, segment] : segments_) {
    RETURN_IF_ERROR(LoadSegment(first_seq, segment));
    next_seq_ = std::max(next_seq_, std::max(first_seq, segment.last_seq + 1));
  }
  if (segments_.empty()) return StartSegment(next_seq_);
  const std::string& active = segments_.rbegin()->second.path;
  active_fd_ = open(active.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (active_fd_ < 0) return Errno("open", active);
  if (!held_.empty()) {
    spdlog::info("returns: {} entries ({} bytes) from before wait for jobd's confirmation",
                 held_.size(), held_bytes_);
  }
  return absl::OkStatus();
}

absl::Status UnconfirmedLog::LoadSegment(uint64_t first_seq, Segment& segment) {
  int fd = open(segment.path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno("open", segment.path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    absl::Status error = Errno("stat", segment.path);
    close(fd);
    return error;
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t offset = 0;
  std::string header;
  std::string value;
  while (offset + kHeaderBytes <= size) {
    if (!ReadAt(fd, offset, kHeaderBytes, &header, segment.path).ok()) break;
    uint32_t length = GetU32(header.data());
    uint32_t crc = GetU32(header.data() + 4);
    uint64_t seq = GetU64(header.data() + 8);
    if ((seq & kTombstone) != 0) {
      if (length != 0 || Checksum(header.data() + 8, "") != crc) break;
      uint64_t abandoned = seq & ~kTombstone;
      for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
        if (it->seq != abandoned) continue;
        held_bytes_ -= it->length;
        held_.erase(std::next(it).base());
        break;
      }
      offset += kHeaderBytes;
      continue;
    }
    if (length > kMaxValueBytes || offset + kHeaderBytes + length > size ||
        seq < first_seq || (segment.last_seq != 0 && seq != segment.last_seq + 1)) {
      break;
    }
    if (!ReadAt(fd, offset + kHeaderBytes, length, &value, segment.path).ok() ||
        Checksum(header.data() + 8, value) != crc) {
      break;
    }
    held_.push_back(Held{seq, first_seq, offset, length, 0});
    held_bytes_ += length;
    segment.last_seq = seq;
    offset += kHeaderBytes + length;
  }
  if (offset != size) {
    spdlog::warn("returns: {}: cutting {} bytes of a torn record at offset {}", segment.path,
                 size - offset, offset);
    if (ftruncate(fd, static_cast<off_t>(offset)) != 0) {
      absl::Status error = Errno("truncate", segment.path);
      close(fd);
      return error;
    }
  }
  segment.size = offset;
  close(fd);
  return absl::OkStatus();
}

absl::Status UnconfirmedLog::StartSegment(uint64_t first_seq) {
  std::string path = SegmentPath(first_seq);
  int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create", path);
  if (active_fd_ >= 0) close(active_fd_);
  active_fd_ = fd;
  Segment& segment = segments_[first_seq];
  segment.path = std::move(path);
  return absl::OkStatus();
}

absl::Status UnconfirmedLog::Append(uint64_t seq, absl::string_view value, int64_t now_ms) {
  if (seq != next_seq_) {
    return absl::FailedPreconditionError(
        absl::StrCat("unconfirmed log: append of seq ", seq, ", expected ", next_seq_));
  }
  return AppendAll(absl::MakeConstSpan(&value, 1), now_ms);
}

absl::Status UnconfirmedLog::AppendAll(absl::Span<const absl::string_view> values,
                                       int64_t now_ms) {
  const uint64_t first = next_seq_;
  next_seq_ += values.size();
  for (absl::string_view value : values) {
    if (value.size() > kMaxValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat("unconfirmed log: entry of ", value.size(),
                                                     " bytes is larger than any stream entry"));
    }
  }
  // Records go out in runs, each one writev(2) to one segment: a new
  // segment starts before the record that finds the active one full.
  std::vector<char> headers(values.size() * kHeaderBytes);
  std::vector<Held> written;
  written.reserve(values.size());
  std::vector<iovec> iov;
  size_t i = 0;
  while (i < values.size()) {
    if (segments_.rbegin()->second.size >= kSegmentBytes) {
      RETURN_IF_ERROR(StartSegment(first + i));
    }
    auto& [first_seq, segment] = *segments_.rbegin();
    iov.clear();
    uint64_t size = segment.size;
    size_t run_start = i;
    while (i < values.size() && (i == run_start || size < kSegmentBytes) &&
           iov.size() + 2 <= static_cast<size_t>(IOV_MAX)) {
      absl::string_view value = values[i];
      uint64_t seq = first + i;
      char* header = headers.data() + i * kHeaderBytes;
      PutU32(static_cast<uint32_t>(value.size()), header);
      PutU64(seq, header + 8);
      PutU32(Checksum(header + 8, value), header + 4);
      iov.push_back({header, kHeaderBytes});
      if (!value.empty()) iov.push_back({const_cast<char*>(value.data()), value.size()});
      written.push_back(Held{seq, first_seq, size, static_cast<uint32_t>(value.size()), now_ms});
      size += kHeaderBytes + value.size();
      ++i;
    }
    if (absl::Status status = WriteAllV(active_fd_, iov, segment.path); !status.ok()) {
      // A partial record would be cut at the next Open(); later records go
      // to a fresh segment so they are not behind it.
      StartSegment(next_seq_).IgnoreError();
      return status;
    }
    segment.size = size;
    segment.last_seq = first + i - 1;
  }
  for (const Held& held : written) {
    held_.push_back(held);
    held_bytes_ += held.length;
  }
  return absl::OkStatus();
}

void UnconfirmedLog::Abandon(uint64_t seq) {
  for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
    if (it->seq != seq) continue;
    held_bytes_ -= it->length;
    held_.erase(std::next(it).base());
    Segment& segment = segments_.rbegin()->second;
    std::string record(kHeaderBytes, '\0');
    PutU64(seq | kTombstone, record.data() + 8);
    PutU32(Checksum(record.data() + 8, ""), record.data() + 4);
    if (absl::Status written = WriteAll(active_fd_, record, segment.path); !written.ok()) {
      // At worst the entry comes back after a restart and is written
      // twice (once from here, once from the spool): a duplicate.
      spdlog::warn("returns: {}", std::string(written.message()));
      StartSegment(next_seq_).IgnoreError();
      return;
    }
    segment.size += record.size();
    return;
  }
}

void UnconfirmedLog::Confirm(uint64_t through) {
  while (!held_.empty() && held_.front().seq <= through) {
    held_bytes_ -= held_.front().length;
    held_.pop_front();
  }
  // Whole segments below the oldest held entry go; the active one is
  // started afresh (named after next_seq, so the count survives) once all
  // it holds is confirmed and it has grown past a MiB.
  uint64_t keep_from = floor();
  while (segments_.size() > 1) {
    auto first = segments_.begin();
    auto second = std::next(first);
    if (second->first > keep_from) break;
    if (unlink(first->second.path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("returns: {}", std::string(Errno("unlink", first->second.path).message()));
    }
    segments_.erase(first);
  }
  const Segment& active = segments_.rbegin()->second;
  if (held_.empty() && active.size >= (1 << 20)) {
    std::string old_path = active.path;
    uint64_t old_first = segments_.rbegin()->first;
    if (old_first != next_seq_ && StartSegment(next_seq_).ok()) {
      if (unlink(old_path.c_str()) != 0 && errno != ENOENT) {
        spdlog::warn("returns: {}", std::string(Errno("unlink", old_path).message()));
      }
      segments_.erase(old_first);
    }
  }
}

absl::StatusOr<std::vector<UnconfirmedEntry>> UnconfirmedLog::Read(uint64_t after,
                                                                   uint64_t through,
                                                                   size_t max_bytes) const {
  std::vector<UnconfirmedEntry> out;
  size_t bytes = 0;
  int fd = -1;
  uint64_t fd_segment = 0;
  absl::Status status;
  for (const Held& held : held_) {
    if (held.seq <= after) continue;
    if (held.seq > through || (!out.empty() && bytes + held.length > max_bytes)) break;
    if (fd < 0 || fd_segment != held.segment) {
      if (fd >= 0) close(fd);
      auto segment = segments_.find(held.segment);
      if (segment == segments_.end()) {
        status = absl::InternalError(absl::StrCat("unconfirmed log: no segment for ", held.seq));
        break;
      }
      fd = open(segment->second.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        status = Errno("open", segment->second.path);
        break;
      }
      fd_segment = held.segment;
    }
    UnconfirmedEntry entry;
    entry.seq = held.seq;
    status = ReadAt(fd, held.offset + kHeaderBytes, held.length, &entry.value,
                    segments_.at(held.segment).path);
    if (!status.ok()) break;
    bytes += held.length;
    out.push_back(std::move(entry));
  }
  if (fd >= 0) close(fd);
  if (!status.ok()) return status;
  return out;
}

void UnconfirmedLog::Rewritten(uint64_t through, int64_t now_ms) {
  for (Held& held : held_) {
    if (held.seq > through) break;
    held.written_ms = now_ms;
  }
}

int64_t UnconfirmedLog::written_ms(uint64_t seq) const {
  if (held_.empty() || seq < held_.front().seq || seq > held_.back().seq) return 0;
  const Held& held = held_[seq - held_.front().seq];
  return held.seq == seq ? held.written_ms : 0;
}

}  // namespace muster::relay
