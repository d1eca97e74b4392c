#include "common/json/proto_json.h"

#include "google/protobuf/util/json_util.h"

namespace muster {

std::string ProtoToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  // Only fails for messages with unresolvable Any fields, which the API has none of.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

}  // namespace muster
