// SessionStore: the dashboard's logged-in sessions, in memory
// (docs/SECURITY.md 7.6).
//
// A session is created by a login (a bearer token on the login form, a
// verified client certificate, or an --insecure dashboard) and named by an
// opaque id: 32 random bytes (libsodium), as 64 hex digits, which the
// browser holds in an HttpOnly cookie. The store keys sessions by the
// BLAKE2b hash of the id, so a lookup's timing says nothing about the ids
// it holds. Each session has its own CSRF token (32 random bytes, hex)
// that every POST must echo. Sessions end after `lifetime` (12 h), on
// logout, or when the server decides they must (a revoked token); they
// are lost when jobd restarts (users log in again). At most
// `max_sessions` exist: a login past that ends the oldest. Thread-safe.
#ifndef MUSTER_SERVER_DASHBOARD_SESSION_STORE_H_
#define MUSTER_SERVER_DASHBOARD_SESSION_STORE_H_

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth/principal.h"

namespace muster::dashboard {

struct Session {
  server::auth::Principal principal;
  // "dashboard <client address>", as the audit log records it.
  std::string peer;
  std::string csrf_token;
  // For a token login: the bearer token, kept (in memory only) to verify
  // again that it is still active.
  std::string bearer;
  absl::Time created;
  absl::Time expires;
  // When the token was last verified (the login, then re-checks).
  absl::Time verified;
};

struct SessionStoreOptions {
  absl::Duration lifetime = absl::Hours(12);
  int max_sessions = 10000;
};

// 2 * `bytes` lowercase hex digits from libsodium's CSPRNG.
std::string RandomHex(int bytes);

// True when `a` and `b` are equal; the time taken depends only on their
// lengths (sodium_memcmp), so a CSRF token cannot be guessed byte by byte.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class SessionStore {
 public:
  explicit SessionStore(SessionStoreOptions options = {});

  // Records `session` (its csrf_token, created, expires and verified are
  // set here) and returns its id, the cookie value.
  std::string Create(Session session, absl::Time now);
  // The live session named `id`; nullopt for an unknown or expired id
  // (an expired one is removed).
  std::optional<Session> Find(absl::string_view id, absl::Time now);
  // Sets the session's `verified` time (after a successful re-check).
  void MarkVerified(absl::string_view id, absl::Time now);
  // Ends the session (logout, revoked token). Unknown ids are ignored.
  void Remove(absl::string_view id);
  // Live sessions, expired ones included until they are looked up or
  // pushed out.
  int size() const;

 private:
  using Key = std::string;  // BLAKE2b-256 of the id
  static Key KeyOf(absl::string_view id);
  void EvictOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const SessionStoreOptions options_;
  mutable absl::Mutex mutex_;
  absl::flat_hash_map<Key, Session> sessions_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_SESSION_STORE_H_
