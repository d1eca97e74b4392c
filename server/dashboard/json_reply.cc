#include "server/dashboard/json_reply.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "common/json/proto_json.h"

namespace muster::dashboard {
namespace {

void ReplyErrorText(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  nlohmann::json body = {{"error", message}};
  // Invalid UTF-8 (from a request echoed in a message) becomes U+FFFD.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

}  // namespace

int HttpStatusFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::FAILED_PRECONDITION: return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    default: return 500;
  }
}

void ReplyError(httplib::Response& res, const grpc::Status& status) {
  ReplyErrorText(res, HttpStatusFor(status.error_code()), status.error_message());
}

void ReplyError(httplib::Response& res, const absl::Status& status) {
  // absl and gRPC share the canonical code numbers.
  ReplyErrorText(res, HttpStatusFor(static_cast<grpc::StatusCode>(status.code())),
                 std::string(status.message()));
}

void Reply(httplib::Response& res, const grpc::Status& status,
           const google::protobuf::Message& message) {
  if (!status.ok()) return ReplyError(res, status);
  ReplyJson(res, ProtoToJson(message));
}

void ReplyJson(httplib::Response& res, const std::string& json) {
  res.set_header("Cache-Control", "no-store");
  res.set_content(json, "application/json");
}

}  // namespace muster::dashboard
