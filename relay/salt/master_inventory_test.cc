#include "relay/salt/master_inventory.h"

#include "gtest/gtest.h"

namespace muster::relay::salt {
namespace {

TEST(ReadMasterKeysTest, ReadsTheFourKeyStates) {
  auto keys = ReadMasterKeys("relay/salt/testdata/pki");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->accepted, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(keys->pending, (std::vector<std::string>{"m3"}));
  EXPECT_EQ(keys->rejected, (std::vector<std::string>{"m4"}));
  EXPECT_TRUE(keys->denied.empty());
  EXPECT_TRUE(keys->errors.empty());
  EXPECT_TRUE(absl::IsNotFound(ReadMasterKeys("relay/salt/testdata/none").status()));
}

TEST(ReadCachedGrainsTest, FlattensTheCapturedGrains) {
  auto grains = ReadCachedGrains("relay/salt/testdata/cache", "m1");
  ASSERT_TRUE(grains.ok()) << grains.status();
  EXPECT_EQ(grains->at("id"), "m1");
  EXPECT_EQ(grains->at("saltversion"), "3006.1");
  EXPECT_EQ(grains->at("kernel"), "Linux");
  // Numbers and booleans as JSON text, lists as JSON.
  EXPECT_GT(std::stoi(grains->at("num_cpus")), 0);
  EXPECT_EQ(grains->at("saltversioninfo"), "[3006,1]");
  EXPECT_TRUE(grains->at("efi") == "true" || grains->at("efi") == "false");
  EXPECT_EQ(grains->at("ipv4").front(), '[');
}

TEST(ReadCachedGrainsTest, MissingBadOrOversizedFilesAreErrors) {
  EXPECT_TRUE(absl::IsNotFound(ReadCachedGrains("relay/salt/testdata/cache", "m2").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      ReadCachedGrains("relay/salt/testdata/cache", "m1", 64).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ReadCachedGrains("relay/salt/testdata/cache", "../cache").status()));
}

}  // namespace
}  // namespace muster::relay::salt
