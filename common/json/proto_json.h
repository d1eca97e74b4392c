// The one JSON rendering of API messages, shared by jobctl --json and the
// dashboard's /api endpoints so scripts see the same fields everywhere:
// proto field names (snake_case), every field present (zeros and empty
// lists too), enums by name, 64-bit integers as strings (proto3 JSON).
//
// One departure from proto3 JSON: a `bytes` field (a return's stdout and
// stderr) is not base64 but a readable string, and stays lossless. When the
// bytes are valid UTF-8 the string is exactly them; when not, the string
// has U+FFFD in place of each invalid byte and a sibling field
// `<name>_base64` (standard base64, with padding) holds the exact bytes.
// A script wanting the bytes takes `<name>_base64` when present, else the
// string's UTF-8 encoding.
#ifndef MUSTER_COMMON_JSON_PROTO_JSON_H_
#define MUSTER_COMMON_JSON_PROTO_JSON_H_

#include <string>

#include "google/protobuf/message.h"

namespace muster {

std::string ProtoToJson(const google::protobuf::Message& message);

}  // namespace muster

#endif  // MUSTER_COMMON_JSON_PROTO_JSON_H_
