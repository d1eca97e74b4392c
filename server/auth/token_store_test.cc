#include "server/auth/token_store.h"

#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::server::auth {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = muster::testing::MakeTempDir("tokens") + "/muster.db";
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    tokens_ = std::make_unique<TokenStore>(store_.get());
  }

  NewToken MustCreate(std::string_view principal, absl::Duration ttl = absl::ZeroDuration()) {
    absl::StatusOr<NewToken> token = tokens_->Create(principal, ttl, "test", "jobd", kNow);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : NewToken{};
  }

  std::string path_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<TokenStore> tokens_;
};

TEST_F(TokenStoreTest, CreatedTokenHasTheDocumentedShapeAndVerifies) {
  EXPECT_TRUE(*tokens_->Empty());
  NewToken token = MustCreate("alice");
  EXPECT_FALSE(*tokens_->Empty());
  ASSERT_EQ(token.bearer.size(), 4u + 16 + 1 + 64);
  EXPECT_TRUE(absl::StartsWith(token.bearer, "mst_" + token.record.token_id + "_"));
  EXPECT_EQ(token.record.principal, "alice");
  EXPECT_EQ(token.record.created_at_ms, absl::ToUnixMillis(kNow));
  EXPECT_EQ(token.record.expires_at_ms, 0);

  absl::StatusOr<TokenRecord> verified = tokens_->Verify(token.bearer, kNow + absl::Hours(1));
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->principal, "alice");
  EXPECT_EQ(verified->token_id, token.record.token_id);
}

TEST_F(TokenStoreTest, TokensAreRandom) {
  std::set<std::string> bearers;
  for (int i = 0; i < 20; ++i) bearers.insert(MustCreate("alice").bearer);
  EXPECT_EQ(bearers.size(), 20u);
}

TEST_F(TokenStoreTest, TheDatabaseHoldsNoSecret) {
  NewToken token = MustCreate("alice");
  const std::string secret = token.bearer.substr(4 + 16 + 1);
  std::string hash;
  ASSERT_TRUE(store_->Read([&](StoreSession& session) -> absl::Status {
    absl::StatusOr<Statement> s = session.db().Prepare("SELECT secret_hash FROM api_tokens");
    if (!s.ok()) return s.status();
    absl::StatusOr<bool> row = s->Step();
    if (!row.ok()) return row.status();
    hash = std::string(s->Blob(0));
    return absl::OkStatus();
  }).ok());
  EXPECT_EQ(hash.size(), 32u);
  EXPECT_EQ(hash.find(secret), std::string::npos);
  EXPECT_EQ(absl::BytesToHexString(hash).find(secret), std::string::npos);
}

TEST_F(TokenStoreTest, WrongSecretAndUnknownIdGiveTheSameMessage) {
  NewToken token = MustCreate("alice");
  std::string wrong = token.bearer;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  absl::StatusOr<TokenRecord> bad_secret = tokens_->Verify(wrong, kNow);
  ASSERT_TRUE(absl::IsUnauthenticated(bad_secret.status())) << bad_secret.status();
  std::string unknown = token.bearer;
  unknown[5] = unknown[5] == '0' ? '1' : '0';
  absl::StatusOr<TokenRecord> bad_id = tokens_->Verify(unknown, kNow);
  ASSERT_TRUE(absl::IsUnauthenticated(bad_id.status())) << bad_id.status();
  EXPECT_EQ(bad_secret.status().message(), "unknown token or wrong secret");
  EXPECT_EQ(bad_id.status().message(), bad_secret.status().message());
}

TEST_F(TokenStoreTest, MalformedBearerIsRefused) {
  NewToken token = MustCreate("alice");
  for (const std::string& bearer :
       {std::string(""), std::string("mst_"), token.bearer + "0", token.bearer.substr(1),
        absl::AsciiStrToUpper(token.bearer), std::string("Bearer ") + token.bearer}) {
    absl::StatusOr<TokenRecord> verified = tokens_->Verify(bearer, kNow);
    ASSERT_TRUE(absl::IsUnauthenticated(verified.status())) << bearer;
    EXPECT_TRUE(absl::StartsWith(verified.status().message(), "malformed bearer token"))
        << verified.status();
  }
}

TEST_F(TokenStoreTest, TokenExpiresAtItsTtl) {
  NewToken token = MustCreate("ci", absl::Hours(1));
  EXPECT_EQ(token.record.expires_at_ms, absl::ToUnixMillis(kNow + absl::Hours(1)));
  EXPECT_TRUE(tokens_->Verify(token.bearer, kNow + absl::Minutes(59)).ok());
  absl::StatusOr<TokenRecord> expired = tokens_->Verify(token.bearer, kNow + absl::Hours(1));
  ASSERT_TRUE(absl::IsUnauthenticated(expired.status()));
  EXPECT_EQ(expired.status().message(),
            absl::StrCat("token ", token.record.token_id, " expired at 2027-01-15T09:00:00Z"));
}

TEST_F(TokenStoreTest, RevokedTokenFailsAtOnceAndRevokeIsIdempotent) {
  NewToken token = MustCreate("alice");
  NewToken other = MustCreate("alice");
  absl::StatusOr<TokenRecord> revoked = tokens_->Revoke(token.record.token_id, kNow);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_at_ms, absl::ToUnixMillis(kNow));
  absl::StatusOr<TokenRecord> verified = tokens_->Verify(token.bearer, kNow);
  ASSERT_TRUE(absl::IsUnauthenticated(verified.status()));
  EXPECT_TRUE(absl::StrContains(verified.status().message(),
                                absl::StrCat("token ", token.record.token_id, " revoked")))
      << verified.status();
  EXPECT_TRUE(tokens_->Verify(other.bearer, kNow).ok()) << "only the revoked token fails";

  absl::StatusOr<TokenRecord> again = tokens_->Revoke(token.record.token_id, kNow + absl::Hours(1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->revoked_at_ms, absl::ToUnixMillis(kNow)) << "keeps the first revocation";
  EXPECT_TRUE(absl::IsNotFound(tokens_->Revoke("0123456789abcdef", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(tokens_->Revoke("nope", kNow).status()));
}

TEST_F(TokenStoreTest, RevocationFromAnotherConnectionAppliesToTheNextVerify) {
  // `jobd token` and jobd share the file: a second JobStore on it.
  NewToken token = MustCreate("alice");
  absl::StatusOr<std::unique_ptr<JobStore>> second = JobStore::Open(path_);
  ASSERT_TRUE(second.ok()) << second.status();
  TokenStore other(second->get());
  ASSERT_TRUE(other.Revoke(token.record.token_id, kNow).ok());
  EXPECT_TRUE(absl::IsUnauthenticated(tokens_->Verify(token.bearer, kNow).status()));
}

TEST_F(TokenStoreTest, ListFiltersInactiveTokensAndPrincipals) {
  NewToken a = MustCreate("alice");
  NewToken b = MustCreate("bob", absl::Seconds(10));
  NewToken c = MustCreate("alice");
  ASSERT_TRUE(tokens_->Revoke(c.record.token_id, kNow).ok());
  const absl::Time later = kNow + absl::Minutes(1);  // b expired

  auto ids = [](const std::vector<TokenRecord>& records) {
    std::vector<std::string> out;
    for (const TokenRecord& r : records) out.push_back(r.token_id);
    return out;
  };
  absl::StatusOr<std::vector<TokenRecord>> active = tokens_->List(false, "", later);
  ASSERT_TRUE(active.ok()) << active.status();
  EXPECT_EQ(ids(*active), std::vector<std::string>{a.record.token_id});
  absl::StatusOr<std::vector<TokenRecord>> all = tokens_->List(true, "", later);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  absl::StatusOr<std::vector<TokenRecord>> bobs = tokens_->List(true, "bob", later);
  ASSERT_TRUE(bobs.ok());
  EXPECT_EQ(ids(*bobs), std::vector<std::string>{b.record.token_id});
  EXPECT_EQ((*bobs)[0].description, "test");
  EXPECT_EQ((*bobs)[0].created_by, "jobd");
}

TEST_F(TokenStoreTest, CreateValidatesItsArguments) {
  EXPECT_TRUE(absl::IsInvalidArgument(tokens_->Create("", absl::ZeroDuration(), "", "x", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      tokens_->Create("insecure", absl::ZeroDuration(), "", "x", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      tokens_->Create("jobd", absl::ZeroDuration(), "", "x", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      tokens_->Create("bad name", absl::ZeroDuration(), "", "x", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      tokens_->Create("alice", absl::Seconds(-1), "", "x", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      tokens_->Create("alice", absl::Hours(24 * 3651), "", "x", kNow).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      tokens_->Create("alice", absl::ZeroDuration(), std::string(257, 'd'), "x", kNow).status()));
  EXPECT_TRUE(*tokens_->Empty());
}

}  // namespace
}  // namespace muster::server::auth
