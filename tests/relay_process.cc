#include "tests/relay_process.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/redis/redis_stream.h"
#include "common/security/dispatch_signature.h"

namespace muster::testing {

RelayProcess::RelayProcess(std::string datacenter, std::string redis_address,
                           std::vector<std::string> extra_flags)
    : datacenter_(std::move(datacenter)),
      redis_address_(std::move(redis_address)),
      extra_flags_(std::move(extra_flags)),
      publish_port_(FreePort()),
      return_port_(FreePort()),
      state_dir_(MakeTempDir("relayd")) {}

absl::Status RelayProcess::Start() {
  std::vector<std::string> argv = {
      RunfilePath("relay/relayd"),
      absl::StrCat("--datacenter=", datacenter_),
      absl::StrCat("--redis=", redis_address_),
      absl::StrCat("--publish_port=", publish_port_),
      absl::StrCat("--return_port=", return_port_),
      absl::StrCat("--state_dir=", state_dir_),
      "--heartbeat_interval_ms=200",
      "--inject_delay_ms=500",
  };
  bool trust_named = false;
  for (const std::string& flag : extra_flags_) {
    if (absl::StartsWith(flag, "--trusted_key") || absl::StartsWith(flag, "--insecure")) {
      trust_named = true;
    }
  }
  if (!trust_named) argv.push_back(TestTrustedKeyFlag());
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  std::string log_path = absl::StrCat(state_dir_, "/relayd.log");
  // A restart appends to the same log: only a ready line after the old
  // contents counts.
  size_t previous_size = process_.ReadLog().size();
  absl::Status started = process_.Start(argv, log_path);
  if (!started.ok()) return started;
  std::string ready_line;
  bool ready = WaitFor(
      [&] {
        std::string log = process_.ReadLog();
        size_t at = log.rfind("relayd ready ");
        if (at == std::string::npos || at < previous_size) return !process_.running();
        size_t end = log.find('\n', at);
        if (end == std::string::npos) return false;
        ready_line = log.substr(at, end - at);
        return true;
      },
      absl::Seconds(10));
  if (!ready || ready_line.empty()) {
    return absl::UnavailableError(absl::StrCat("relayd did not start:\n", process_.ReadLog()));
  }
  for (absl::string_view field : absl::StrSplit(ready_line, ' ')) {
    if (absl::ConsumePrefix(&field, "publish=")) publish_endpoint_ = std::string(field);
    if (absl::ConsumePrefix(&field, "return=")) return_endpoint_ = std::string(field);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RelayProcess::public_key() const {
  std::string path = absl::StrCat(state_dir_, "/relay_curve.pub");
  std::ifstream in(path);
  std::string key;
  if (!(in >> key) || key.size() != 40) {
    return absl::NotFoundError(absl::StrCat(path, ": no CURVE public key"));
  }
  return key;
}

wire::v1::JobEnvelope MakeJob(const std::string& jid, uint32_t attempt,
                              muster::v1::TargetType type, const std::string& expression,
                              const std::string& datacenter, absl::Duration timeout) {
  wire::v1::JobEnvelope job;
  job.set_jid(jid);
  job.set_attempt(attempt);
  job.mutable_target()->set_type(type);
  job.mutable_target()->set_expression(expression);
  job.set_function("test.ping");
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  job.set_created_at_ms(now_ms);
  job.set_deadline_ms(now_ms + absl::ToInt64Milliseconds(timeout));
  job.set_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(timeout)));
  job.set_datacenter(datacenter);
  job.set_submitter("test");
  return job;
}

const security::SigningKey& TestSigningKey() {
  static const security::SigningKey* const key =
      new security::SigningKey(security::SigningKey::Generate());
  return *key;
}

std::string TestTrustedKeyFlag() {
  return absl::StrCat("--trusted_key=", security::PublicKeyHex(TestSigningKey().public_key()));
}

absl::Status AcceptMinionKey(RedisConnection& redis, const std::string& datacenter,
                             const std::string& minion_id, const std::string& public_key) {
  wire::v1::MinionKeyRecord record;
  record.set_state(wire::v1::MinionKeyRecord::ACCEPTED);
  record.set_public_key(public_key);
  int64_t now_ms = absl::ToUnixMillis(absl::Now());
  record.set_first_seen_ms(now_ms);
  record.set_decided_at_ms(now_ms);
  record.set_decided_by("test");
  redis.Append({"HSET", absl::StrCat("muster:minion_keys:", datacenter), minion_id,
                record.SerializeAsString()});
  redis.Append({"INCR", absl::StrCat("muster:minion_keys_version:", datacenter)});
  absl::StatusOr<std::vector<RedisReply>> replies = redis.ReadReplies();
  if (!replies.ok()) return replies.status();
  for (const RedisReply& reply : *replies) {
    if (reply.IsError()) return absl::InternalError(std::string(reply.str()));
  }
  return absl::OkStatus();
}

absl::Status AddJob(RedisConnection& redis, const wire::v1::JobEnvelope& job) {
  if (!job.signature().empty()) {
    return AddJobBytes(redis, job.datacenter(), job.SerializeAsString());
  }
  wire::v1::JobEnvelope signed_job = job;
  if (absl::Status signed_ok = security::SignDispatch(TestSigningKey(), signed_job);
      !signed_ok.ok()) {
    return signed_ok;
  }
  return AddJobBytes(redis, job.datacenter(), signed_job.SerializeAsString());
}

absl::Status AddJobBytes(RedisConnection& redis, const std::string& datacenter,
                         const std::string& value) {
  std::string key = absl::StrCat("muster:jobs:", datacenter);
  absl::StatusOr<RedisReply> reply = redis.Command({"XADD", key, "*", "job", value});
  if (!reply.ok()) return reply.status();
  if (!reply->IsString()) return absl::InternalError(std::string(reply->str()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ReadStreamValues(RedisConnection& redis,
                                                          const std::string& stream) {
  absl::StatusOr<RedisReply> reply = redis.Command({"XRANGE", stream, "-", "+"});
  if (!reply.ok()) return reply.status();
  absl::StatusOr<std::vector<StreamEntry>> entries = ParseStreamEntries(reply->get());
  if (!entries.ok()) return entries.status();
  std::vector<std::string> values;
  for (StreamEntry& entry : *entries) {
    if (!entry.fields.empty()) values.push_back(std::move(entry.fields.front().second));
  }
  return values;
}

absl::StatusOr<std::vector<wire::v1::ReturnBatch>> ReadReturnBatches(RedisConnection& redis) {
  absl::StatusOr<std::vector<std::string>> values = ReadStreamValues(redis, "muster:returns");
  if (!values.ok()) return values.status();
  std::vector<wire::v1::ReturnBatch> batches(values->size());
  for (size_t i = 0; i < values->size(); ++i) {
    if (!batches[i].ParseFromString((*values)[i])) {
      return absl::DataLossError("returns entry does not parse");
    }
  }
  return batches;
}

absl::StatusOr<std::vector<wire::v1::RelayEvent>> ReadRelayEvents(RedisConnection& redis) {
  absl::StatusOr<std::vector<std::string>> values = ReadStreamValues(redis, "muster:events");
  if (!values.ok()) return values.status();
  std::vector<wire::v1::RelayEvent> events(values->size());
  for (size_t i = 0; i < values->size(); ++i) {
    if (!events[i].ParseFromString((*values)[i])) {
      return absl::DataLossError("events entry does not parse");
    }
  }
  return events;
}

}  // namespace muster::testing
