#include "relay/salt/event_reader.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "relay/salt/msgpack_codec.h"
#include "relay/salt/test_files.h"

namespace muster::relay::salt {
namespace {

using nlohmann::json;

// $TEST_TMPDIR is too long for a Unix socket path (108 bytes): /tmp.
// The directory is removed when the test program exits.
std::string TempSocketPath(const std::string& name) {
  struct TempDir {
    TempDir() {
      char pattern[] = "/tmp/salt_event_test_XXXXXX";
      path = ::mkdtemp(pattern);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string path;
  };
  static const TempDir dir;
  std::string path = dir.path + "/" + name;
  ::unlink(path.c_str());
  return path;
}

// A stand-in for the master's IPCMessagePublisher: a listening Unix socket
// that writes bytes to whoever connected.
class FakeEventPublisher {
 public:
  explicit FakeEventPublisher(const std::string& path) : path_(path) {
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
  }
  ~FakeEventPublisher() {
    CloseClient();
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
  void Accept() { client_fd_ = ::accept(listen_fd_, nullptr, nullptr); }
  void Write(const std::string& bytes) {
    ASSERT_EQ(::write(client_fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  void CloseClient() {
    if (client_fd_ >= 0) ::close(client_fd_);
    client_fd_ = -1;
  }

 private:
  std::string path_;
  int listen_fd_ = -1;
  int client_fd_ = -1;
};

std::string Frame(const std::string& tag, const json& data) {
  const std::string packed = EncodeMsgpack(data);
  json::binary_t body(std::vector<uint8_t>(tag.begin(), tag.end()));
  body.insert(body.end(), {'\n', '\n'});
  body.insert(body.end(), packed.begin(), packed.end());
  return EncodeMsgpack(json{{"head", json::object()}, {"body", json::binary(body)}});
}

std::vector<MasterEvent> PollUntil(MasterEventReader& reader, size_t count) {
  std::vector<MasterEvent> all;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (all.size() < count && absl::Now() < deadline) {
    for (MasterEvent& event : reader.Poll(absl::Milliseconds(100))) {
      all.push_back(std::move(event));
    }
  }
  return all;
}

TEST(ParseEventBodyTest, ReadsAReturnAndAPublish) {
  MasterEvent event;
  const std::string ret_body =
      "salt/job/12345678901234567891_1/ret/m1\n\n" +
      EncodeMsgpack({{"cmd", "_return"}, {"id", "m1"}, {"success", false}, {"return", "hi"},
                     {"retcode", 3}, {"jid", "12345678901234567891_1"}, {"fun", "cmd.run"},
                     {"fun_args", {"echo hi; exit 3"}}, {"_stamp", "2026-12-06T17:50:59.466257"}});
  auto wanted = ParseEventBody(ret_body, &event);
  ASSERT_TRUE(wanted.ok() && *wanted) << wanted.status();
  EXPECT_EQ(event.kind, MasterEvent::Kind::kReturn);
  EXPECT_EQ(event.ret.salt_jid, "12345678901234567891_1");
  EXPECT_EQ(event.ret.minion_id, "m1");
  EXPECT_EQ(event.ret.fun, "cmd.run");
  EXPECT_FALSE(event.ret.success);
  EXPECT_EQ(event.ret.retcode, 3);
  EXPECT_FALSE(event.ret.retcode_derived);
  EXPECT_EQ(event.ret.return_json, "\"hi\"");
  EXPECT_EQ(event.ret.fun_args_json, "[\"echo hi; exit 3\"]");
  EXPECT_EQ(event.ret.stamp, "2026-12-06T17:50:59.466257");

  const std::string new_body = "salt/job/12345678901234567891_1/new\n\n" +
                               EncodeMsgpack({{"jid", "12345678901234567891_1"},
                                              {"fun", "cmd.run"},
                                              {"minions", {"m1", "m2"}},
                                              {"missing", {"nosuch"}}});
  wanted = ParseEventBody(new_body, &event);
  ASSERT_TRUE(wanted.ok() && *wanted) << wanted.status();
  EXPECT_EQ(event.kind, MasterEvent::Kind::kPublish);
  EXPECT_EQ(event.publish.minions, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(event.publish.missing, (std::vector<std::string>{"nosuch"}));
}

TEST(ParseEventBodyTest, OtherEventsAreNotWantedAndBadOnesAreErrors) {
  MasterEvent event;
  auto other = ParseEventBody("12345678901234567891_1\n\n" + EncodeMsgpack({{"minions", {}}}),
                              &event);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);
  EXPECT_FALSE(*ParseEventBody("salt/auth\n\n\x80", &event));
  EXPECT_FALSE(ParseEventBody("no tag end", &event).ok());
  EXPECT_FALSE(ParseEventBody("salt/job/1/ret/m1\n\n\xc1", &event).ok());
  EXPECT_FALSE(ParseEventBody("salt/job/1/ret/m1\n\n" + EncodeMsgpack({{"id", "m1"}}), &event)
                   .ok());  // no "return"
}

TEST(ParseEventBodyTest, RetcodeAbsentIsDerivedAsSaltDoes) {
  MasterEvent event;
  auto parse = [&](const json& data) {
    auto wanted = ParseEventBody("salt/job/1/ret/m1\n\n" + EncodeMsgpack(data), &event);
    EXPECT_TRUE(wanted.ok() && *wanted);
    return event.ret;
  };
  EXPECT_EQ(parse({{"return", true}}).retcode, 0);
  EXPECT_TRUE(parse({{"return", true}}).success);
  EXPECT_EQ(parse({{"return", true}, {"success", false}}).retcode, 1);
  EXPECT_EQ(parse({{"return", {{"result", false}}}}).retcode, 1);
  EXPECT_FALSE(parse({{"return", {{"result", false}}}}).success);
  EXPECT_TRUE(parse({{"return", {{"result", false}}}}).retcode_derived);
  EXPECT_EQ(parse({{"return", 1}, {"retcode", {{"a", 0}, {"b", 2}}}}).retcode, 2);
}

TEST(MasterEventReaderTest, ReadsTheCapturedStreamFromASocket) {
  const std::string path = TempSocketPath("ev1.ipc");
  FakeEventPublisher publisher(path);
  MasterEventReader reader({path});
  ASSERT_TRUE(reader.Connect().ok());
  publisher.Accept();
  // The captured stream: 2 job publishes, 4 returns, one key-refused error
  // event and two old-style "<jid>" events.
  const std::string stream = ReadFile("relay/salt/testdata/master_event_pub.bin");
  // Written in two pieces split mid-frame.
  publisher.Write(stream.substr(0, 301));
  publisher.Write(stream.substr(301));
  std::vector<MasterEvent> events = PollUntil(reader, 6);
  ASSERT_EQ(events.size(), 6u);
  int returns = 0;
  for (const MasterEvent& event : events) {
    if (event.kind == MasterEvent::Kind::kReturn) {
      ++returns;
      if (event.ret.fun == "cmd.run") {
        EXPECT_EQ(event.ret.retcode, 3);
        EXPECT_EQ(event.ret.return_json, "\"hi\"");
      } else {
        EXPECT_EQ(event.ret.fun, "test.ping");
        EXPECT_EQ(event.ret.return_json, "true");
        EXPECT_TRUE(event.ret.success);
      }
    }
  }
  EXPECT_EQ(returns, 4);
  EXPECT_EQ(reader.counters().frames, 9);
  EXPECT_EQ(reader.counters().other_events, 3);
  EXPECT_EQ(reader.counters().malformed_frames, 0);
}

TEST(MasterEventReaderTest, BadEventIsSkippedGarbageStreamIsRemade) {
  const std::string path = TempSocketPath("ev2.ipc");
  FakeEventPublisher publisher(path);
  MasterEventReader reader({path, 1 << 20, absl::Milliseconds(20)});
  ASSERT_TRUE(reader.Connect().ok());
  publisher.Accept();
  // A well-framed event with bad data is skipped; the next one is read.
  std::string bad_body = "salt/job/1/ret/m1\n\n\xc1";
  publisher.Write(EncodeMsgpack({{"head", json::object()}, {"body", bad_body}}) +
                  Frame("salt/job/2/ret/m2", {{"return", true}, {"retcode", 0}}));
  std::vector<MasterEvent> events = PollUntil(reader, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret.minion_id, "m2");
  EXPECT_EQ(reader.counters().malformed_frames, 1);

  // Garbage that is not msgpack: the reader drops the connection and
  // reconnects.
  publisher.Write(std::string("\xc1\xc1\xc1", 3));
  reader.Poll(absl::Milliseconds(200));
  EXPECT_EQ(reader.counters().malformed_frames, 2);
  EXPECT_EQ(reader.counters().disconnects, 1);
  publisher.CloseClient();
  reader.Poll(absl::Milliseconds(100));  // reconnects
  publisher.Accept();
  EXPECT_EQ(reader.counters().connects, 2);
  publisher.Write(Frame("salt/job/3/ret/m3", {{"return", "x"}}));
  events = PollUntil(reader, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].ret.salt_jid, "3");
}

TEST(MasterEventReaderTest, OversizedFrameIsDroppedNotBuffered) {
  const std::string path = TempSocketPath("ev3.ipc");
  FakeEventPublisher publisher(path);
  MasterEventReader reader({path, 4096, absl::Milliseconds(20)});
  ASSERT_TRUE(reader.Connect().ok());
  publisher.Accept();
  // A bin32 header claiming 1 GiB, then 8 KiB of it.
  publisher.Write(std::string("\x82\xa4head\x80\xa4" "body\xc6\x40\x00\x00\x00", 17) +
                  std::string(8192, 'x'));
  reader.Poll(absl::Milliseconds(300));
  EXPECT_EQ(reader.counters().malformed_frames, 1);
  EXPECT_EQ(reader.counters().disconnects, 1);
}

TEST(MasterEventReaderTest, NoMasterMeansEmptyPollsWithinTheTimeout) {
  MasterEventReader reader({TempSocketPath("absent.ipc")});
  EXPECT_FALSE(reader.Connect().ok());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(reader.Poll(absl::Milliseconds(300)).empty());
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_FALSE(reader.connected());
}

TEST(MasterEventReaderTest, MasterClosingIsADisconnectAndLaterAReconnect) {
  const std::string path = TempSocketPath("ev4.ipc");
  MasterEventReader reader({path, 1 << 20, absl::Milliseconds(20)});
  {
    FakeEventPublisher publisher(path);
    ASSERT_TRUE(reader.Connect().ok());
    publisher.Accept();
  }  // the "master" stops
  reader.Poll(absl::Milliseconds(100));
  EXPECT_EQ(reader.counters().disconnects, 1);
  FakeEventPublisher restarted(path);
  reader.Poll(absl::Milliseconds(100));
  EXPECT_TRUE(reader.connected());
  restarted.Accept();
  restarted.Write(Frame("salt/job/4/ret/m4", {{"return", 1}}));
  EXPECT_EQ(PollUntil(reader, 1).size(), 1u);
  EXPECT_EQ(reader.counters().connects, 2);
}

}  // namespace
}  // namespace muster::relay::salt
