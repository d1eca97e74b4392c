#include "server/dashboard/dashboard_server.h"

#include <httplib.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json/proto_json.h"
#include "common/metrics/metric_families.h"
#include "grpcpp/grpcpp.h"
#include "server/dashboard/assets.h"

namespace muster::dashboard {
namespace {

using muster::v1::ListReturnsRequest;

// The jid segment of a path; the service validates it (400 / 404).
constexpr char kJid[] = "([^/]+)";

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
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::FAILED_PRECONDITION: return 409;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    default: return 500;
  }
}

grpc::Status BadRequest(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

void ReplyError(httplib::Response& res, const grpc::Status& status) {
  res.status = HttpStatusFor(status);
  res.set_content(absl::StrCat("{\"error\":", JsonString(status.error_message()), "}"),
                  "application/json");
}

// Writes the RPC's answer (or its error) as the JSON response.
void Reply(httplib::Response& res, const grpc::Status& status,
           const google::protobuf::Message& message) {
  if (!status.ok()) return ReplyError(res, status);
  res.set_header("Cache-Control", "no-store");
  res.set_content(ProtoToJson(message), "application/json");
}

// Query parameter `name` as a number; `fallback` when absent.
grpc::Status UintParam(const httplib::Request& req, const char* name, uint32_t fallback,
                       uint32_t* value) {
  *value = fallback;
  if (!req.has_param(name)) return grpc::Status::OK;
  const std::string& text = req.get_param_value(name);
  if (!absl::SimpleAtoi(text, value)) {
    return BadRequest(absl::StrCat(name, " '", text, "': not a non-negative number"));
  }
  return grpc::Status::OK;
}

// limit (default `fallback`) and page_token into a paged request.
template <typename Request>
grpc::Status PagingParams(const httplib::Request& req, uint32_t fallback, Request* request) {
  uint32_t limit;
  if (grpc::Status s = UintParam(req, "limit", fallback, &limit); !s.ok()) return s;
  request->set_page_size(limit);
  request->set_page_token(req.get_param_value("page_token"));
  return grpc::Status::OK;
}

// Calls one RPC of the service in-process and writes its answer.
template <typename Request, typename Response>
void Answer(muster::v1::JobService::Service* service,
            grpc::Status (muster::v1::JobService::Service::*rpc)(grpc::ServerContext*,
                                                                  const Request*, Response*),
            const Request& request, httplib::Response& res) {
  grpc::ServerContext context;
  Response response;
  Reply(res, (service->*rpc)(&context, &request, &response), response);
}

grpc::Status FilterParam(const httplib::Request& req, ListReturnsRequest::Filter* filter) {
  std::string name = absl::AsciiStrToLower(req.get_param_value("filter"));
  if (name.empty() || name == "all") {
    *filter = ListReturnsRequest::ALL;
  } else if (name == "failed") {
    *filter = ListReturnsRequest::FAILED;
  } else if (name == "succeeded") {
    *filter = ListReturnsRequest::SUCCEEDED;
  } else {
    return BadRequest(absl::StrCat("filter '", req.get_param_value("filter"),
                                   "': expected all, failed or succeeded"));
  }
  return grpc::Status::OK;
}

// Missing minions whose id contains `query`, `limit` per page, ordered by
// id. The page token is the last id of the previous page, exactly as the
// service's own MISSING paging, so the walk resumes there and every match
// is reachable.
grpc::Status SearchMissing(muster::v1::JobService::Service* service, ListReturnsRequest request,
                           const std::string& query, uint32_t limit,
                           muster::v1::ListReturnsResponse* response) {
  request.set_page_size(10000);
  do {
    grpc::ServerContext context;
    muster::v1::ListReturnsResponse page;
    grpc::Status status = service->ListReturns(&context, &request, &page);
    if (!status.ok()) return status;
    for (const muster::v1::MissingMinion& m : page.missing()) {
      if (!absl::StrContains(m.minion_id(), query)) continue;
      if (static_cast<uint32_t>(response->missing_size()) == limit) {
        response->set_next_page_token(response->missing(response->missing_size() - 1).minion_id());
        return grpc::Status::OK;
      }
      *response->add_missing() = m;
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return grpc::Status::OK;
}

}  // namespace

DashboardServer::DashboardServer(muster::v1::JobService::Service* service,
                                 std::function<std::string()> metrics_text)
    : service_(service),
      metrics_text_(std::move(metrics_text)),
      http_(std::make_unique<httplib::Server>()),
      listener_(std::make_unique<http::HttpListener>(http_.get())) {
  RegisterRoutes();
}

DashboardServer::~DashboardServer() { Stop(); }

absl::Status DashboardServer::Start(const http::ListenAddress& address) {
  return listener_->Start(address);
}

void DashboardServer::Stop() { listener_->Stop(); }

void DashboardServer::RegisterRoutes() {
  httplib::Server& http = *http_;
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  http.Get("/", [](Req, Res res) { res.set_content(kIndexHtml, "text/html; charset=utf-8"); });
  http.Get("/static/app.js", [](Req, Res res) {
    res.set_content(kAppJs, "application/javascript; charset=utf-8");
  });
  http.Get("/static/app.css",
           [](Req, Res res) { res.set_content(kAppCss, "text/css; charset=utf-8"); });
  http.Get("/metrics",
           [this](Req, Res res) { res.set_content(metrics_text_(), metrics::kTextContentType); });

  // A cross-site form or fetch without CORS cannot add a custom header.
  http.set_pre_routing_handler([](Req req, Res res) {
    if (req.method == "POST" && !req.has_header(kPostHeader)) {
      ReplyError(res, grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   absl::StrCat("POST needs the ", kPostHeader, " header")));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  RegisterJobRoutes();
  RegisterFleetRoutes();
}

void DashboardServer::RegisterJobRoutes() {
  httplib::Server& http = *http_;
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  using Service = muster::v1::JobService::Service;
  http.Get("/api/jobs", [this](Req req, Res res) {
    muster::v1::ListJobsRequest request;
    std::string state_name = req.get_param_value("state");
    if (!state_name.empty()) {
      muster::v1::JobState state;
      if (!muster::v1::JobState_Parse(absl::AsciiStrToUpper(state_name), &state) ||
          state == muster::v1::JOB_STATE_UNSPECIFIED) {
        return ReplyError(res, BadRequest(absl::StrCat("state '", state_name,
                                                       "': unknown job state")));
      }
      request.add_states(state);
    }
    if (grpc::Status s = PagingParams(req, 50, &request); !s.ok()) return ReplyError(res, s);
    Answer(service_, &Service::ListJobs, request, res);
  });
  http.Get(absl::StrCat("/api/jobs/", kJid), [this](Req req, Res res) {
    muster::v1::GetJobRequest request;
    request.set_jid(req.matches[1]);
    Answer(service_, &Service::GetJob, request, res);
  });
  http.Get(absl::StrCat("/api/jobs/", kJid, "/returns"), [this](Req req, Res res) {
    ListReturnsRequest request;
    request.set_jid(req.matches[1]);
    ListReturnsRequest::Filter filter;
    if (grpc::Status s = FilterParam(req, &filter); !s.ok()) return ReplyError(res, s);
    request.set_filter(filter);
    if (grpc::Status s = PagingParams(req, 100, &request); !s.ok()) return ReplyError(res, s);
    request.set_datacenter(req.get_param_value("datacenter"));
    Answer(service_, &Service::ListReturns, request, res);
  });
  http.Get(absl::StrCat("/api/jobs/", kJid, "/missing"), [this](Req req, Res res) {
    ListReturnsRequest request;
    request.set_jid(req.matches[1]);
    request.set_filter(ListReturnsRequest::MISSING);
    request.set_datacenter(req.get_param_value("datacenter"));
    if (grpc::Status s = PagingParams(req, 100, &request); !s.ok()) return ReplyError(res, s);
    uint32_t limit = request.page_size();
    if (limit == 0 || limit > 10000) {
      return ReplyError(res, BadRequest(absl::StrCat("limit ", limit, ": must be 1..10000")));
    }
    std::string query = req.get_param_value("q");
    if (query.empty()) return Answer(service_, &Service::ListReturns, request, res);
    muster::v1::ListReturnsResponse response;
    Reply(res, SearchMissing(service_, request, query, limit, &response), response);
  });
  http.Post(absl::StrCat("/api/jobs/", kJid, "/retry"), [this](Req req, Res res) {
    muster::v1::RetryMissingRequest request;
    request.set_jid(req.matches[1]);
    Answer(service_, &Service::RetryMissing, request, res);
  });
  http.Post(absl::StrCat("/api/jobs/", kJid, "/cancel"), [this](Req req, Res res) {
    muster::v1::CancelJobRequest request;
    request.set_jid(req.matches[1]);
    Answer(service_, &Service::CancelJob, request, res);
  });
}

void DashboardServer::RegisterFleetRoutes() {
  httplib::Server& http = *http_;
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  using Service = muster::v1::JobService::Service;
  http.Get("/api/relays", [this](Req, Res res) {
    Answer(service_, &Service::ListRelays, muster::v1::ListRelaysRequest(), res);
  });
  http.Get("/api/minions", [this](Req req, Res res) {
    muster::v1::ListMinionsRequest request;
    if (!req.get_param_value("target").empty()) {
      muster::v1::TargetType type = muster::v1::GLOB;
      std::string type_name = absl::AsciiStrToUpper(req.get_param_value("type"));
      if (!type_name.empty() && !muster::v1::TargetType_Parse(type_name, &type)) {
        return ReplyError(res, BadRequest(absl::StrCat("type '", req.get_param_value("type"),
                                                       "': unknown target type")));
      }
      request.mutable_target()->set_type(type);
      request.mutable_target()->set_expression(req.get_param_value("target"));
    }
    if (grpc::Status s = PagingParams(req, 100, &request); !s.ok()) return ReplyError(res, s);
    request.set_datacenter(req.get_param_value("datacenter"));
    Answer(service_, &Service::ListMinions, request, res);
  });
}

}  // namespace muster::dashboard
