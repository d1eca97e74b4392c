#include "server/dashboard/session_store.h"

#include <sodium.h>

#include <algorithm>
#include <vector>

namespace muster::dashboard {

std::string RandomHex(int bytes) {
  // sodium_init() is idempotent and thread-safe; it only fails when no
  // entropy source exists, and then randombytes_buf would abort anyway.
  if (sodium_init() < 0) std::abort();
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string hex(2 * raw.size() + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), raw.data(), raw.size());
  hex.pop_back();
  return hex;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

SessionStore::SessionStore(SessionStoreOptions options) : options_(options) {}

SessionStore::Key SessionStore::KeyOf(absl::string_view id) {
  unsigned char hash[crypto_generichash_BYTES];
  crypto_generichash(hash, sizeof(hash), reinterpret_cast<const unsigned char*>(id.data()),
                     id.size(), nullptr, 0);
  return Key(reinterpret_cast<const char*>(hash), sizeof(hash));
}

std::string SessionStore::Create(Session session, absl::Time now) {
  std::string id = RandomHex(32);
  session.csrf_token = RandomHex(32);
  session.created = now;
  session.expires = now + options_.lifetime;
  session.verified = now;
  absl::MutexLock lock(&mutex_);
  while (static_cast<int>(sessions_.size()) >= options_.max_sessions) EvictOldestLocked();
  sessions_[KeyOf(id)] = std::move(session);
  return id;
}

std::optional<Session> SessionStore::Find(absl::string_view id, absl::Time now) {
  if (id.empty()) return std::nullopt;
  Key key = KeyOf(id);
  absl::MutexLock lock(&mutex_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (now >= it->second.expires) {
    sessions_.erase(it);
    return std::nullopt;
  }
  return it->second;
}

void SessionStore::MarkVerified(absl::string_view id, absl::Time now) {
  Key key = KeyOf(id);
  absl::MutexLock lock(&mutex_);
  auto it = sessions_.find(key);
  if (it != sessions_.end()) it->second.verified = now;
}

void SessionStore::Remove(absl::string_view id) {
  Key key = KeyOf(id);
  absl::MutexLock lock(&mutex_);
  sessions_.erase(key);
}

int SessionStore::size() const {
  absl::MutexLock lock(&mutex_);
  return static_cast<int>(sessions_.size());
}

void SessionStore::EvictOldestLocked() {
  // A linear scan: it runs only when max_sessions logins are live.
  auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
    return a.second.created < b.second.created;
  });
  if (oldest != sessions_.end()) sessions_.erase(oldest);
}

}  // namespace muster::dashboard
