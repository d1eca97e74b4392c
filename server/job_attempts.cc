#include "server/job_attempts.h"

#include <algorithm>


namespace muster::server {

int DatacenterIndex(const std::vector<std::string>& names, absl::string_view name) {
  auto it = std::lower_bound(names.begin(), names.end(), name);
  if (it == names.end() || *it != name) return -1;
  return static_cast<int>(it - names.begin());
}

DeliveryInfo DeliveryOf(const DeliveryRow& row) {
  const auto status = static_cast<DeliveryStatus>(row.status);
  DeliveryInfo info;
  info.delivered = status == DeliveryStatus::kDelivered;
  info.expired = status == DeliveryStatus::kExpired;
  info.interrupted = status == DeliveryStatus::kInterrupted;
  info.at_ms = row.at_ms;
  info.relay_id = row.relay_id;
  info.messages = row.messages;
  info.unreachable = row.unreachable;
  size_t kept = std::min(row.unreachable_ids.size(), kMaxUnreachableIds);
  info.unreachable_ids.assign(row.unreachable_ids.begin(), row.unreachable_ids.begin() + kept);
  return info;
}

AttemptRow AttemptRowOf(int64_t job_num, const std::vector<std::string>& datacenters,
                        const JobAttempt& attempt) {
  AttemptRow row;
  row.job_num = job_num;
  row.attempt = attempt.attempt;
  row.started_at_ms = attempt.started_at_ms;
  row.deadline_ms = attempt.deadline_ms;
  row.ended_at_ms = attempt.ended_at_ms;
  row.state = static_cast<int>(attempt.state);
  for (size_t i = 0; i < datacenters.size(); ++i) {
    if (attempt.asked[i] > 0) row.asked.emplace_back(datacenters[i], attempt.asked[i]);
  }
  return row;
}

std::vector<JobAttempt> RecoverAttempts(const JobRow& job,
                                        const std::vector<std::string>& datacenters,
                                        const std::vector<uint64_t>& expected,
                                        const std::vector<AttemptRow>& rows,
                                        const std::vector<DeliveryRow>& deliveries) {
  std::vector<JobAttempt> attempts(std::max<uint32_t>(job.attempt, 1));
  for (size_t k = 0; k < attempts.size(); ++k) {
    JobAttempt& a = attempts[k];
    a.attempt = static_cast<uint32_t>(k + 1);
    a.asked.assign(datacenters.size(), 0);
    a.deliveries.resize(datacenters.size());
  }
  // What a job written before the attempts table tells: attempt 1 asked
  // every expected minion, the latest attempt's times are the job row's,
  // and a datacenter with a delivery report was sent that attempt.
  attempts.front().started_at_ms = job.created_at_ms;
  attempts.front().asked = expected;
  attempts.back().started_at_ms = job.attempt_at_ms;
  attempts.back().deadline_ms = job.deadline_ms;
  for (const DeliveryRow& d : deliveries) {
    int index = DatacenterIndex(datacenters, d.datacenter);
    if (index < 0 || d.attempt == 0 || d.attempt > attempts.size()) continue;
    JobAttempt& a = attempts[d.attempt - 1];
    a.deliveries[index] = DeliveryOf(d);
    if (a.asked[index] == 0) a.asked[index] = 1;  // sent; how many is not known
  }
  for (const AttemptRow& row : rows) {
    if (row.attempt == 0 || row.attempt > attempts.size()) continue;
    JobAttempt& a = attempts[row.attempt - 1];
    a.started_at_ms = row.started_at_ms;
    a.deadline_ms = row.deadline_ms;
    a.ended_at_ms = row.ended_at_ms;
    a.state = static_cast<JobState>(row.state);
    a.asked.assign(datacenters.size(), 0);
    for (const auto& [datacenter, count] : row.asked) {
      int index = DatacenterIndex(datacenters, datacenter);
      if (index >= 0) a.asked[index] = count;
    }
  }
  return attempts;
}

std::vector<AttemptDelivery> AttemptsIn(const std::vector<JobAttempt>& attempts, size_t index,
                                        uint32_t* latest_sent, DeliveryInfo* latest_delivery) {
  std::vector<AttemptDelivery> out;
  *latest_sent = 0;
  *latest_delivery = DeliveryInfo{};
  for (const JobAttempt& attempt : attempts) {
    out.push_back({attempt.attempt, attempt.asked[index], attempt.deliveries[index]});
    if (attempt.asked[index] > 0) {
      *latest_sent = attempt.attempt;
      *latest_delivery = attempt.deliveries[index];
    }
  }
  return out;
}

std::vector<AttemptSummary> SummarizeAttempts(const std::vector<JobAttempt>& attempts,
                                              const JobRow& job) {
  std::vector<AttemptSummary> out;
  for (const JobAttempt& attempt : attempts) {
    AttemptSummary summary;
    summary.attempt = attempt.attempt;
    summary.started_at_ms = attempt.started_at_ms;
    summary.deadline_ms = attempt.deadline_ms;
    bool latest = attempt.attempt == job.attempt;
    summary.ended_at_ms = latest ? job.ended_at_ms : attempt.ended_at_ms;
    summary.state = latest ? job.state : attempt.state;
    for (uint64_t asked : attempt.asked) summary.asked += asked;
    out.push_back(summary);
  }
  return out;
}

}  // namespace muster::server
