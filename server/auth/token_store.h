// TokenStore: API bearer tokens in jobd's SQLite file (table api_tokens,
// schema version 4; docs/SECURITY.md, "Tokens").
//
// A bearer token is "mst_<token_id>_<secret>": token_id is 16 lowercase hex
// digits (8 random bytes), secret 64 lowercase hex digits (32 random bytes
// from libsodium). Only BLAKE2b-256(secret) (crypto_generichash, no key) is
// stored; Verify compares hashes in constant time (sodium_memcmp). A token
// is active until its expiry (if any) or revocation. Thread-safe.
#ifndef MUSTER_SERVER_AUTH_TOKEN_STORE_H_
#define MUSTER_SERVER_AUTH_TOKEN_STORE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/job_store.h"

namespace muster::server::auth {

struct TokenRecord {
  std::string token_id;
  std::string principal;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;  // 0: never
  int64_t revoked_at_ms = 0;  // 0: not revoked
  std::string created_by;
  std::string description;
};

struct NewToken {
  TokenRecord record;
  // The whole bearer token; exists only in this answer.
  std::string bearer;
};

class TokenStore {
 public:
  // `store` must outlive this object.
  explicit TokenStore(JobStore* store);

  // Makes and records a token for `principal` (IsValidPrincipalName);
  // `ttl` zero: never expires, else at most 10 years. InvalidArgument for a
  // bad principal, ttl or a description over 256 bytes.
  absl::StatusOr<NewToken> Create(std::string_view principal, absl::Duration ttl,
                                  std::string_view description, std::string_view created_by,
                                  absl::Time now);
  // Marks the token revoked (idempotent: keeps the first revocation time).
  // NotFound for an unknown id.
  absl::StatusOr<TokenRecord> Revoke(std::string_view token_id, absl::Time now);
  // Tokens by creation time; inactive ones (revoked or expired at `now`)
  // only with `include_inactive`; only `principal`'s when not empty.
  absl::StatusOr<std::vector<TokenRecord>> List(bool include_inactive, std::string_view principal,
                                                absl::Time now);
  // The record of an active token whose secret matches. Unauthenticated
  // (message as Authenticator::Identify documents) otherwise.
  absl::StatusOr<TokenRecord> Verify(std::string_view bearer, absl::Time now);
  // True when no token was ever created (for the bootstrap token file).
  absl::StatusOr<bool> Empty();

 private:
  JobStore* const store_;
};

}  // namespace muster::server::auth

#endif  // MUSTER_SERVER_AUTH_TOKEN_STORE_H_
