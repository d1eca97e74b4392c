// The dashboard's JSON answers: an RPC's response as proto3 JSON, or an
// error {"error": "..."} with the HTTP status of its gRPC code.
#ifndef MUSTER_SERVER_DASHBOARD_JSON_REPLY_H_
#define MUSTER_SERVER_DASHBOARD_JSON_REPLY_H_

#include <grpcpp/grpcpp.h>
#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"

namespace httplib {
struct Response;
}

namespace muster::dashboard {

// 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404
// NOT_FOUND, 409 FAILED_PRECONDITION, 429 RESOURCE_EXHAUSTED, 503
// UNAVAILABLE, else 500.
int HttpStatusFor(grpc::StatusCode code);

void ReplyError(httplib::Response& res, const grpc::Status& status);
void ReplyError(httplib::Response& res, const absl::Status& status);
// The RPC's answer (or its error) as the JSON response, not cached.
void Reply(httplib::Response& res, const grpc::Status& status,
           const google::protobuf::Message& message);
// `json` (already serialised) as the response, not cached.
void ReplyJson(httplib::Response& res, const std::string& json);

}  // namespace muster::dashboard

#endif  // MUSTER_SERVER_DASHBOARD_JSON_REPLY_H_
