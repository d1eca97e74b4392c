#include "common/json/proto_json.h"

#include <nlohmann/json.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "common/text/utf8.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace muster {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using Json = nlohmann::ordered_json;  // keeps protobuf's field order

// Whether messages of type `type` can hold a bytes field, at any depth.
bool HoldsBytes(const Descriptor* type, absl::flat_hash_set<const Descriptor*>* seen) {
  if (!seen->insert(type).second) return false;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (field->type() == FieldDescriptor::TYPE_BYTES) return true;
    if (field->type() == FieldDescriptor::TYPE_MESSAGE && !field->is_map() &&
        HoldsBytes(field->message_type(), seen)) {
      return true;
    }
  }
  return false;
}

// Replaces the base64 of each singular bytes field of `message` in `json`
// (the object protobuf printed for it) by the text form described in the
// header, descending into message fields.
void RenderBytesFields(const Message& message, Json& json) {
  const Descriptor* type = message.GetDescriptor();
  const Reflection* reflection = message.GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    auto it = json.find(field->name());
    if (it == json.end() || field->is_map()) continue;
    if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (field->is_repeated()) {
        for (int k = 0; k < reflection->FieldSize(message, field) && k < static_cast<int>(it->size()); ++k) {
          RenderBytesFields(reflection->GetRepeatedMessage(message, field, k), (*it)[k]);
        }
      } else if (reflection->HasField(message, field) && it->is_object()) {
        RenderBytesFields(reflection->GetMessage(message, field), *it);
      }
    } else if (field->type() == FieldDescriptor::TYPE_BYTES && !field->is_repeated()) {
      std::string bytes = reflection->GetString(message, field);
      if (IsValidUtf8(bytes)) {
        *it = bytes;
      } else {
        *it = ReplaceInvalidUtf8(bytes);
        json[field->name() + "_base64"] = absl::Base64Escape(bytes);
      }
    }
  }
}

}  // namespace

std::string ProtoToJson(const Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  // Only fails for messages with unresolvable Any fields, which the API has none of.
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  absl::flat_hash_set<const Descriptor*> seen;
  if (!HoldsBytes(message.GetDescriptor(), &seen)) return json;
  Json tree = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded()) return json;
  RenderBytesFields(message, tree);
  return tree.dump();
}

}  // namespace muster
