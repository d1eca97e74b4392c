#include "minion/grains.h"

#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::minion {
namespace {

TEST(GrainsTest, FlagParsesPairsAndTrims) {
  absl::StatusOr<Grains> grains = ParseGrainsFlag(" role = web ,os=debian,empty=");
  ASSERT_TRUE(grains.ok()) << grains.status();
  EXPECT_EQ(grains->size(), 3u);
  EXPECT_EQ(grains->at("role"), "web");
  EXPECT_EQ(grains->at("os"), "debian");
  EXPECT_EQ(grains->at("empty"), "");
}

TEST(GrainsTest, EmptyFlagGivesNoGrains) {
  absl::StatusOr<Grains> grains = ParseGrainsFlag("  ");
  ASSERT_TRUE(grains.ok());
  EXPECT_TRUE(grains->empty());
}

TEST(GrainsTest, FlagRejectsItemsWithoutKey) {
  EXPECT_FALSE(ParseGrainsFlag("role").ok());
  EXPECT_FALSE(ParseGrainsFlag("=web").ok());
  EXPECT_FALSE(ParseGrainsFlag("role=web,,os=x").ok());
}

TEST(GrainsTest, FileOfLinesSkipsCommentsAndBlanks) {
  absl::StatusOr<Grains> grains =
      ParseGrainsFile("# facts\n\nrole=db\n  rack = r7  \n");
  ASSERT_TRUE(grains.ok()) << grains.status();
  EXPECT_EQ(grains->size(), 2u);
  EXPECT_EQ(grains->at("rack"), "r7");
}

TEST(GrainsTest, FileLineErrorNamesTheLine) {
  absl::StatusOr<Grains> grains = ParseGrainsFile("role=db\nbroken\n");
  ASSERT_FALSE(grains.ok());
  EXPECT_NE(grains.status().message().find("line 2"), std::string::npos);
}

TEST(GrainsTest, FileAsJsonObject) {
  absl::StatusOr<Grains> grains =
      ParseGrainsFile(R"( {"role": "web", "cores": 8, "virtual": true} )");
  ASSERT_TRUE(grains.ok()) << grains.status();
  EXPECT_EQ(grains->at("role"), "web");
  EXPECT_EQ(grains->at("cores"), "8");
  EXPECT_EQ(grains->at("virtual"), "true");
}

TEST(GrainsTest, JsonRejectsNestedValuesAndBadSyntax) {
  EXPECT_FALSE(ParseGrainsFile(R"({"a": [1]})").ok());
  EXPECT_FALSE(ParseGrainsFile(R"({"a": null})").ok());
  EXPECT_FALSE(ParseGrainsFile(R"({"a": )").ok());
}

TEST(GrainsTest, FlagOverridesFile) {
  std::string path = testing::MakeTempDir("grains") + "/grains.conf";
  std::ofstream(path) << "role=db\nos=debian\n";
  absl::StatusOr<Grains> grains = LoadGrains("role=web", path);
  ASSERT_TRUE(grains.ok()) << grains.status();
  EXPECT_EQ(grains->at("role"), "web");
  EXPECT_EQ(grains->at("os"), "debian");
}

TEST(GrainsTest, MissingFileIsAnError) {
  EXPECT_FALSE(LoadGrains("", "/nonexistent/grains").ok());
}

TEST(GrainsTest, JsonIsSorted) {
  EXPECT_EQ(GrainsToJson({{"b", "2"}, {"a", "1"}}), R"({"a":"1","b":"2"})");
}

}  // namespace
}  // namespace muster::minion
