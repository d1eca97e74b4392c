// Why the table holds what it holds: a bearer token is a password that jobd
// makes, so it is stored like one. The token id (8 random bytes) is the
// public half, the row's key, and what the audit log and ListTokens show;
// the secret (32 random bytes) is kept only as BLAKE2b-256 of its bytes. A
// keyed or slow hash buys nothing here: the secret has 256 bits of entropy,
// so nothing can be guessed from a stolen hash.
//
// Verify reads the row on every call (no cache), so a revocation committed
// by Revoke, or by `jobd token create` in another process, applies to the
// very next call. It checks the secret before it tells a revoked or expired
// token apart, so nobody learns a token's state without its secret.
#include "server/auth/token_store.h"

#include <sodium.h>

#include <array>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/security/signing_keys.h"
#include "common/status/status_macros.h"
#include "server/auth/principal.h"

namespace muster::server::auth {
namespace {

constexpr size_t kTokenIdBytes = 8;
constexpr size_t kSecretBytes = 32;
constexpr size_t kMaxDescriptionBytes = 256;
constexpr absl::Duration kMaxTtl = absl::Hours(24 * 3650);
constexpr char kPrefix[] = "mst_";

constexpr char kSelectTokensSql[] =
    "SELECT token_id, principal, created_at_ms, expires_at_ms, revoked_at_ms, created_by,"
    " description FROM api_tokens"
    " WHERE (?1 = '' OR principal = ?1)"
    " AND (?2 OR (revoked_at_ms = 0 AND (expires_at_ms = 0 OR expires_at_ms > ?3)))"
    " ORDER BY created_at_ms, token_id";
constexpr char kSelectTokenSql[] =
    "SELECT token_id, principal, created_at_ms, expires_at_ms, revoked_at_ms, created_by,"
    " description, secret_hash FROM api_tokens WHERE token_id = ?";

// Debian's Abseil has its own string_view; SQLite binds and absl helpers
// take that one.
absl::string_view AsAbsl(std::string_view text) { return {text.data(), text.size()}; }

using Hash = std::array<unsigned char, crypto_generichash_BYTES>;

Hash HashSecret(std::string_view secret_bytes) {
  Hash hash;
  crypto_generichash(hash.data(), hash.size(),
                     reinterpret_cast<const unsigned char*>(secret_bytes.data()),
                     secret_bytes.size(), nullptr, 0);
  return hash;
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return absl::BytesToHexString(raw);
}

bool IsLowerHex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

// The columns every SELECT here starts with.
TokenRecord ReadRecord(const Statement& s) {
  TokenRecord record;
  record.token_id = std::string(s.Text(0));
  record.principal = std::string(s.Text(1));
  record.created_at_ms = s.Int(2);
  record.expires_at_ms = s.Int(3);
  record.revoked_at_ms = s.Int(4);
  record.created_by = std::string(s.Text(5));
  record.description = std::string(s.Text(6));
  return record;
}

// The row of `token_id` (and its secret hash), or NotFound.
absl::StatusOr<std::pair<TokenRecord, std::string>> FindToken(StoreSession& session,
                                                              std::string_view token_id) {
  ASSIGN_OR_RETURN(Statement * s, session.db().Cached(kSelectTokenSql));
  s->BindText(1, AsAbsl(token_id));
  ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) {
    s->Reset();
    return absl::NotFoundError(absl::StrCat("no token with id '", AsAbsl(token_id), "'"));
  }
  std::pair<TokenRecord, std::string> found{ReadRecord(*s), std::string(s->Blob(7))};
  s->Reset();
  return found;
}

std::string FormatTime(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

}  // namespace

TokenStore::TokenStore(JobStore* store) : store_(store) {}

absl::StatusOr<NewToken> TokenStore::Create(std::string_view principal, absl::Duration ttl,
                                            std::string_view description,
                                            std::string_view created_by, absl::Time now) {
  if (!IsValidPrincipalName(principal)) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal '", absl::CHexEscape(AsAbsl(principal)),
                     "': must be 1..64 bytes of [A-Za-z0-9._@-], not starting with '-', and not "
                     "'insecure' or 'jobd'"));
  }
  if (ttl < absl::ZeroDuration() || ttl > kMaxTtl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl ", absl::FormatDuration(ttl), ": must be 0 (never expires) up to 10 years"));
  }
  if (description.size() > kMaxDescriptionBytes) {
    return absl::InvalidArgumentError(absl::StrCat("description: ", description.size(),
                                                   " bytes, at most ", kMaxDescriptionBytes));
  }
  RETURN_IF_ERROR(security::InitSodium());
  NewToken token;
  TokenRecord& record = token.record;
  record.token_id = RandomHex(kTokenIdBytes);
  record.principal = std::string(principal);
  record.created_at_ms = absl::ToUnixMillis(now);
  record.expires_at_ms = ttl == absl::ZeroDuration() ? 0 : absl::ToUnixMillis(now + ttl);
  record.created_by = std::string(created_by);
  record.description = std::string(description);
  std::string secret(kSecretBytes, '\0');
  randombytes_buf(secret.data(), secret.size());
  const Hash hash = HashSecret(secret);
  token.bearer = absl::StrCat(kPrefix, record.token_id, "_", absl::BytesToHexString(secret));
  sodium_memzero(secret.data(), secret.size());

  const absl::string_view hash_blob(reinterpret_cast<const char*>(hash.data()), hash.size());
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(Statement * s, session.db().Cached(
        "INSERT INTO api_tokens(token_id, principal, secret_hash, created_at_ms, expires_at_ms,"
        " revoked_at_ms, created_by, description) VALUES(?,?,?,?,?,0,?,?)"));
    s->BindText(1, record.token_id).BindText(2, record.principal).BindBlob(3, hash_blob);
    s->Bind(4, record.created_at_ms).Bind(5, record.expires_at_ms);
    s->BindText(6, record.created_by).BindText(7, record.description);
    return s->Run();
  }));
  return token;
}

absl::StatusOr<TokenRecord> TokenStore::Revoke(std::string_view token_id, absl::Time now) {
  if (!IsLowerHex(token_id, 2 * kTokenIdBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token id '", absl::CHexEscape(AsAbsl(token_id)), "': must be 16 lowercase hex digits"));
  }
  TokenRecord record;
  RETURN_IF_ERROR(store_->Write([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(auto found, FindToken(session, token_id));
    record = std::move(found.first);
    if (record.revoked_at_ms != 0) return absl::OkStatus();
    record.revoked_at_ms = absl::ToUnixMillis(now);
    ASSIGN_OR_RETURN(Statement * s, session.db().Cached(
        "UPDATE api_tokens SET revoked_at_ms = ? WHERE token_id = ? AND revoked_at_ms = 0"));
    s->Bind(1, record.revoked_at_ms).BindText(2, record.token_id);
    return s->Run();
  }));
  return record;
}

absl::StatusOr<std::vector<TokenRecord>> TokenStore::List(bool include_inactive,
                                                          std::string_view principal,
                                                          absl::Time now) {
  std::vector<TokenRecord> records;
  RETURN_IF_ERROR(store_->Read([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(Statement * s, session.db().Cached(kSelectTokensSql));
    s->BindText(1, AsAbsl(principal)).Bind(2, include_inactive ? 1 : 0).Bind(3, absl::ToUnixMillis(now));
    return ForEachRow(*s, [&] {
      records.push_back(ReadRecord(*s));
      return absl::OkStatus();
    });
  }));
  return records;
}

absl::StatusOr<TokenRecord> TokenStore::Verify(std::string_view bearer, absl::Time now) {
  // "mst_" 16 hex "_" 64 hex.
  constexpr size_t kIdAt = sizeof(kPrefix) - 1;
  constexpr size_t kSecretAt = kIdAt + 2 * kTokenIdBytes + 1;
  if (bearer.size() != kSecretAt + 2 * kSecretBytes || bearer.substr(0, kIdAt) != kPrefix ||
      bearer[kSecretAt - 1] != '_' || !IsLowerHex(bearer.substr(kIdAt, 2 * kTokenIdBytes), 16) ||
      !IsLowerHex(bearer.substr(kSecretAt), 2 * kSecretBytes)) {
    return absl::UnauthenticatedError(
        "malformed bearer token (expected mst_<16 hex digits>_<64 hex digits>)");
  }
  RETURN_IF_ERROR(security::InitSodium());
  const std::string_view token_id = bearer.substr(kIdAt, 2 * kTokenIdBytes);
  std::string secret = absl::HexStringToBytes(AsAbsl(bearer.substr(kSecretAt)));
  const Hash presented = HashSecret(secret);
  sodium_memzero(secret.data(), secret.size());

  absl::StatusOr<std::pair<TokenRecord, std::string>> found;
  RETURN_IF_ERROR(store_->Read([&](StoreSession& session) -> absl::Status {
    found = FindToken(session, token_id);
    return found.ok() || absl::IsNotFound(found.status()) ? absl::OkStatus() : found.status();
  }));
  const bool matches = found.ok() && found->second.size() == presented.size() &&
                       sodium_memcmp(found->second.data(), presented.data(), presented.size()) == 0;
  if (!matches) return absl::UnauthenticatedError("unknown token or wrong secret");
  TokenRecord& record = found->first;
  if (record.revoked_at_ms != 0) {
    return absl::UnauthenticatedError(absl::StrCat("token ", record.token_id, " revoked at ",
                                                   FormatTime(record.revoked_at_ms)));
  }
  if (record.expires_at_ms != 0 && record.expires_at_ms <= absl::ToUnixMillis(now)) {
    return absl::UnauthenticatedError(absl::StrCat("token ", record.token_id, " expired at ",
                                                   FormatTime(record.expires_at_ms)));
  }
  return std::move(record);
}

absl::StatusOr<bool> TokenStore::Empty() {
  int64_t count = 0;
  RETURN_IF_ERROR(store_->Read([&](StoreSession& session) -> absl::Status {
    ASSIGN_OR_RETURN(count, session.db().QueryInt("SELECT count(*) FROM api_tokens"));
    return absl::OkStatus();
  }));
  return count == 0;
}

}  // namespace muster::server::auth
