// How fleetsim's virtual minions "run" a function without touching the
// machine: test.ping, test.echo, grains.items and unknown functions give
// exactly what a real minion gives (the same code, RunInstantFunction);
// test.sleep only delays the return; cmd.run and cmd.exec fork nothing and
// answer with the command line as stdout and exit code 0.
#ifndef MUSTER_MINION_SIMULATED_FUNCTION_H_
#define MUSTER_MINION_SIMULATED_FUNCTION_H_

#include <cstddef>

#include "absl/time/time.h"
#include "minion/function_runner.h"
#include "minion/grains.h"

namespace muster::minion {

struct SimulatedRun {
  FunctionResult result;
  // How long the function "takes" (test.sleep), on top of the simulated
  // return latency. At most call.timeout.
  absl::Duration duration = absl::ZeroDuration();
};

SimulatedRun SimulateFunction(const FunctionCall& call, const Grains& grains,
                              size_t output_cap_bytes);

}  // namespace muster::minion

#endif  // MUSTER_MINION_SIMULATED_FUNCTION_H_
