#include "common/json/proto_json.h"

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "proto/job_service.pb.h"

namespace muster {
namespace {

TEST(ProtoJsonTest, ValidUtf8OutputIsAPlainStringWithoutBase64) {
  v1::ListReturnsResponse response;
  v1::Return* ret = response.add_returns();
  ret->set_minion_id("m1");
  ret->set_stdout("caf\xC3\xA9\n");
  nlohmann::json json = nlohmann::json::parse(ProtoToJson(response));
  EXPECT_EQ(json["returns"][0]["stdout"], "caf\xC3\xA9\n");
  EXPECT_EQ(json["returns"][0]["stderr"], "");
  EXPECT_FALSE(json["returns"][0].contains("stdout_base64"));
  EXPECT_EQ(json["returns"][0]["minion_id"], "m1");
  EXPECT_EQ(json["returns"][0]["attempt"], 0);
}

TEST(ProtoJsonTest, InvalidUtf8OutputKeepsTheExactBytesInBase64) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  v1::ListReturnsResponse response;
  response.add_returns()->set_stdout("ok");
  response.add_returns()->set_stderr(every_byte);
  std::string text = ProtoToJson(response);
  nlohmann::json json = nlohmann::json::parse(text);  // valid JSON, valid UTF-8
  const nlohmann::json& ret = json["returns"][1];
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(ret["stderr_base64"].get<std::string>(), &decoded));
  EXPECT_EQ(decoded, every_byte);
  std::string shown = ret["stderr"];
  EXPECT_EQ(shown.substr(0, 128), every_byte.substr(0, 128));
  EXPECT_EQ(shown.substr(128, 3), "\xEF\xBF\xBD");
  EXPECT_FALSE(ret.contains("stdout_base64"));
  EXPECT_FALSE(json["returns"][0].contains("stderr_base64"));
}

TEST(ProtoJsonTest, MessagesWithoutBytesAreProtobufsJsonUnchanged) {
  v1::Job job;
  job.set_jid("20261202000000000001");
  job.mutable_completeness()->set_expected(3);
  std::string text = ProtoToJson(job);
  EXPECT_NE(text.find("\"expected\":\"3\""), std::string::npos) << text;
}

}  // namespace
}  // namespace muster
