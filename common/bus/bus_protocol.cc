#include "common/bus/bus_protocol.h"

#include "absl/strings/str_cat.h"

namespace muster::bus {

std::string MinionTopic(absl::string_view minion_id) {
  return absl::StrCat("@", minion_id, "@");
}

}  // namespace muster::bus
