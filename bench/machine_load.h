// What else the machine was doing while a benchmark measured: the load
// average, and the CPU time spent by processes other than the cluster under
// test and the benchmark itself over a span, from /proc/stat (the whole
// machine's user + nice + system time) minus /proc/PID/stat of the
// cluster's processes and of this process (all its threads). The machine is
// shared; a run whose span shows others using a good part of the cores is a
// run that outside load spoiled. Hypervisor steal is reported beside it
// (time the virtual CPUs wanted and did not get). Interrupt time is left out
// of both: loopback traffic's soft interrupts are the cluster's own.
#ifndef MUSTER_BENCH_MACHINE_LOAD_H_
#define MUSTER_BENCH_MACHINE_LOAD_H_

#include <string>

#include "absl/time/time.h"
#include "tests/support/cluster.h"

namespace muster::bench {

// "0.52 0.61 0.70" (1, 5 and 15 minutes), from /proc/loadavg.
std::string LoadAverage();

// CPU seconds over a span; see the file comment.
struct CpuSpan {
  double wall_s = 0;
  double machine_s = 0;  // user + nice + system, every process
  double cluster_s = 0;  // the cluster's processes (Cluster::ProcessNames)
  double bench_s = 0;    // this process
  double steal_s = 0;
  // Never below 0 (the sources are sampled at slightly different times).
  double others_s() const;
  // others_s() / wall_s: how many cores the other processes kept busy.
  double others_cores() const;
  void Add(const CpuSpan& other);
};

// A span's start; Take() measures up to now. A cluster process that exits
// or restarts during the span makes its figures meaningless (not so in the
// benchmarks that use this).
class CpuSpanStart {
 public:
  // `cluster` null: no cluster processes (e.g. before one starts).
  explicit CpuSpanStart(testing::Cluster* cluster);
  CpuSpan Take(testing::Cluster* cluster) const;

 private:
  struct Sample {
    absl::Time at;
    double machine_s = 0;
    double steal_s = 0;
    double cluster_s = 0;
    double bench_s = 0;
  };
  static Sample Now(testing::Cluster* cluster);

  Sample start_;
};

}  // namespace muster::bench

#endif  // MUSTER_BENCH_MACHINE_LOAD_H_
