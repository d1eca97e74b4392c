// Linked into every test that starts Muster's processes: when the test
// binary ends, any child that died of a crash signal (tests/support/process.h
// CrashedChildren) fails it, so a relay that aborts inside libzmq, or a
// minion that segfaults, is never a passing test whose other checks happened
// to hold.
#include <string>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

class NoCrashedChildren : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const std::string& crash : CrashedChildren()) {
      ADD_FAILURE() << "a child process crashed: " << crash;
    }
  }
};

const ::testing::Environment* const kNoCrashedChildren =
    ::testing::AddGlobalTestEnvironment(new NoCrashedChildren);

}  // namespace
}  // namespace muster::testing
