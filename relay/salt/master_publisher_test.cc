#include "relay/salt/master_publisher.h"

#include <zmq.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "relay/salt/msgpack_codec.h"
#include "relay/salt/test_files.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

TEST(IsSaltJidTest, AcceptsWhatSaltAcceptsAndASafeSuffix) {
  EXPECT_TRUE(IsSaltJid("20261206175037175538"));
  EXPECT_TRUE(IsSaltJid("20261206000000001234_1"));
  EXPECT_TRUE(IsSaltJid("20261206000000001234_12"));
  EXPECT_FALSE(IsSaltJid("20261206000000001234_"));
  EXPECT_FALSE(IsSaltJid("2026120600000000123_1"));
  EXPECT_FALSE(IsSaltJid("2026120600000000123x_1"));
  EXPECT_FALSE(IsSaltJid("20261206000000001234_1/../x"));
  // Salt's runners cannot show a jid whose digits 4-5 are not a month.
  EXPECT_FALSE(IsSaltJid("12345678901234567890_1"));
  EXPECT_FALSE(IsSaltJid("20260006000000001234_1"));
}

// The request bytes sent by a python REQ client that the real master
// accepted (testdata/publish_request.bin) decode to the same value as ours.
TEST(EncodePublishRequestTest, MatchesTheRequestTheRealMasterAccepted) {
  auto captured = DecodeMsgpack(ReadFile("relay/salt/testdata/publish_request.bin"));
  ASSERT_TRUE(captured.ok()) << captured.status();
  PublishRequest request;
  request.salt_jid = "12345678901234567891_1";
  request.targets = {"m1", "m2", "nosuch"};
  request.fun = "cmd.run";
  request.args = {"echo hi; exit 3"};
  const std::string key = (*captured)["load"]["key"];
  auto ours = DecodeMsgpack(EncodePublishRequest(request, key, "root"));
  ASSERT_TRUE(ours.ok());
  EXPECT_EQ(*ours, *captured);
}

TEST(DecodePublishReplyTest, ReadsTheCapturedAnswers) {
  auto ok = DecodePublishReply(ReadFile("relay/salt/testdata/publish_reply.bin"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->salt_jid, "12345678901234567891_1");
  EXPECT_EQ(ok->minions, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(ok->missing, (std::vector<std::string>{"nosuch"}));
  auto refused = DecodePublishReply(ReadFile("relay/salt/testdata/publish_reply_bad_key.bin"));
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("AuthenticationError"), std::string::npos);
}

TEST(DecodePublishReplyTest, OtherAnswersAreClearErrors) {
  EXPECT_TRUE(absl::IsInternal(DecodePublishReply(EncodeMsgpack("bad load")).status()));
  EXPECT_TRUE(absl::IsInternal(DecodePublishReply("\xc1").status()));
  EXPECT_TRUE(absl::IsInternal(DecodePublishReply(EncodeMsgpack({{"enc", "clear"}})).status()));
  auto none = DecodePublishReply(EncodeMsgpack(
      {{"enc", "clear"},
       {"load",
        {{"jid", nullptr},
         {"minions", json::array()},
         {"error", "Master could not resolve minions for target ['x']"}}}}));
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
}

// A ROUTER socket standing in for the master's request server (a REQ
// client cannot tell it from Salt's ROUTER/DEALER request server): answers
// with `answer(request)`, or ignores the request when it returns nullopt.
class FakeRequestServer {
 public:
  explicit FakeRequestServer(std::function<std::optional<std::string>(const json&)> answer)
      : context_(zmq_ctx_new()), socket_(zmq_socket(context_, ZMQ_ROUTER)) {
    int linger = 0;
    zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof(linger));
    EXPECT_EQ(zmq_bind(socket_, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t size = sizeof(endpoint);
    zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, endpoint, &size);
    uri_ = endpoint;
    thread_ = std::thread([this, answer] {
      zmq_pollitem_t item = {socket_, 0, ZMQ_POLLIN, 0};
      while (!stop_) {
        if (zmq_poll(&item, 1, 20) <= 0) continue;
        std::vector<std::string> frames;
        int more = 1;
        while (more) {
          zmq_msg_t message;
          zmq_msg_init(&message);
          if (zmq_msg_recv(&message, socket_, 0) < 0) return;
          frames.emplace_back(static_cast<char*>(zmq_msg_data(&message)),
                              zmq_msg_size(&message));
          more = zmq_msg_more(&message);
          zmq_msg_close(&message);
        }
        if (frames.size() != 3) continue;  // identity, empty, request
        ++requests_;
        auto request = DecodeMsgpack(frames[2]);
        std::optional<std::string> reply = answer(request.ok() ? *request : json());
        if (!reply.has_value()) continue;
        zmq_send(socket_, frames[0].data(), frames[0].size(), ZMQ_SNDMORE);
        zmq_send(socket_, "", 0, ZMQ_SNDMORE);
        zmq_send(socket_, reply->data(), reply->size(), 0);
      }
    });
  }
  ~FakeRequestServer() {
    stop_ = true;
    thread_.join();
    zmq_close(socket_);
    zmq_ctx_term(context_);
  }
  const std::string& uri() const { return uri_; }
  int requests() const { return requests_; }

 private:
  void* context_;
  void* socket_;
  std::string uri_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::string Accepted(const json& request) {
  return EncodeMsgpack({{"enc", "clear"},
                        {"load",
                         {{"jid", request["load"]["jid"]},
                          {"minions", request["load"]["tgt"]},
                          {"missing", json::array()}}}});
}

std::string KeyFile(const std::string& key) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/.root_key";
  std::ofstream(path) << key;
  return path;
}

PublishRequest Ping() {
  PublishRequest request;
  request.salt_jid = "20261206000000000042_1";
  request.targets = {"m1"};
  request.fun = "test.ping";
  return request;
}

TEST(MasterPublisherTest, ReReadsTheKeyOnceWhenTheMasterRefusesIt) {
  const std::string key_file = KeyFile("old-key");
  std::atomic<bool> restarted{false};
  FakeRequestServer master([&](const json& request) -> std::optional<std::string> {
    const std::string want = restarted ? "new-key" : "old-key";
    if (request["load"]["key"] != want) {
      return EncodeMsgpack({{"error", {{"name", "AuthenticationError"},
                                       {"message", "Authentication error occurred."}}}});
    }
    return Accepted(request);
  });
  MasterPublisher publisher({master.uri(), key_file, "root", absl::Seconds(2)});
  auto first = publisher.Publish(Ping());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->key_reread);
  EXPECT_EQ(first->minions, (std::vector<std::string>{"m1"}));

  // The master restarts and writes a new key.
  restarted = true;
  KeyFile("new-key");
  auto second = publisher.Publish(Ping());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->key_reread);
  EXPECT_EQ(publisher.key_reads(), 2);
  EXPECT_EQ(master.requests(), 3);

  // A key that stays refused is PermissionDenied after one re-read.
  KeyFile("new-key");
  restarted = false;  // now wants old-key, but the file says new-key
  auto refused = publisher.Publish(Ping());
  EXPECT_TRUE(absl::IsPermissionDenied(refused.status())) << refused.status();
  EXPECT_EQ(master.requests(), 4);
}

TEST(MasterPublisherTest, NoMasterIsUnavailableWithinTheTimeout) {
  MasterPublisher publisher(
      {"tcp://127.0.0.1:1", KeyFile("k"), "root", absl::Milliseconds(300)});
  const absl::Time start = absl::Now();
  auto result = publisher.Publish(Ping());
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(publisher.requests_sent(), 0);
}

TEST(MasterPublisherTest, SilentMasterIsDeadlineExceededAndTheSocketIsRemade) {
  std::atomic<int> calls{0};
  FakeRequestServer master([&](const json& request) -> std::optional<std::string> {
    if (calls++ == 0) return std::nullopt;  // swallow the first request
    return Accepted(request);
  });
  MasterPublisher publisher({master.uri(), KeyFile("k"), "root", absl::Milliseconds(300)});
  const absl::Time start = absl::Now();
  auto silent = publisher.Publish(Ping());
  EXPECT_TRUE(absl::IsDeadlineExceeded(silent.status())) << silent.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // A REQ socket that timed out could never send again; the new one can.
  auto next = publisher.Publish(Ping());
  EXPECT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(master.requests(), 2);
}

TEST(MasterPublisherTest, RefusesRequestsSaltWouldReject) {
  MasterPublisher publisher({"tcp://127.0.0.1:1", KeyFile("k"), "root", absl::Seconds(1)});
  PublishRequest request = Ping();
  request.salt_jid = "42";
  EXPECT_TRUE(absl::IsInvalidArgument(publisher.Publish(request).status()));
  request = Ping();
  request.targets.clear();
  EXPECT_TRUE(absl::IsInvalidArgument(publisher.Publish(request).status()));
  request = Ping();
  request.args = "not a list";
  EXPECT_TRUE(absl::IsInvalidArgument(publisher.Publish(request).status()));
}

TEST(MasterPublisherTest, MissingKeyFileIsFailedPrecondition) {
  MasterPublisher publisher({"tcp://127.0.0.1:1", "/nonexistent/.root_key", "root"});
  EXPECT_TRUE(absl::IsFailedPrecondition(publisher.Publish(Ping()).status()));
}

}  // namespace
}  // namespace muster::relay::salt
