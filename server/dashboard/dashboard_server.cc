#include "server/dashboard/dashboard_server.h"

#include <httplib.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "server/dashboard/assets.h"

namespace muster::dashboard {
namespace {

using muster::v1::ListReturnsRequest;

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrCat("\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

int HttpStatusFor(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::FAILED_PRECONDITION: return 409;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    default: return 500;
  }
}

// Writes the RPC's answer (or its error) as the JSON response.
void Reply(httplib::Response& res, const grpc::Status& status,
           const google::protobuf::Message& message) {
  if (status.ok()) {
    res.set_content(ToJson(message), "application/json");
  } else {
    res.status = HttpStatusFor(status);
    res.set_content(absl::StrCat("{\"error\":", JsonString(status.error_message()), "}"),
                    "application/json");
  }
}

uint32_t IntParam(const httplib::Request& req, const char* name, uint32_t fallback) {
  uint32_t value = fallback;
  if (req.has_param(name) && !absl::SimpleAtoi(req.get_param_value(name), &value)) {
    return fallback;
  }
  return value;
}

}  // namespace

DashboardServer::DashboardServer(muster::v1::JobService::Service* service,
                                 std::function<std::string()> metrics_text)
    : service_(service), metrics_text_(std::move(metrics_text)),
      http_(std::make_unique<httplib::Server>()) {
  RegisterRoutes();
}

DashboardServer::~DashboardServer() { Stop(); }

void DashboardServer::RegisterRoutes() {
  httplib::Server& http = *http_;
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kIndexHtml, "text/html; charset=utf-8");
  });
  http.Get("/static/app.js", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kAppJs, "application/javascript; charset=utf-8");
  });
  http.Get("/static/app.css", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kAppCss, "text/css; charset=utf-8");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text_(), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/api/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    muster::v1::ListJobsRequest request;
    if (req.has_param("state")) {
      muster::v1::JobState state;
      if (!muster::v1::JobState_Parse(absl::AsciiStrToUpper(req.get_param_value("state")),
                                      &state)) {
        Reply(res, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                absl::StrCat("state '", req.get_param_value("state"),
                                             "': unknown job state")),
              request);
        return;
      }
      request.add_states(state);
    }
    request.set_page_size(IntParam(req, "limit", 50));
    request.set_page_token(req.get_param_value("page_token"));
    grpc::ServerContext context;
    muster::v1::ListJobsResponse response;
    Reply(res, service_->ListJobs(&context, &request, &response), response);
  });
  http.Get(R"(/api/jobs/([0-9A-Za-z_-]+))",
           [this](const httplib::Request& req, httplib::Response& res) {
             muster::v1::GetJobRequest request;
             request.set_jid(req.matches[1]);
             grpc::ServerContext context;
             muster::v1::Job job;
             Reply(res, service_->GetJob(&context, &request, &job), job);
           });
  http.Get(R"(/api/jobs/([0-9A-Za-z_-]+)/returns)",
           [this](const httplib::Request& req, httplib::Response& res) {
             ListReturnsRequest request;
             request.set_jid(req.matches[1]);
             std::string filter = req.get_param_value("filter");
             request.set_filter(filter == "failed"      ? ListReturnsRequest::FAILED
                                : filter == "succeeded" ? ListReturnsRequest::SUCCEEDED
                                                        : ListReturnsRequest::ALL);
             request.set_datacenter(req.get_param_value("datacenter"));
             request.set_page_size(IntParam(req, "limit", 100));
             request.set_page_token(req.get_param_value("page_token"));
             grpc::ServerContext context;
             muster::v1::ListReturnsResponse response;
             Reply(res, service_->ListReturns(&context, &request, &response), response);
           });
  // Missing minions, paged; with q=TEXT only the ids containing TEXT (the
  // search walks the service's pages and pages its own result by offset).
  http.Get(R"(/api/jobs/([0-9A-Za-z_-]+)/missing)",
           [this](const httplib::Request& req, httplib::Response& res) {
             ListReturnsRequest request;
             request.set_jid(req.matches[1]);
             request.set_filter(ListReturnsRequest::MISSING);
             request.set_datacenter(req.get_param_value("datacenter"));
             uint32_t limit = std::clamp<uint32_t>(IntParam(req, "limit", 100), 1, 10000);
             std::string query = req.get_param_value("q");
             muster::v1::ListReturnsResponse response;
             if (query.empty()) {
               request.set_page_size(limit);
               request.set_page_token(req.get_param_value("page_token"));
               grpc::ServerContext context;
               Reply(res, service_->ListReturns(&context, &request, &response), response);
               return;
             }
             uint64_t offset = 0;
             (void)absl::SimpleAtoi(req.get_param_value("page_token"), &offset);
             uint64_t seen = 0;
             request.set_page_size(10000);
             do {
               grpc::ServerContext context;
               muster::v1::ListReturnsResponse page;
               grpc::Status status = service_->ListReturns(&context, &request, &page);
               if (!status.ok()) return Reply(res, status, page);
               for (const auto& m : page.missing()) {
                 if (!absl::StrContains(m.minion_id(), query)) continue;
                 if (seen++ < offset) continue;
                 if (static_cast<uint32_t>(response.missing_size()) == limit) {
                   response.set_next_page_token(absl::StrCat(offset + limit));
                   break;
                 }
                 *response.add_missing() = m;
               }
               request.set_page_token(page.next_page_token());
             } while (!request.page_token().empty() && response.next_page_token().empty());
             Reply(res, grpc::Status::OK, response);
           });
  http.Post(R"(/api/jobs/([0-9A-Za-z_-]+)/retry)",
            [this](const httplib::Request& req, httplib::Response& res) {
              muster::v1::RetryMissingRequest request;
              request.set_jid(req.matches[1]);
              grpc::ServerContext context;
              muster::v1::RetryMissingResponse response;
              Reply(res, service_->RetryMissing(&context, &request, &response), response);
            });
  http.Post(R"(/api/jobs/([0-9A-Za-z_-]+)/cancel)",
            [this](const httplib::Request& req, httplib::Response& res) {
              muster::v1::CancelJobRequest request;
              request.set_jid(req.matches[1]);
              grpc::ServerContext context;
              muster::v1::CancelJobResponse response;
              Reply(res, service_->CancelJob(&context, &request, &response), response);
            });
  http.Get("/api/relays", [this](const httplib::Request&, httplib::Response& res) {
    muster::v1::ListRelaysRequest request;
    grpc::ServerContext context;
    muster::v1::ListRelaysResponse response;
    Reply(res, service_->ListRelays(&context, &request, &response), response);
  });
  http.Get("/api/minions", [this](const httplib::Request& req, httplib::Response& res) {
    muster::v1::ListMinionsRequest request;
    if (!req.get_param_value("target").empty()) {
      muster::v1::TargetType type = muster::v1::GLOB;
      std::string type_name = absl::AsciiStrToUpper(req.get_param_value("type"));
      if (!type_name.empty() && !muster::v1::TargetType_Parse(type_name, &type)) {
        Reply(res, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                absl::StrCat("type '", type_name, "': unknown target type")),
              request);
        return;
      }
      request.mutable_target()->set_type(type);
      request.mutable_target()->set_expression(req.get_param_value("target"));
    }
    request.set_datacenter(req.get_param_value("datacenter"));
    request.set_page_size(IntParam(req, "limit", 100));
    request.set_page_token(req.get_param_value("page_token"));
    grpc::ServerContext context;
    muster::v1::ListMinionsResponse response;
    Reply(res, service_->ListMinions(&context, &request, &response), response);
  });
}

absl::Status DashboardServer::Start(const std::string& host, int port) {
  port_ = port == 0 ? http_->bind_to_any_port(host.c_str())
                    : (http_->bind_to_port(host.c_str(), port) ? port : -1);
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("dashboard: cannot listen on ", host, ":", port));
  }
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!http_->is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

void DashboardServer::Stop() {
  if (thread_.joinable()) {
    http_->stop();
    thread_.join();
  }
}

}  // namespace muster::dashboard
