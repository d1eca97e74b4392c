#include "relay/salt/master_config.h"

#include "gtest/gtest.h"

namespace muster::relay::salt {
namespace {

TEST(MasterConfigTest, ReadsTheTestMastersConfig) {
  auto config = LoadMasterConfig("relay/salt/testdata/master.conf");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ret_port, 42985);
  EXPECT_EQ(config->interface, "127.0.0.1");
  EXPECT_EQ(config->cachedir, "/tmp/sw/c/master/cache");
  EXPECT_EQ(config->sock_dir, "/tmp/sw/c/master/sock");
  EXPECT_EQ(config->pki_dir, "/tmp/sw/c/master/pki");
  EXPECT_EQ(config->user, "root");
  EXPECT_EQ(config->hash_type, "sha256");
  EXPECT_EQ(config->RequestUri(), "tcp://127.0.0.1:42985");
  EXPECT_EQ(config->EventPublisherPath(), "/tmp/sw/c/master/sock/master_event_pub.ipc");
  EXPECT_EQ(config->KeyFilePath("root"), "/tmp/sw/c/master/cache/.root_key");
}

TEST(MasterConfigTest, DefaultsAreSaltsWithRootDirPrepended) {
  auto config = ParseMasterConfig("root_dir: /srv/salt\n");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->cachedir, "/srv/salt/var/cache/salt/master");
  EXPECT_EQ(config->sock_dir, "/srv/salt/var/run/salt/master");
  EXPECT_EQ(config->pki_dir, "/srv/salt/etc/salt/pki/master");
  EXPECT_EQ(config->ret_port, 4506);
  EXPECT_EQ(config->RequestUri(), "tcp://127.0.0.1:4506");  // 0.0.0.0 -> loopback
  auto plain = ParseMasterConfig("");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->cachedir, "/var/cache/salt/master");
}

TEST(MasterConfigTest, QuotesCommentsAndNestedLinesAreHandled) {
  auto config = ParseMasterConfig(
      "# a comment\n"
      "ret_port: '5506'  \n"
      "interface: \"::1\"\n"
      "hash_type: SHA512 # stronger\n"
      "file_roots:\n"
      "  base:\n"
      "    - /srv/salt\n"
      "  cachedir: /nested/ignored\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ret_port, 5506);
  EXPECT_EQ(config->RequestUri(), "tcp://[::1]:5506");
  EXPECT_EQ(config->hash_type, "sha512");
  EXPECT_EQ(config->cachedir, "/var/cache/salt/master");
}

TEST(MasterConfigTest, BadValuesNameTheLine) {
  auto config = ParseMasterConfig("user: salt\nret_port: http\n");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseMasterConfig("hash_type: crc32\n").ok());
  EXPECT_TRUE(absl::IsNotFound(LoadMasterConfig("/nonexistent/master").status()));
}

}  // namespace
}  // namespace muster::relay::salt
