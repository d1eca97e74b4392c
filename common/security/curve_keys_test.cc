#include "common/security/curve_keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace muster::security {
namespace {

TEST(CurveKeysTest, PairIsCreatedPrivatelyOnceAndItsPublicKeyPublished) {
  std::string pattern = absl::StrCat(::testing::TempDir(), "/curveXXXXXX");
  std::string dir = mkdtemp(pattern.data());
  absl::StatusOr<CurveKeyPair> pair =
      LoadOrCreateCurveKeyPair(dir + "/minion_curve.key", dir + "/minion_curve.pub");
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_EQ(pair->public_z85.size(), 40u);
  struct stat info;
  ASSERT_EQ(stat((dir + "/minion_curve.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  absl::StatusOr<CurveKeyPair> again = LoadOrCreateCurveKeyPair(dir + "/minion_curve.key", "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_z85, pair->public_z85);
  EXPECT_EQ(again->secret_z85, pair->secret_z85);
  absl::StatusOr<std::string> published = ReadCurvePublicKey(dir + "/minion_curve.pub");
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(*published, pair->public_z85);
  EXPECT_EQ(*ReadCurvePublicKey(pair->public_z85), pair->public_z85);
  EXPECT_EQ(CurveFingerprint(pair->public_z85).size(), 16u);
  chmod((dir + "/minion_curve.key").c_str(), 0640);
  EXPECT_EQ(LoadOrCreateCurveKeyPair(dir + "/minion_curve.key", "").status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(CurveKeysTest, MismatchedOrMalformedPairsAreRefused) {
  std::string pattern = absl::StrCat(::testing::TempDir(), "/curveXXXXXX");
  std::string dir = mkdtemp(pattern.data());
  CurveKeyPair a = *GenerateCurveKeyPair();
  CurveKeyPair b = *GenerateCurveKeyPair();
  std::string path = dir + "/mixed.key";
  std::ofstream(path) << "public " << a.public_z85 << "\nsecret " << b.secret_z85 << "\n";
  chmod(path.c_str(), 0600);
  EXPECT_EQ(LoadOrCreateCurveKeyPair(path, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ValidateCurvePublicKey("short").ok());
  EXPECT_FALSE(ValidateCurvePublicKey(std::string(40, '~')).ok() &&
               ValidateCurvePublicKey(std::string(40, '"')).ok());
  EXPECT_TRUE(ValidateCurvePublicKey(a.public_z85).ok());
}

}  // namespace
}  // namespace muster::security
