#include "relay/salt/job_cache.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "relay/salt/msgpack_codec.h"

namespace muster::relay::salt {
namespace {

// Captured from a real master: cmd.run "echo hi; exit 3" to m1, m2, nosuch.
constexpr char kCache[] = "relay/salt/testdata/cache";
constexpr char kJid[] = "12345678901234567891_1";

TEST(JobCacheDirTest, IsTheSha256OfTheJidSplitAfterTwoCharacters) {
  auto dir = JobCacheDir("/c", kJid);
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(*dir, "/c/jobs/6c/08e37dcd905ca9680833f4b20b1bc34bfea5601cfca73ce3ad3afbefceed90");
  EXPECT_TRUE(JobCacheDir("/c", kJid, "md5").ok());
  EXPECT_FALSE(JobCacheDir("/c", kJid, "nohash").ok());
}

TEST(ReadJobReturnsTest, ReadsTheCapturedReturnsWithFunFromTheLoad) {
  auto job = ReadCachedJob(kCache, kJid);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->fun, "cmd.run");
  EXPECT_EQ(job->minions, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_TRUE(job->errors.empty());
  ASSERT_EQ(job->returns.size(), 2u);
  for (const SaltReturn& ret : job->returns) {
    EXPECT_EQ(ret.salt_jid, kJid);
    EXPECT_EQ(ret.fun, "cmd.run");
    EXPECT_EQ(ret.retcode, 3);
    EXPECT_FALSE(ret.success);
    EXPECT_EQ(ret.return_json, "\"hi\"");
    EXPECT_EQ(ret.fun_args_json, "[\"echo hi; exit 3\"]");
  }
  EXPECT_EQ(job->returns[0].minion_id, "m1");
  EXPECT_EQ(job->returns[1].minion_id, "m2");
}

TEST(ReadJobReturnsTest, UnknownJidIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(ReadJobReturns(kCache, "99999999999999999999_1").status()));
}

TEST(ReadJobReturnsTest, BadOrMissingReturnFilesAreSkippedAndNamed) {
  char pattern[] = "/tmp/salt_job_cache_test_XXXXXX";
  const std::string cachedir = ::mkdtemp(pattern);
  auto dir = JobCacheDir(cachedir, kJid);
  ASSERT_TRUE(dir.ok());
  for (const char* minion : {"good", "bad", "running"}) {
    std::filesystem::create_directories(*dir + "/" + minion);
  }
  std::ofstream(*dir + "/good/return.p", std::ios::binary)
      << EncodeMsgpack({{"return", {{"pid", 1}}}, {"retcode", 0}, {"success", true}});
  std::ofstream(*dir + "/bad/return.p", std::ios::binary) << std::string("\xdb\xff\xff", 3);
  auto job = ReadCachedJob(cachedir, kJid);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->returns.size(), 1u);
  EXPECT_EQ(job->returns[0].minion_id, "good");
  EXPECT_EQ(job->returns[0].return_json, R"({"pid":1})");
  EXPECT_EQ(job->returns[0].fun, "");  // no .load.p
  ASSERT_EQ(job->errors.size(), 1u);
  EXPECT_NE(job->errors[0].find("bad/return.p"), std::string::npos);
  std::filesystem::remove_all(cachedir);
}

}  // namespace
}  // namespace muster::relay::salt
