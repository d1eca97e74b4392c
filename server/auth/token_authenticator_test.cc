#include "server/auth/token_authenticator.h"

#include <memory>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::server::auth {
namespace {

class TokenAuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<JobStore>> store =
        JobStore::Open(muster::testing::MakeTempDir("authn") + "/muster.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    tokens_ = std::make_unique<TokenStore>(store_.get());
    authenticator_ = std::make_unique<TokenAuthenticator>(tokens_.get(), [this] { return now_; });
    absl::StatusOr<NewToken> token =
        tokens_->Create("alice", absl::Seconds(30), "", "jobd", now_);
    ASSERT_TRUE(token.ok()) << token.status();
    token_ = *token;
  }

  absl::StatusOr<Principal> Identify(std::optional<std::string_view> authorization,
                                     std::optional<std::string_view> cn = std::nullopt) {
    return authenticator_->IdentifyParts(authorization, cn);
  }

  absl::Time now_ = absl::FromUnixSeconds(1800000000);
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<TokenStore> tokens_;
  std::unique_ptr<TokenAuthenticator> authenticator_;
  NewToken token_;
};

TEST_F(TokenAuthenticatorTest, BearerTokenGivesItsPrincipal) {
  const std::string header = "Bearer " + token_.bearer;
  absl::StatusOr<Principal> principal = Identify(header);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "alice");
  EXPECT_EQ(principal->method, AuthMethod::kToken);
  EXPECT_EQ(principal->token_id, token_.record.token_id);
  const std::string lower = "bearer " + token_.bearer;
  EXPECT_TRUE(Identify(lower).ok()) << "the scheme is case-insensitive";
  EXPECT_TRUE(authenticator_->FromBearerToken(token_.bearer).ok());
}

TEST_F(TokenAuthenticatorTest, NothingPresentedIsRefusedWithAnActionableMessage) {
  absl::StatusOr<Principal> principal = Identify(std::nullopt);
  ASSERT_TRUE(absl::IsUnauthenticated(principal.status()));
  EXPECT_TRUE(absl::StartsWith(principal.status().message(),
                               "no bearer token or client certificate"))
      << principal.status();
}

TEST_F(TokenAuthenticatorTest, WrongSchemeIsMalformed) {
  const std::string header = "Basic " + token_.bearer;
  absl::StatusOr<Principal> principal = Identify(header);
  ASSERT_TRUE(absl::IsUnauthenticated(principal.status()));
  EXPECT_TRUE(absl::StartsWith(principal.status().message(), "malformed bearer token"));
}

TEST_F(TokenAuthenticatorTest, ExpiryFollowsTheClock) {
  const std::string header = "Bearer " + token_.bearer;
  now_ += absl::Seconds(29);
  EXPECT_TRUE(Identify(header).ok());
  now_ += absl::Seconds(1);
  absl::StatusOr<Principal> principal = Identify(header);
  ASSERT_TRUE(absl::IsUnauthenticated(principal.status()));
  EXPECT_TRUE(absl::StrContains(principal.status().message(), "expired at"));
}

TEST_F(TokenAuthenticatorTest, CertificateCommonNameIsThePrincipalWhenNoToken) {
  absl::StatusOr<Principal> principal = Identify(std::nullopt, "ci-deploy");
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "ci-deploy");
  EXPECT_EQ(principal->method, AuthMethod::kCertificate);

  absl::StatusOr<Principal> bad = Identify(std::nullopt, "Evil Corp / admin");
  ASSERT_TRUE(absl::IsUnauthenticated(bad.status()));
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "not a valid principal name"));
  EXPECT_TRUE(absl::IsUnauthenticated(Identify(std::nullopt, "insecure").status()));
}

TEST_F(TokenAuthenticatorTest, ABadTokenIsRefusedEvenWithAGoodCertificate) {
  std::string wrong = "Bearer " + token_.bearer;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_TRUE(absl::IsUnauthenticated(Identify(wrong, "alice").status()));
}

TEST(TokenIdOfTest, OnlyWellFormedTokensHaveAnId) {
  const std::string id = "0123456789abcdef";
  const std::string bearer = "mst_" + id + "_" + std::string(64, 'a');
  EXPECT_EQ(TokenIdOf(bearer), id);
  EXPECT_EQ(TokenIdOf(bearer.substr(1)), "");
  EXPECT_EQ(TokenIdOf(bearer + "a"), "");
  EXPECT_EQ(TokenIdOf("mst_0123456789ABCDEF_" + std::string(64, 'a')), "");
  EXPECT_EQ(TokenIdOf(""), "");
}

}  // namespace
}  // namespace muster::server::auth
