// relay_bench: one relayd between a real redis-server and bench sockets.
//
// Two figures, each measured --runs times (min / median / max):
//   return ingestion  --sockets DEALER sockets send ReturnBatches of
//                     --returns_per_message returns, each keeping at most
//                     --window messages unacknowledged (as minions do, they
//                     wait for ACKs); returns/s from the first send until
//                     every return is acknowledged, i.e. in Redis. The
//                     stream is then checked to hold exactly that many.
//   job injection     --sub_sockets SUB sockets each subscribed to '*' and
//                     to the topics of --subscribers/--sub_sockets virtual
//                     minions; latency from just before XADD of a broadcast
//                     job to the frame arriving on each socket (p50, p99).
//   list dispatch     a LIST target naming every virtual minion (a retry of
//                     the whole datacenter): XADD -> the last per-minion
//                     frame (each its own envelope and Merkle proof,
//                     docs/PROTOCOL.md 8.2) received; median over --list_jobs.
// Dispatches are signed (tests/relay_process.h) and the relay verifies them.
// Two in-process figures give the relay's security work per dispatch
// alone: one signature check (Ed25519, DispatchVerifier, cache missed), and
// a 10,000-id LIST split into per-minion envelopes with proofs.
// It is a report: the exit code is 0 whether or not targets are met.
//
//   bazel-bin/bench/relay_bench [--returns=2000000] [--runs=3]
//                               [--json_out=/tmp/relay_bench.json]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/bench_report.h"
#include "common/bus/bus_protocol.h"
#include "common/redis/redis_stream.h"
#include "common/security/dispatch_signature.h"
#include "proto/wire.pb.h"
#include "relay/list_dispatch.h"
#include "tests/relay_process.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

ABSL_FLAG(std::string, json_out, "", "If set, also write the result rows as JSON here.");
ABSL_FLAG(int, runs, 3, "Runs of each measurement.");
ABSL_FLAG(int, returns, 2000000, "Returns sent per ingestion run.");
ABSL_FLAG(int, sockets, 8, "DEALER sockets sending returns.");
ABSL_FLAG(int, returns_per_message, 100, "Returns in one RET message.");
ABSL_FLAG(int, window, 16, "Unacknowledged RET messages allowed per socket.");
ABSL_FLAG(int, jobs, 200, "Jobs per injection-latency run.");
ABSL_FLAG(int, sub_sockets, 100, "SUB sockets for the injection latency.");
ABSL_FLAG(int, subscribers, 10000, "Virtual minions spread over the SUB sockets.");
ABSL_FLAG(int, list_jobs, 5, "LIST dispatches (naming every virtual minion) per run.");

namespace muster {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kReturnsTarget = 300000;
constexpr double kP50TargetMs = 5;
constexpr double kP99TargetMs = 20;
// A whole-datacenter retry reaches each of 10,000 minions within this.
constexpr double kListTargetMs = 200;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Number of occurrences of length-delimited field 1 at the top level of a
// message (ReturnAck.keys, ReturnBatch.returns) without a full parse.
int CountField1(absl::string_view bytes) {
  int count = 0;
  size_t i = 0;
  auto varint = [&]() -> uint64_t {
    uint64_t value = 0;
    for (int shift = 0; i < bytes.size(); shift += 7) {
      uint8_t b = bytes[i++];
      value |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    return value;
  };
  while (i < bytes.size()) {
    uint64_t tag = varint();
    switch (tag & 7) {
      case 0: varint(); break;
      case 1: i += 8; break;
      case 5: i += 4; break;
      case 2: i += varint(); break;
      default: return count;
    }
    if ((tag >> 3) == 1 && (tag & 7) == 2) ++count;
  }
  return count;
}

// Prebuilt RET payloads: message m carries returns [m*k, (m+1)*k).
std::vector<std::string> BuildPayloads(int total, int per_message) {
  std::vector<std::string> payloads;
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (int first = 0; first < total; first += per_message) {
    wire::v1::ReturnBatch batch;
    for (int n = first; n < std::min(total, first + per_message); ++n) {
      wire::v1::Return* ret = batch.add_returns();
      ret->set_jid(absl::StrFormat("2026112800000%07d", n / 100000));
      ret->set_attempt(1);
      ret->set_minion_id(absl::StrFormat("web-%06d.dc1.example.com", n % 100000));
      ret->set_success(true);
      ret->set_stdout("true");
      ret->set_started_at_ms(now_ms);
      ret->set_ended_at_ms(now_ms + 3);
      ret->set_function("test.ping");
    }
    payloads.push_back(batch.SerializeAsString());
  }
  return payloads;
}

// Sends every payload over `sockets` DEALERs with a window; returns/s.
double IngestOnce(zmq::context_t& context, const std::string& endpoint,
                  const std::vector<std::string>& payloads, int total_returns) {
  const int socket_count = absl::GetFlag(FLAGS_sockets);
  const int window = absl::GetFlag(FLAGS_window);
  std::vector<zmq::socket_t> dealers;
  for (int s = 0; s < socket_count; ++s) {
    dealers.emplace_back(context, zmq::socket_type::dealer);
    dealers.back().set(zmq::sockopt::linger, 0);
    dealers.back().connect(endpoint);
  }
  std::vector<int> in_flight(socket_count, 0);
  std::vector<zmq::pollitem_t> items;
  for (auto& dealer : dealers) items.push_back({dealer.handle(), 0, ZMQ_POLLIN, 0});
  size_t next = 0;
  int64_t acked = 0;
  const std::string type(bus::kReturnType);
  Clock::time_point start = Clock::now();
  std::vector<zmq::message_t> frames;
  while (acked < total_returns) {
    for (int s = 0; s < socket_count; ++s) {
      while (in_flight[s] < window && next < payloads.size()) {
        dealers[s].send(zmq::buffer(type), zmq::send_flags::sndmore);
        dealers[s].send(zmq::buffer(payloads[next++]), zmq::send_flags::none);
        ++in_flight[s];
      }
    }
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(1000));
    for (int s = 0; s < socket_count; ++s) {
      while (true) {
        frames.clear();
        if (!zmq::recv_multipart(dealers[s], std::back_inserter(frames),
                                 zmq::recv_flags::dontwait)) {
          break;
        }
        if (frames.size() != 2) continue;
        acked += CountField1(
            absl::string_view(static_cast<const char*>(frames[1].data()), frames[1].size()));
        --in_flight[s];
      }
    }
  }
  return total_returns / Seconds(Clock::now() - start);
}

// Returns in the returns stream, counted page by page.
int64_t CountStoredReturns(RedisConnection& redis) {
  int64_t count = 0;
  std::string from = "-";
  while (true) {
    auto reply = redis.Command({"XRANGE", "muster:returns", from, "+", "COUNT", "500"});
    if (!reply.ok()) return -1;
    auto entries = ParseStreamEntries(reply->get());
    if (!entries.ok() || entries->empty()) break;
    for (const StreamEntry& entry : *entries) {
      if (!entry.fields.empty()) count += CountField1(entry.fields[0].second);
    }
    from = absl::StrCat("(", entries->back().id);
  }
  return count;
}

struct Latencies {
  double p50_ms = -1;
  double p99_ms = -1;
  int incomplete_jobs = 0;  // jobs that did not reach every socket in 2 s
};

// Injection latency of broadcast jobs to every SUB socket.
Latencies InjectOnce(RedisConnection& redis, std::vector<zmq::socket_t>& subs, int run,
                     int jobs) {
  Latencies latencies;
  std::vector<zmq::pollitem_t> items;
  for (auto& sub : subs) items.push_back({sub.handle(), 0, ZMQ_POLLIN, 0});
  std::vector<double> samples_ms;
  std::vector<zmq::message_t> frames;
  for (int j = 0; j < jobs; ++j) {
    wire::v1::JobEnvelope job = testing::MakeJob(absl::StrFormat("3%05d%014d", run, j), 1,
                                                 muster::v1::GLOB, "web-*", "dc1");
    std::vector<bool> got(subs.size(), false);
    size_t received = 0;
    Clock::time_point start = Clock::now();
    if (!testing::AddJob(redis, job).ok()) break;
    while (received < subs.size()) {
      if (zmq::poll(items.data(), items.size(), std::chrono::milliseconds(2000)) == 0) {
        ++latencies.incomplete_jobs;
        break;
      }
      Clock::time_point now = Clock::now();
      for (size_t s = 0; s < subs.size(); ++s) {
        if (!(items[s].revents & ZMQ_POLLIN)) continue;
        while (true) {
          frames.clear();
          if (!zmq::recv_multipart(subs[s], std::back_inserter(frames),
                                   zmq::recv_flags::dontwait)) {
            break;
          }
          wire::v1::JobEnvelope envelope;
          if (frames.size() == 2 && envelope.ParseFromArray(frames[1].data(), frames[1].size()) &&
              envelope.jid() == job.jid() && !got[s]) {
            got[s] = true;
            ++received;
            samples_ms.push_back(std::chrono::duration<double, std::milli>(now - start).count());
          }
        }
      }
    }
  }
  std::sort(samples_ms.begin(), samples_ms.end());
  if (samples_ms.empty()) return latencies;
  latencies.p50_ms = samples_ms[samples_ms.size() / 2];
  latencies.p99_ms = samples_ms[samples_ms.size() * 99 / 100];
  return latencies;
}

// Time from XADD of a LIST dispatch naming every id in `ids` until each
// listed minion's frame has arrived; median over `jobs` dispatches, or -1
// when a frame is missing after 5 s.
double InjectListOnce(RedisConnection& redis, std::vector<zmq::socket_t>& subs, int run, int jobs,
                      const std::string& ids, size_t expected_frames) {
  std::vector<zmq::pollitem_t> items;
  for (auto& sub : subs) items.push_back({sub.handle(), 0, ZMQ_POLLIN, 0});
  std::vector<double> samples_ms;
  std::vector<zmq::message_t> frames;
  for (int j = 0; j < jobs; ++j) {
    wire::v1::JobEnvelope job = testing::MakeJob(absl::StrFormat("4%05d%014d", run, j), 1,
                                                 muster::v1::LIST, ids, "dc1");
    size_t received = 0;
    Clock::time_point start = Clock::now();
    if (!testing::AddJob(redis, job).ok()) return -1;
    while (received < expected_frames) {
      if (zmq::poll(items.data(), items.size(), std::chrono::milliseconds(5000)) == 0) return -1;
      for (size_t s = 0; s < subs.size(); ++s) {
        if (!(items[s].revents & ZMQ_POLLIN)) continue;
        while (true) {
          frames.clear();
          if (!zmq::recv_multipart(subs[s], std::back_inserter(frames),
                                   zmq::recv_flags::dontwait)) {
            break;
          }
          wire::v1::JobEnvelope envelope;
          if (frames.size() == 2 && envelope.ParseFromArray(frames[1].data(), frames[1].size()) &&
              envelope.jid() == job.jid()) {
            ++received;
          }
        }
      }
    }
    samples_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(samples_ms.begin(), samples_ms.end());
  return samples_ms.empty() ? -1 : samples_ms[samples_ms.size() / 2];
}

// Microseconds per signature check of distinct signed broadcasts (each a
// cache miss), as the relay's job thread does it.
double VerifyMicros(int count) {
  std::unique_ptr<security::TrustedKeys> trusted = *security::TrustedKeys::Create(
      "", {security::PublicKeyHex(testing::TestSigningKey().public_key())});
  security::DispatchVerifier verifier(trusted.get(), "dc1");
  std::vector<wire::v1::JobEnvelope> jobs;
  for (int i = 0; i < count; ++i) {
    jobs.push_back(testing::MakeJob(absl::StrFormat("5%019d", i), 1, muster::v1::GLOB, "web-*",
                                    "dc1"));
    jobs.back().add_args(std::string(1000, 'a'));
    security::SignDispatch(testing::TestSigningKey(), jobs.back()).IgnoreError();
  }
  Clock::time_point start = Clock::now();
  int ok = 0;
  for (const wire::v1::JobEnvelope& job : jobs) ok += verifier.Verify(job) == security::Refusal::kNone;
  double micros = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / count;
  return ok == count ? micros : 1e9;
}

// Milliseconds to split a signed LIST of `ids` into per-minion envelopes
// with proofs (parse, tree, one check, every envelope serialized).
double ListSplitMillis(const std::string& ids) {
  wire::v1::JobEnvelope job = testing::MakeJob("60000000000000000001", 1, muster::v1::LIST, ids,
                                               "dc1");
  security::SignDispatch(testing::TestSigningKey(), job).IgnoreError();
  std::unique_ptr<security::TrustedKeys> trusted = *security::TrustedKeys::Create(
      "", {security::PublicKeyHex(testing::TestSigningKey().public_key())});
  security::DispatchVerifier verifier(trusted.get(), "dc1");
  Clock::time_point start = Clock::now();
  std::shared_ptr<const relay::ListDispatch> list = *relay::ListDispatch::Create(job);
  if (verifier.Verify(list->ParsedEnvelopeFor(0)) != security::Refusal::kNone) return 1e9;
  size_t bytes = 0;
  for (uint32_t i = 0; i < list->ids().size(); ++i) bytes += list->EnvelopeFor(i).size();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return bytes > 0 ? ms : 1e9;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string command = absl::StrJoin(argv, argv + argc, " ");
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  const int total = absl::GetFlag(FLAGS_returns);

  testing::RedisServer redis_server;
  if (absl::Status s = redis_server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  // --undefok: the same bench also drives a relayd older than signatures.
  testing::RelayProcess relay("dc1", redis_server.address_string(),
                              {"--heartbeat_interval_ms=1000", "--log_level=warn",
                               "--undefok=trusted_key"});
  if (absl::Status s = relay.Start(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto redis = redis_server.Connect();
  if (!redis.ok()) return 1;
  zmq::context_t context(1);

  std::vector<std::string> payloads = BuildPayloads(total, absl::GetFlag(FLAGS_returns_per_message));
  bench::Row ingest{"return ingestion, bus -> relayd -> Redis (acked)", {}, "returns/s", {},
                    bench::Target::AtLeast(kReturnsTarget, "returns/s")};
  for (int run = 0; run < runs; ++run) {
    (*redis)->Command({"DEL", "muster:returns"}).IgnoreError();
    double rate = IngestOnce(context, relay.return_endpoint(), payloads, total);
    int64_t stored = CountStoredReturns(**redis);
    std::fprintf(stderr, "ingest run %d: %.0f returns/s, %lld of %d in Redis\n", run + 1, rate,
                 static_cast<long long>(stored), total);
    if (stored != total) rate = 0;  // a lost return fails the figure
    ingest.values.push_back(rate);
  }

  // Subscribers: '*' plus each virtual minion's own topic.
  const int sub_count = absl::GetFlag(FLAGS_sub_sockets);
  const int per_socket = absl::GetFlag(FLAGS_subscribers) / sub_count;
  std::vector<zmq::socket_t> subs;
  std::string all_ids;
  for (int s = 0; s < sub_count; ++s) {
    subs.emplace_back(context, zmq::socket_type::sub);
    subs.back().set(zmq::sockopt::linger, 0);
    subs.back().set(zmq::sockopt::subscribe, std::string(bus::kBroadcastTopic));
    for (int v = 0; v < per_socket; ++v) {
      std::string id = absl::StrFormat("web-%06d.dc1.example.com", s * per_socket + v);
      subs.back().set(zmq::sockopt::subscribe, bus::MinionTopic(id));
      absl::StrAppend(&all_ids, all_ids.empty() ? "" : ",", id);
    }
    subs.back().connect(relay.publish_endpoint());
  }
  // Warm-up: until one job reaches every socket, all subscriptions are in.
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (InjectOnce(**redis, subs, 90 + attempt, 1).incomplete_jobs == 0) break;
  }
  bench::Row p50{"job injection latency p50, XADD -> frame on 100 SUB sockets", {}, "ms", {},
                 bench::Target::AtMost(kP50TargetMs, "ms")};
  bench::Row p99{"job injection latency p99, 10,000 virtual minions", {}, "ms", {},
                 bench::Target::AtMost(kP99TargetMs, "ms")};
  for (int run = 0; run < runs; ++run) {
    Latencies latency = InjectOnce(**redis, subs, run, absl::GetFlag(FLAGS_jobs));
    if (latency.incomplete_jobs > 0) {
      std::fprintf(stderr, "injection run %d: %d jobs missed a socket\n", run + 1,
                   latency.incomplete_jobs);
      latency = Latencies{};  // a lost frame fails the figure
      latency.p50_ms = latency.p99_ms = 1e9;
    }
    p50.values.push_back(latency.p50_ms);
    p99.values.push_back(latency.p99_ms);
  }
  bench::Row list{absl::StrFormat("LIST dispatch to %d minions, XADD -> last per-minion frame",
                                  per_socket * sub_count),
                  {}, "ms", {}, bench::Target::AtMost(kListTargetMs, "ms")};
  for (int run = 0; run < runs; ++run) {
    double ms = InjectListOnce(**redis, subs, run, absl::GetFlag(FLAGS_list_jobs), all_ids,
                               static_cast<size_t>(per_socket * sub_count));
    if (ms < 0) {
      std::fprintf(stderr, "list run %d: a listed minion missed its frame\n", run + 1);
      ms = 1e9;
    }
    list.values.push_back(ms);
  }

  bench::Row verify{"signature check of one dispatch (in-process, Ed25519)", {}, "us", {},
                    bench::Target::AtMost(200, "us")};
  bench::Row split{absl::StrFormat("LIST of %d ids split into envelopes with proofs (in-process)",
                                   per_socket * sub_count),
                   {}, "ms", {}, bench::Target::AtMost(100, "ms")};
  for (int run = 0; run < runs; ++run) {
    verify.values.push_back(VerifyMicros(1000));
    split.values.push_back(ListSplitMillis(all_ids));
  }

  std::printf("relay_bench: one relayd, real redis-server, bench sockets in one process\n");
  std::printf("command: %s\n", command.c_str());
  std::printf("machine: %s\n", bench::MachineInfo().c_str());
  std::printf("ingestion: %d returns/run, %d sockets, %d returns/message, window %d; "
              "injection: %d jobs/run, %d SUB sockets, %d virtual minions; %d runs\n\n",
              total, absl::GetFlag(FLAGS_sockets), absl::GetFlag(FLAGS_returns_per_message),
              absl::GetFlag(FLAGS_window), absl::GetFlag(FLAGS_jobs), sub_count,
              per_socket * sub_count, runs);
  bench::BenchReport report("relay_bench", command);
  for (bench::Row* row : {&ingest, &p50, &p99, &list, &verify, &split}) {
    report.Add(std::move(*row));
  }
  report.Print();
  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  if (!json_out.empty()) {
    if (absl::Status written = report.WriteJson(json_out); !written.ok()) {
      std::fprintf(stderr, "relay_bench: %s\n", written.ToString().c_str());
    }
  }
  relay.Stop();
  return 0;
}

}  // namespace
}  // namespace muster

int main(int argc, char** argv) { return muster::Main(argc, argv); }
