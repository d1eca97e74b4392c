#include "server/auth/tls_files.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::server::auth {
namespace {

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path) << content;
  chmod(path.c_str(), mode);
}

TEST(TlsFilesTest, CreatesASelfSignedPairOnceThenLoadsIt) {
  const std::string dir = muster::testing::MakeTempDir("tls");
  absl::StatusOr<TlsFiles> created = LoadOrCreateTlsFiles("", "", dir);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->cert_path, dir + "/jobd_tls.crt");
  EXPECT_EQ(created->key_path, dir + "/jobd_tls.key");
  struct stat st;
  ASSERT_EQ(stat(created->key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(created->fingerprint.size(), 32u * 3 - 1);

  absl::StatusOr<TlsFiles> loaded = LoadOrCreateTlsFiles("", "", dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->created);
  EXPECT_EQ(loaded->fingerprint, created->fingerprint);
  EXPECT_EQ(loaded->cert_pem, created->cert_pem);
}

TEST(TlsFilesTest, RefusesAKeyOthersCanReadAndAHalfPair) {
  const std::string dir = muster::testing::MakeTempDir("tls");
  ASSERT_TRUE(LoadOrCreateTlsFiles("", "", dir).ok());
  chmod((dir + "/jobd_tls.key").c_str(), 0644);
  EXPECT_TRUE(absl::IsPermissionDenied(LoadOrCreateTlsFiles("", "", dir).status()));
  unlink((dir + "/jobd_tls.key").c_str());
  absl::Status half = LoadOrCreateTlsFiles("", "", dir).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(half)) << half;
  EXPECT_TRUE(absl::IsInvalidArgument(LoadOrCreateTlsFiles(dir + "/x.crt", "", dir).status()));
}

TEST(TlsFilesTest, GivenFilesMustParseAndBelongTogether) {
  const std::string dir = muster::testing::MakeTempDir("tls");
  absl::StatusOr<PemPair> a = MakeCertificate("a", {"localhost"}, nullptr, true);
  absl::StatusOr<PemPair> b = MakeCertificate("b", {"localhost"}, nullptr, true);
  ASSERT_TRUE(a.ok() && b.ok());
  WriteFile(dir + "/a.crt", a->cert_pem, 0644);
  WriteFile(dir + "/a.key", a->key_pem, 0600);
  WriteFile(dir + "/b.key", b->key_pem, 0600);
  WriteFile(dir + "/junk", "not pem", 0600);
  absl::StatusOr<TlsFiles> ok = LoadOrCreateTlsFiles(dir + "/a.crt", dir + "/a.key", "");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_FALSE(ok->created);
  absl::Status mismatch = LoadOrCreateTlsFiles(dir + "/a.crt", dir + "/b.key", "").status();
  EXPECT_TRUE(absl::IsInvalidArgument(mismatch));
  EXPECT_TRUE(absl::StrContains(mismatch.message(), "is not the private key")) << mismatch;
  EXPECT_TRUE(
      absl::IsInvalidArgument(LoadOrCreateTlsFiles(dir + "/junk", dir + "/a.key", "").status()));
  EXPECT_TRUE(absl::IsNotFound(LoadOrCreateTlsFiles(dir + "/none", dir + "/a.key", "").status()));
}

TEST(TlsFilesTest, IssuedCertificateNamesItsIssuer) {
  absl::StatusOr<PemPair> ca = MakeCertificate("test-ca", {}, nullptr, true);
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<PemPair> client = MakeCertificate("ci-deploy", {}, &*ca, false);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_NE(*CertificateFingerprint(client->cert_pem), *CertificateFingerprint(ca->cert_pem));
}

}  // namespace
}  // namespace muster::server::auth
