// The one JSON rendering of API messages, shared by jobctl --json and the
// dashboard's /api endpoints so scripts see the same fields everywhere:
// proto field names (snake_case), every field present (zeros and empty
// lists too), enums by name, 64-bit integers as strings (proto3 JSON).
#ifndef MUSTER_COMMON_JSON_PROTO_JSON_H_
#define MUSTER_COMMON_JSON_PROTO_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace muster {

std::string ProtoToJson(const google::protobuf::Message& message);

}  // namespace muster

#endif  // MUSTER_COMMON_JSON_PROTO_JSON_H_
