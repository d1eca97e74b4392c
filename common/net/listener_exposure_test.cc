#include "common/net/listener_exposure.h"

#include "gtest/gtest.h"

namespace muster {
namespace {

TEST(ListenerExposureTest, OnlyLoopbackAddressesAndLocalhostAreLoopback) {
  for (const char* host : {"127.0.0.1", "127.0.0.53", "127.255.255.254", "::1", "[::1]",
                           "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "LOCALHOST"}) {
    EXPECT_TRUE(IsLoopbackListenAddress(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "[::]", "*", "", "10.0.0.5", "192.168.1.1",
                           "128.0.0.1", "126.255.255.255", "::2", "::ffff:10.0.0.1",
                           "fe80::1", "jobd.example.com", "localhost.example.com", "lo",
                           "[::1", "127.1", "127.0.0.1.evil.example"}) {
    EXPECT_FALSE(IsLoopbackListenAddress(host)) << host;
  }
}

TEST(ListenerExposureTest, TheHostIsTakenFromEachAddressForm) {
  EXPECT_EQ(ListenHost("0.0.0.0:7400"), "0.0.0.0");
  EXPECT_EQ(ListenHost("127.0.0.1:0"), "127.0.0.1");
  EXPECT_EQ(ListenHost("[::1]:7400"), "[::1]");
  EXPECT_EQ(ListenHost("[::]:7400"), "[::]");
  EXPECT_EQ(ListenHost(":::7400"), "::");
  EXPECT_EQ(ListenHost(":7400"), "");
  EXPECT_EQ(ListenHost("tcp://0.0.0.0:4505"), "0.0.0.0");
  EXPECT_EQ(ListenHost("tcp://127.0.0.1:*"), "127.0.0.1");
  EXPECT_EQ(ListenHost("localhost:7401"), "localhost");
}

TEST(ListenerExposureTest, AnUnencryptedListenerOtherMachinesCanReachIsWarnedAbout) {
  struct Case {
    const char* address;
    bool encrypted;
    bool warn;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"0.0.0.0:7400", false, true},
           {"0.0.0.0:7400", true, false},  // TLS / CURVE
           {"[::]:7400", false, true},
           {":7400", false, true},
           {"10.1.2.3:7401", false, true},
           {"jobd.example.com:7400", false, true},
           {"tcp://0.0.0.0:4505", false, true},
           {"tcp://0.0.0.0:4505", true, false},
           {"127.0.0.1:7400", false, false},
           {"127.0.0.1:0", false, false},
           {"[::1]:7400", false, false},
           {"localhost:7401", false, false},
           {"tcp://127.0.0.1:*", false, false},
           {"unix:/run/muster/jobd.sock", false, false},
           {"unix-abstract:muster", false, false},
       }) {
    EXPECT_EQ(NeedsExposureWarning(c.address, c.encrypted), c.warn)
        << c.address << " encrypted=" << c.encrypted;
    EXPECT_EQ(WarnIfExposed("test: --listen", c.address, c.encrypted, "no TLS"), c.warn)
        << c.address;
  }
}

}  // namespace
}  // namespace muster
