#include "common/http/http_listener.h"

#include <httplib.h>

#include "gtest/gtest.h"

namespace muster::http {
namespace {

TEST(ListenAddressTest, ParsesHostAndPort) {
  absl::StatusOr<ListenAddress> address = ListenAddress::Parse("127.0.0.1:7401");
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, 7401);
  EXPECT_EQ(ListenAddress::Parse("localhost:0")->port, 0);
}

TEST(ListenAddressTest, RejectsWhatIsNotHostColonPort) {
  for (const char* bad : {"", "7401", ":7401", "host:", "host:-1", "host:65536", "host:x"}) {
    absl::StatusOr<ListenAddress> address = ListenAddress::Parse(bad);
    EXPECT_FALSE(address.ok()) << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(address.status())) << bad;
  }
}

TEST(HttpListenerTest, ServesOnAFreePortUntilStopped) {
  httplib::Server server;
  server.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
  HttpListener listener(&server);
  ASSERT_TRUE(listener.Start({"127.0.0.1", 0}).ok());
  int port = listener.port();
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  httplib::Result result = client.Get("/hello");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(result->body, "hi");
  listener.Stop();
  EXPECT_EQ(listener.port(), 0);
  EXPECT_FALSE(httplib::Client("127.0.0.1", port).Get("/hello"));
}

TEST(HttpListenerTest, BusyPortIsUnavailable) {
  httplib::Server first_server, second_server;
  HttpListener first(&first_server);
  ASSERT_TRUE(first.Start({"127.0.0.1", 0}).ok());
  HttpListener second(&second_server);
  absl::Status status = second.Start({"127.0.0.1", first.port()});
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
}

TEST(HttpListenerTest, StopRightAfterStartDoesNotHang) {
  for (int i = 0; i < 20; ++i) {
    httplib::Server server;
    HttpListener listener(&server);
    ASSERT_TRUE(listener.Start({"127.0.0.1", 0}).ok());
    listener.Stop();
  }
}

}  // namespace
}  // namespace muster::http
