#include "server/dashboard/session_store.h"

#include "gtest/gtest.h"

namespace muster::dashboard {
namespace {

using server::auth::AuthMethod;
using server::auth::Principal;

Session SessionOf(const std::string& name) {
  Session session;
  session.principal = Principal{name, AuthMethod::kToken, "0123456789abcdef"};
  session.peer = "dashboard 127.0.0.1:5000";
  session.bearer = "mst_secret";
  return session;
}

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

TEST(SessionStoreTest, CreatedSessionIsFoundByItsIdWithItsOwnCsrfToken) {
  SessionStore store;
  std::string alice = store.Create(SessionOf("alice"), kStart);
  std::string bob = store.Create(SessionOf("bob"), kStart);
  EXPECT_EQ(alice.size(), 64u);
  EXPECT_NE(alice, bob);
  std::optional<Session> found = store.Find(alice, kStart + absl::Minutes(1));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->principal.name, "alice");
  EXPECT_EQ(found->bearer, "mst_secret");
  EXPECT_EQ(found->csrf_token.size(), 64u);
  EXPECT_NE(found->csrf_token, alice);
  EXPECT_NE(found->csrf_token, store.Find(bob, kStart)->csrf_token);
  EXPECT_EQ(found->expires, kStart + absl::Hours(12));
}

TEST(SessionStoreTest, UnknownEmptyAndAlteredIdsFindNothing) {
  SessionStore store;
  std::string id = store.Create(SessionOf("alice"), kStart);
  EXPECT_FALSE(store.Find("", kStart).has_value());
  EXPECT_FALSE(store.Find(RandomHex(32), kStart).has_value());
  std::string altered = id;
  altered[10] = altered[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(store.Find(altered, kStart).has_value());
  EXPECT_FALSE(store.Find(id.substr(0, 63), kStart).has_value());
}

TEST(SessionStoreTest, SessionExpiresAfterItsLifetimeAndIsRemoved) {
  SessionStore store(SessionStoreOptions{absl::Hours(12), 100});
  std::string id = store.Create(SessionOf("alice"), kStart);
  EXPECT_TRUE(store.Find(id, kStart + absl::Hours(12) - absl::Seconds(1)).has_value());
  EXPECT_FALSE(store.Find(id, kStart + absl::Hours(12)).has_value());
  EXPECT_EQ(store.size(), 0);
}

TEST(SessionStoreTest, RemoveEndsOnlyThatSession) {
  SessionStore store;
  std::string alice = store.Create(SessionOf("alice"), kStart);
  std::string bob = store.Create(SessionOf("bob"), kStart);
  store.Remove(alice);
  store.Remove("not-a-session");
  EXPECT_FALSE(store.Find(alice, kStart).has_value());
  EXPECT_TRUE(store.Find(bob, kStart).has_value());
}

TEST(SessionStoreTest, MarkVerifiedRecordsTheRecheck) {
  SessionStore store;
  std::string id = store.Create(SessionOf("alice"), kStart);
  EXPECT_EQ(store.Find(id, kStart)->verified, kStart);
  store.MarkVerified(id, kStart + absl::Seconds(31));
  EXPECT_EQ(store.Find(id, kStart + absl::Seconds(31))->verified, kStart + absl::Seconds(31));
}

TEST(SessionStoreTest, BeyondMaxSessionsTheOldestEnds) {
  SessionStore store(SessionStoreOptions{absl::Hours(12), 2});
  std::string first = store.Create(SessionOf("a"), kStart);
  std::string second = store.Create(SessionOf("b"), kStart + absl::Seconds(1));
  std::string third = store.Create(SessionOf("c"), kStart + absl::Seconds(2));
  EXPECT_EQ(store.size(), 2);
  EXPECT_FALSE(store.Find(first, kStart + absl::Seconds(3)).has_value());
  EXPECT_TRUE(store.Find(second, kStart + absl::Seconds(3)).has_value());
  EXPECT_TRUE(store.Find(third, kStart + absl::Seconds(3)).has_value());
}

TEST(ConstantTimeEqualsTest, EqualOnlyForTheSameBytes) {
  std::string token = RandomHex(32);
  EXPECT_TRUE(ConstantTimeEquals(token, std::string(token)));
  EXPECT_FALSE(ConstantTimeEquals(token, ""));
  EXPECT_FALSE(ConstantTimeEquals("", token));
  EXPECT_FALSE(ConstantTimeEquals(token, token.substr(0, 63)));
  EXPECT_FALSE(ConstantTimeEquals(token, token + "0"));
  std::string last = token;
  last.back() = last.back() == '0' ? '1' : '0';
  EXPECT_FALSE(ConstantTimeEquals(token, last));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(RandomHexTest, GivesLowercaseHexOfTwiceTheBytes) {
  std::string hex = RandomHex(32);
  EXPECT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(hex, RandomHex(32));
}

}  // namespace
}  // namespace muster::dashboard
