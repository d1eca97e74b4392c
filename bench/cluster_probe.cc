#include "bench/cluster_probe.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "proto/job_service.pb.h"
#include "proto/wire.pb.h"
#include "tests/support/process.h"

namespace muster::bench {

double MsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

double Quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(q * (values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

BusProbe::BusProbe(const std::vector<Target>& targets) : context_(1) {
  for (const Target& target : targets) {
    sockets_.emplace_back(context_, zmq::socket_type::sub);
    zmq::socket_t& socket = sockets_.back();
    socket.set(zmq::sockopt::linger, 0);
    if (!target.relay_key.empty()) {
      socket.set(zmq::sockopt::curve_serverkey, target.relay_key);
      socket.set(zmq::sockopt::curve_publickey, target.keys.public_z85);
      socket.set(zmq::sockopt::curve_secretkey, target.keys.secret_z85);
    }
    socket.set(zmq::sockopt::subscribe, "*");
    socket.connect(target.endpoint);
  }
  thread_ = std::thread([this] { Run(); });
}

BusProbe::~BusProbe() {
  stop_ = true;
  thread_.join();
}

std::optional<Clock::time_point> BusProbe::WaitForAll(const std::string& jid,
                                                      absl::Duration timeout) {
  std::optional<Clock::time_point> latest;
  testing::WaitFor(
      [&] {
        absl::MutexLock lock(&mutex_);
        auto it = arrivals_.find(jid);
        if (it == arrivals_.end() || it->second.size() < sockets_.size()) return false;
        latest = *std::max_element(it->second.begin(), it->second.end());
        return true;
      },
      timeout);
  return latest;
}

void BusProbe::Run() {
  std::vector<zmq::pollitem_t> items;
  for (zmq::socket_t& socket : sockets_) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
  while (!stop_) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
    Clock::time_point now = Clock::now();
    for (size_t i = 0; i < items.size(); ++i) {
      if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
      zmq::message_t topic, body;
      while (sockets_[i].recv(topic, zmq::recv_flags::dontwait)) {
        if (!topic.more() || !sockets_[i].recv(body, zmq::recv_flags::none)) continue;
        wire::v1::JobEnvelope job;
        if (!job.ParseFromArray(body.data(), static_cast<int>(body.size()))) continue;
        absl::MutexLock lock(&mutex_);
        arrivals_[job.jid()].push_back(now);
      }
    }
  }
}

JobWatch::JobWatch(v1::JobService::Stub& stub, const std::string& jid, absl::Duration wait) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + wait));
  thread_ = std::thread([this, &stub, jid] { Run(stub, jid); });
}

JobWatch::~JobWatch() {
  if (!thread_.joinable()) return;
  context_.TryCancel();
  thread_.join();
}

absl::StatusOr<JobWatch::End> JobWatch::Wait() {
  if (thread_.joinable()) thread_.join();
  return end_;
}

void JobWatch::Run(v1::JobService::Stub& stub, const std::string& jid) {
  v1::WatchJobRequest request;
  request.set_jid(jid);
  request.set_interval_ms(60000);
  std::unique_ptr<grpc::ClientReader<v1::Job>> reader = stub.WatchJob(&context_, request);
  v1::Job job;
  std::string last = "nothing";
  while (reader->Read(&job)) {
    Clock::time_point at = Clock::now();
    absl::Time wall = absl::Now();
    if (job.state() == v1::COMPLETE || job.state() == v1::INCOMPLETE ||
        job.state() == v1::CANCELLED) {
      end_ = End{job, at, wall};
    } else {
      last = v1::JobState_Name(job.state());
    }
  }
  grpc::Status status = reader->Finish();
  if (end_.ok()) return;
  end_ = absl::Status(static_cast<absl::StatusCode>(status.ok() ? grpc::StatusCode::UNKNOWN
                                                                 : status.error_code()),
                      absl::StrCat("WatchJob ", jid, ": the stream ended (",
                                   status.error_message(), ") without a final state; last ",
                                   last));
}

absl::StatusOr<std::vector<BusProbe::Target>> BusProbeTargets(testing::Cluster& cluster) {
  std::vector<BusProbe::Target> targets;
  for (const std::string& dc : cluster.datacenters()) {
    BusProbe::Target target;
    target.endpoint = cluster.relay(dc).publish_endpoint();
    if (cluster.secure()) {
      // The relay admits only accepted keys: the probe borrows fleetsim's.
      absl::StatusOr<security::CurveKeyPair> keys = cluster.AdmittedBusKeys(dc);
      if (!keys.ok()) return keys.status();
      target.relay_key = cluster.RelayPublicKey(dc);
      target.keys = *std::move(keys);
    }
    targets.push_back(std::move(target));
  }
  return targets;
}

bool WarmUpBusProbe(testing::Cluster& cluster, BusProbe& probe) {
  // Warm-up jobs until the probe's subscriptions have reached every relay.
  bool probe_ready = false;
  for (int attempt = 0; attempt < 10 && !probe_ready; ++attempt) {
    absl::StatusOr<v1::Job> warmup =
        cluster.SubmitAndWait("*", "test.ping", {}, absl::Seconds(60));
    probe_ready = warmup.ok() && probe.WaitForAll(warmup->jid(), absl::Seconds(2)).has_value();
  }
  return probe_ready;
}

absl::flat_hash_map<std::string, double> CpuByProcess(testing::Cluster& cluster) {
  absl::flat_hash_map<std::string, double> cpu;
  for (const std::string& name : cluster.ProcessNames()) {
    pid_t pid = cluster.ProcessPid(name);
    if (pid <= 0 || !cluster.ProcessRunning(name)) continue;
    cpu[name] = testing::CpuSeconds(pid);
  }
  return cpu;
}

absl::flat_hash_map<std::string, double> CpuByKind(testing::Cluster& cluster) {
  absl::flat_hash_map<std::string, double> by_process = CpuByProcess(cluster);
  absl::flat_hash_map<std::string, double> cpu;
  for (const std::string& name : cluster.ProcessNames()) {
    auto it = by_process.find(name);
    if (it != by_process.end()) cpu[name.substr(0, name.find(':'))] += it->second;
  }
  return cpu;
}

}  // namespace muster::bench
