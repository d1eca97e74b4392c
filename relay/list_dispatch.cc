#include "relay/list_dispatch.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/target/target.h"

namespace muster::relay {

absl::StatusOr<std::shared_ptr<const ListDispatch>> ListDispatch::Create(
    const wire::v1::JobEnvelope& envelope) {
  if (envelope.target().type() != muster::v1::LIST) {
    return absl::InvalidArgumentError(
        absl::StrCat("dispatch ", envelope.jid(), ": target type ", envelope.target().type(),
                     " is not LIST"));
  }
  absl::StatusOr<Target> target = Target::Parse(TargetKind::kList, envelope.target().expression());
  if (!target.ok()) return target.status();
  const std::vector<std::string>* ids = target->ListIds();
  if (ids == nullptr || ids->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dispatch ", envelope.jid(), ": LIST target names no id"));
  }
  wire::v1::JobEnvelope base = envelope;
  base.clear_target();
  base.clear_list_proof();
  return std::shared_ptr<const ListDispatch>(new ListDispatch(*ids, base.SerializeAsString()));
}

ListDispatch::ListDispatch(std::vector<std::string> ids, std::string base)
    : ids_(std::move(ids)), tree_(ids_), base_(std::move(base)) {
  index_.reserve(ids_.size());
  for (uint32_t i = 0; i < ids_.size(); ++i) index_.emplace(ids_[i], i);
}

std::optional<uint32_t> ListDispatch::IndexOf(absl::string_view id) const {
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::string ListDispatch::EnvelopeFor(uint32_t index) const {
  wire::v1::JobEnvelope tail;
  tail.mutable_target()->set_type(muster::v1::LIST);
  tail.mutable_target()->set_expression(ids_[index]);
  *tail.mutable_list_proof() = tree_.Proof(index);
  std::string out;
  out.reserve(base_.size() + tail.ByteSizeLong());
  out.append(base_);
  tail.AppendToString(&out);
  return out;
}

wire::v1::JobEnvelope ListDispatch::ParsedEnvelopeFor(uint32_t index) const {
  wire::v1::JobEnvelope envelope;
  envelope.ParseFromString(EnvelopeFor(index));
  return envelope;
}

}  // namespace muster::relay
