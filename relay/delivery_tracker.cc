#include "relay/delivery_tracker.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace muster::relay {
namespace {

// Receipts of a dispatch not tracked (yet): how many are kept, how long.
constexpr size_t kMaxEarlyReceipts = 1000000;
constexpr int64_t kEarlyReceiptKeepMs = 30000;

std::string DispatchKey(absl::string_view jid, uint32_t attempt) {
  return absl::StrCat(jid, "/", attempt);
}

}  // namespace

void DispatchHandoff::Push(TrackedDispatch dispatch) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(dispatch));
}

std::vector<TrackedDispatch> DispatchHandoff::TakeAll() {
  absl::MutexLock lock(&mu_);
  std::vector<TrackedDispatch> taken;
  taken.swap(queue_);
  return taken;
}

DeliveryTracker::DeliveryTracker(DeliveryTrackerOptions options) : options_(options) {}

uint32_t DeliveryTracker::Intern(absl::string_view minion_id) {
  uint32_t number = ids_.Intern(minion_id);
  if (number == routes_.size()) routes_.emplace_back();
  return number;
}

DeliveryTracker::Dispatch* DeliveryTracker::Find(absl::string_view jid, uint32_t attempt) {
  // Receipts and returns come in runs of the same dispatch.
  if (last_found_ != nullptr && last_found_->attempt == attempt && last_found_->jid == jid) {
    return last_found_;
  }
  auto it = dispatches_.find(DispatchKey(jid, attempt));
  if (it == dispatches_.end()) return nullptr;
  last_found_ = it->second.get();
  return last_found_;
}

int64_t DeliveryTracker::Position(const Dispatch& dispatch, uint32_t minion) {
  if (dispatch.dense) {
    if (minion < dispatch.members.front()) return -1;
    uint64_t position = minion - dispatch.members.front();
    return position < dispatch.members.size() ? static_cast<int64_t>(position) : -1;
  }
  auto it = std::lower_bound(dispatch.members.begin(), dispatch.members.end(), minion);
  if (it == dispatch.members.end() || *it != minion) return -1;
  return it - dispatch.members.begin();
}

void DeliveryTracker::Track(TrackedDispatch tracked, int64_t now_ms) {
  last_now_ms_ = now_ms;
  std::string key = DispatchKey(tracked.jid, tracked.attempt);
  if (dispatches_.contains(key)) return;
  auto dispatch = std::make_unique<Dispatch>();
  dispatch->jid = std::move(tracked.jid);
  dispatch->attempt = tracked.attempt;
  dispatch->deadline_ms = tracked.deadline_ms;
  dispatch->envelope = std::make_shared<const std::string>(std::move(tracked.envelope));
  dispatch->list = std::move(tracked.list);
  if (tracked.expected == last_expected_) {
    // Comparing the ids costs less than looking each one up.
    dispatch->members = last_members_;
  } else {
    dispatch->members.reserve(tracked.expected.size());
    for (const std::string& id : tracked.expected) dispatch->members.push_back(Intern(id));
    if (!std::is_sorted(dispatch->members.begin(), dispatch->members.end())) {
      std::sort(dispatch->members.begin(), dispatch->members.end());
    }
    dispatch->members.erase(std::unique(dispatch->members.begin(), dispatch->members.end()),
                            dispatch->members.end());
    last_expected_ = std::move(tracked.expected);
    last_members_ = dispatch->members;
  }
  dispatch->dense = !dispatch->members.empty() &&
                    dispatch->members.back() - dispatch->members.front() + 1 ==
                        dispatch->members.size();
  dispatch->states.assign(dispatch->members.size(), kWaiting);
  dispatch->declined.assign(dispatch->members.size(), false);
  dispatch->waiting = dispatch->members.size();
  dispatch->round_interval_ms = options_.first_resend_ms;
  dispatch->next_round_ms = now_ms + options_.first_resend_ms;
  Dispatch* tracked_dispatch = dispatch.get();
  dispatches_.emplace(key, std::move(dispatch));
  ++stats_.dispatches_tracked;
  if (auto early = early_.find(key); early != early_.end()) {
    for (const EarlyReceipt& receipt : early->second) {
      int64_t position = Position(*tracked_dispatch, receipt.minion);
      if (receipt.kind == kEarlyReturn) {
        MarkReturned(tracked_dispatch, position);
      } else {
        ApplyReceipt(tracked_dispatch, position, receipt.kind == kEarlyDeclined, now_ms);
      }
    }
    early_count_ -= early->second.size();
    if (early_last_ == &early->second) early_last_ = nullptr;
    early_.erase(early);
  }
}

void DeliveryTracker::QueueResend(const Dispatch& dispatch, uint32_t minion,
                                  std::vector<Resend>* out) {
  std::shared_ptr<const std::string> envelope = dispatch.envelope;
  if (dispatch.list != nullptr) {
    // The minion's own envelope and proof, made when needed: most minions
    // of a dispatch never need a re-send.
    if (std::optional<uint32_t> index = dispatch.list->IndexOf(ids_.id(minion)); index) {
      envelope = std::make_shared<const std::string>(dispatch.list->EnvelopeFor(*index));
    }
  }
  out->push_back({routes_[minion].identity, std::string(ids_.id(minion)), std::move(envelope)});
}

void DeliveryTracker::Heard(absl::string_view minion_id, absl::string_view identity,
                            int64_t now_ms) {
  Heard(Intern(minion_id), identity, now_ms);
}

void DeliveryTracker::Heard(uint32_t minion, absl::string_view identity, int64_t now_ms) {
  last_now_ms_ = now_ms;
  Route& route = routes_[minion];
  if (route.known && route.identity == identity) return;
  route.identity = std::string(identity);
  route.known = true;
  // A new connection: whatever was published while this minion was away
  // (or before its subscription arrived) is lost on the PUB side.
  for (const auto& [key, dispatch] : dispatches_) {
    if (dispatch->waiting == 0 || dispatch->deadline_ms < now_ms) continue;
    int64_t position = Position(*dispatch, minion);
    if (position >= 0 && dispatch->states[position] == kWaiting) {
      QueueResend(*dispatch, minion, &on_connect_);
    }
  }
}

void DeliveryTracker::OnReceipt(const wire::v1::Receipt& receipt, int64_t now_ms) {
  OnReceipt(receipt, Intern(receipt.minion_id()), now_ms);
}

void DeliveryTracker::OnReceipt(const wire::v1::Receipt& receipt, uint32_t minion,
                                int64_t now_ms) {
  last_now_ms_ = now_ms;
  bool declined = receipt.status() == wire::v1::Receipt::DECLINED;
  Dispatch* dispatch = Find(receipt.jid(), receipt.attempt());
  if (dispatch == nullptr) {
    // Usually a minion faster than the relay's own bookkeeping: the
    // receipt of a dispatch just published, before the job thread has
    // fetched its expected minions. Kept a while and applied on Track.
    if (early_count_ >= kMaxEarlyReceipts) {
      ++stats_.receipts_untracked;
      return;
    }
    EarlyOf(receipt.jid(), receipt.attempt())
        .push_back({minion, declined ? kEarlyDeclined : kEarlyAccepted, now_ms});
    ++early_count_;
    return;
  }
  ApplyReceipt(dispatch, Position(*dispatch, minion), declined, now_ms);
}

std::vector<DeliveryTracker::EarlyReceipt>& DeliveryTracker::EarlyOf(absl::string_view jid,
                                                                     uint32_t attempt) {
  if (early_last_ != nullptr && early_last_attempt_ == attempt && early_last_jid_ == jid) {
    return *early_last_;
  }
  early_last_ = &early_[DispatchKey(jid, attempt)];
  early_last_jid_ = std::string(jid);
  early_last_attempt_ = attempt;
  return *early_last_;
}

void DeliveryTracker::ApplyReceipt(Dispatch* dispatch, int64_t position, bool declined,
                                   int64_t now_ms) {
  if (position < 0) {
    ++stats_.receipts_untracked;
    return;
  }
  ++stats_.receipts;
  if (declined) ++stats_.receipts_declined;
  if (dispatch->states[position] != kWaiting) return;
  --dispatch->waiting;
  dispatch->states[position] = kToReport;
  dispatch->declined[position] = declined;
  if (dispatch->to_report.empty()) {
    dispatch->report_due_ms = now_ms + options_.report_delay_ms;
  }
  dispatch->to_report.push_back(static_cast<uint32_t>(position));
}

void DeliveryTracker::OnReturn(absl::string_view jid, uint32_t attempt,
                               absl::string_view minion_id) {
  OnReturn(jid, attempt, Intern(minion_id));
}

void DeliveryTracker::OnReturn(absl::string_view jid, uint32_t attempt, uint32_t minion) {
  Dispatch* dispatch = Find(jid, attempt);
  if (dispatch == nullptr) {
    // A quick minion's return can beat the dispatch's tracking (its
    // expected minions are read from Redis after the publish): keep it, or
    // the minion would look unacknowledged and be re-sent the dispatch.
    if (early_count_ < kMaxEarlyReceipts) {
      EarlyOf(jid, attempt).push_back({minion, kEarlyReturn, NowMsHint()});
      ++early_count_;
    }
    return;
  }
  MarkReturned(dispatch, Position(*dispatch, minion));
}

void DeliveryTracker::MarkReturned(Dispatch* dispatch, int64_t position) {
  if (position < 0) return;
  if (dispatch->states[position] == kWaiting) --dispatch->waiting;
  dispatch->states[position] = kReturned;
}

void DeliveryTracker::TakeResends(int64_t now_ms, size_t max, std::vector<Resend>* out) {
  last_now_ms_ = now_ms;
  size_t before = out->size();
  TakeDueResends(now_ms, max, out);
  stats_.resends += out->size() - before;
}

void DeliveryTracker::TakeDueResends(int64_t now_ms, size_t max, std::vector<Resend>* out) {
  size_t taken = std::min(max, on_connect_.size());
  for (size_t i = 0; i < taken; ++i) out->push_back(std::move(on_connect_[i]));
  on_connect_.erase(on_connect_.begin(), on_connect_.begin() + taken);
  for (auto& [key, dispatch] : dispatches_) {
    if (out->size() >= max) return;
    if (dispatch->next_round_ms > now_ms) continue;
    if (dispatch->waiting == 0 || dispatch->deadline_ms < now_ms) {
      dispatch->next_round_ms = INT64_MAX;
      continue;
    }
    for (size_t p = 0; p < dispatch->members.size(); ++p) {
      uint32_t minion = dispatch->members[p];
      // Never heard from: nothing to send it over. It gets the dispatch
      // when it connects (Heard).
      if (dispatch->states[p] == kWaiting && routes_[minion].known) {
        QueueResend(*dispatch, minion, out);
      }
    }
    dispatch->round_interval_ms =
        std::min(dispatch->round_interval_ms * 2, options_.max_resend_interval_ms);
    dispatch->next_round_ms = now_ms + dispatch->round_interval_ms;
  }
}

std::vector<wire::v1::DispatchReceipts> DeliveryTracker::TakeReports(int64_t now_ms) {
  last_now_ms_ = now_ms;
  std::vector<wire::v1::DispatchReceipts> reports;
  for (auto& [key, dispatch] : dispatches_) {
    if (dispatch->to_report.empty() || dispatch->report_due_ms > now_ms) continue;
    wire::v1::DispatchReceipts* report = nullptr;
    for (uint32_t position : dispatch->to_report) {
      if (dispatch->states[position] != kToReport) continue;  // returned since
      dispatch->states[position] = kReported;
      if (report == nullptr ||
          static_cast<size_t>(report->minion_ids_size()) >= options_.max_report_ids) {
        report = &reports.emplace_back();
        report->set_jid(dispatch->jid);
        report->set_attempt(dispatch->attempt);
      }
      absl::string_view id = ids_.id(dispatch->members[position]);
      report->add_minion_ids(std::string(id));
      if (dispatch->declined[position]) report->add_declined(std::string(id));
      ++stats_.reported;
    }
    dispatch->to_report.clear();
    dispatch->report_due_ms = INT64_MAX;
  }
  return reports;
}

void DeliveryTracker::Expire(int64_t now_ms) {
  last_now_ms_ = now_ms;
  for (auto it = early_.begin(); it != early_.end();) {
    // A dispatch that never got tracked (no expected-minions key).
    if (it->second.front().at_ms + kEarlyReceiptKeepMs < now_ms) {
      for (const EarlyReceipt& receipt : it->second) {
        if (receipt.kind != kEarlyReturn) ++stats_.receipts_untracked;
      }
      early_count_ -= it->second.size();
      if (early_last_ == &it->second) early_last_ = nullptr;
      early_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = dispatches_.begin(); it != dispatches_.end();) {
    // Receipts still held are reported first (TakeReports runs before).
    if (it->second->deadline_ms < now_ms && it->second->to_report.empty()) {
      if (last_found_ == it->second.get()) last_found_ = nullptr;
      dispatches_.erase(it++);
    } else {
      ++it;
    }
  }
}

int64_t DeliveryTracker::NextDueMs() const {
  int64_t due = on_connect_.empty() ? INT64_MAX : 0;
  for (const auto& [key, dispatch] : dispatches_) {
    due = std::min(due, dispatch->report_due_ms);
    if (dispatch->waiting > 0) due = std::min(due, dispatch->next_round_ms);
  }
  return due;
}

uint64_t DeliveryTracker::waiting() const {
  uint64_t waiting = 0;
  for (const auto& [key, dispatch] : dispatches_) waiting += dispatch->waiting;
  return waiting;
}

}  // namespace muster::relay
