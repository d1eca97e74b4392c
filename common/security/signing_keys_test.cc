#include "common/security/signing_keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster::security {
namespace {

std::string TempDir() {
  std::string pattern = absl::StrCat(::testing::TempDir(), "/keysXXXXXX");
  return mkdtemp(pattern.data());
}

void Write(const std::string& path, const std::string& content, mode_t mode = 0644) {
  std::ofstream(path) << content;
  chmod(path.c_str(), mode);
}

TEST(SigningKeyTest, CreatedOnceWithPrivateModeThenLoadedUnchanged) {
  std::string dir = TempDir();
  std::string path = dir + "/jobd_signing.key";
  absl::StatusOr<SigningKey> created = SigningKey::LoadOrCreate(path);
  ASSERT_TRUE(created.ok()) << created.status();
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  absl::StatusOr<SigningKey> again = SigningKey::LoadOrCreate(path);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->key_id(), created->key_id());
  std::ifstream pub(path + ".pub");
  std::string line;
  std::getline(pub, line);
  EXPECT_EQ(line, PublicKeyHex(created->public_key()));
  EXPECT_EQ(created->key_id().size(), 16u);
}

TEST(SigningKeyTest, RefusesAKeyOthersCanReadAndAMalformedOne) {
  std::string dir = TempDir();
  std::string path = dir + "/k";
  ASSERT_TRUE(SigningKey::LoadOrCreate(path).ok());
  chmod(path.c_str(), 0644);
  absl::StatusOr<SigningKey> loose = SigningKey::LoadOrCreate(path);
  EXPECT_EQ(loose.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos);
  Write(dir + "/bad", "not hex\n", 0600);
  absl::StatusOr<SigningKey> bad = SigningKey::Load(dir + "/bad");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::Load(dir + "/missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(TrustedKeysTest, FileAndInlineKeysReloadWhenTheFileChanges) {
  std::string dir = TempDir();
  SigningKey a = SigningKey::Generate();
  SigningKey b = SigningKey::Generate();
  SigningKey c = SigningKey::Generate();
  std::string file = dir + "/trusted";
  Write(file, absl::StrCat("# jobd\n\n", PublicKeyHex(a.public_key()), "\n"));
  auto trusted = TrustedKeys::Create(file, {PublicKeyHex(c.public_key())});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  PublicKey found;
  EXPECT_TRUE((*trusted)->Find(a.key_id(), &found));
  EXPECT_EQ(found, a.public_key());
  EXPECT_TRUE((*trusted)->Find(c.key_id(), &found));
  EXPECT_FALSE((*trusted)->Find(b.key_id(), &found));
  EXPECT_EQ(*(*trusted)->ReloadIfChanged(), false);
  // Rotation: b added, then a removed.
  Write(file, absl::StrCat(PublicKeyHex(a.public_key()), "\n", PublicKeyHex(b.public_key()),
                           "\n# new key added 2026-12-06\n"));
  EXPECT_EQ(*(*trusted)->ReloadIfChanged(), true);
  EXPECT_TRUE((*trusted)->Find(b.key_id(), &found));
  EXPECT_EQ((*trusted)->size(), 3u);
  Write(file, absl::StrCat(PublicKeyHex(b.public_key()), "\n"));
  EXPECT_EQ(*(*trusted)->ReloadIfChanged(), true);
  EXPECT_FALSE((*trusted)->Find(a.key_id(), &found));
  // A broken file keeps the previous keys and says which line is wrong.
  Write(file, absl::StrCat(PublicKeyHex(b.public_key()), "\nxyz\n"));
  absl::StatusOr<bool> broken = (*trusted)->ReloadIfChanged();
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("line 2"), std::string::npos);
  EXPECT_TRUE((*trusted)->Find(b.key_id(), &found));
}

TEST(TrustedKeysTest, AFileEmptiedByAReloadKeepsThePreviousKeys) {
  std::string dir = TempDir();
  SigningKey a = SigningKey::Generate();
  std::string file = dir + "/trusted";
  Write(file, absl::StrCat(PublicKeyHex(a.public_key()), "\n"));
  auto trusted = TrustedKeys::Create(file, {});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  Write(file, "# being rewritten\n");
  absl::StatusOr<bool> emptied = (*trusted)->ReloadIfChanged();
  ASSERT_FALSE(emptied.ok());
  EXPECT_NE(emptied.status().message().find("holds no key"), std::string::npos);
  PublicKey found;
  EXPECT_TRUE((*trusted)->Find(a.key_id(), &found));
}

TEST(TrustedKeysTest, NoKeyAtAllIsAnError) {
  std::string dir = TempDir();
  Write(dir + "/empty", "# nothing\n");
  EXPECT_FALSE(TrustedKeys::Create(dir + "/empty", {}).ok());
  EXPECT_FALSE(TrustedKeys::Create("", {}).ok());
  EXPECT_FALSE(TrustedKeys::Create("", {"abc"}).ok());
  EXPECT_FALSE(TrustedKeys::Create(dir + "/missing", {}).ok());
}

TEST(SigningKeyTest, SignaturesVerifyOnlyWithTheirKeyAndMessage) {
  SigningKey a = SigningKey::Generate();
  SigningKey b = SigningKey::Generate();
  std::string signature = a.Sign("hello");
  EXPECT_TRUE(VerifySignature(a.public_key(), "hello", signature));
  EXPECT_FALSE(VerifySignature(b.public_key(), "hello", signature));
  EXPECT_FALSE(VerifySignature(a.public_key(), "hellO", signature));
  EXPECT_FALSE(VerifySignature(a.public_key(), "hello", signature.substr(1)));
}

}  // namespace
}  // namespace muster::security
