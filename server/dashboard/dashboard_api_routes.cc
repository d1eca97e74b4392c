// DashboardServer's JSON API over JobApi: each route turns its query into
// the RPC's request, calls the ...As method with the visitor's caller and
// writes the answer. Validation beyond parsing the query is the service's.
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/dashboard/dashboard_server.h"
#include "server/dashboard/json_reply.h"

namespace muster::dashboard {
namespace {

using server::auth::Rpc;
using v1::ListReturnsRequest;

// The jid segment of a path; the service validates it (400 / 404).
constexpr char kJid[] = "([^/]+)";

grpc::Status BadRequest(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
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

// Calls one JobApi method as `caller` and writes its answer.
template <typename Request, typename Response>
void Answer(JobApi* api,
            grpc::Status (JobApi::*rpc)(const Caller&, const Request&, Response*),
            const Caller& caller, const Request& request, httplib::Response& res) {
  Response response;
  Reply(res, (api->*rpc)(caller, request, &response), response);
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
grpc::Status SearchMissing(JobApi* api, const Caller& caller, ListReturnsRequest request,
                           const std::string& query, uint32_t limit,
                           v1::ListReturnsResponse* response) {
  request.set_page_size(10000);
  do {
    v1::ListReturnsResponse page;
    grpc::Status status = api->ListReturns(caller, request, &page);
    if (!status.ok()) return status;
    for (const v1::MissingMinion& m : page.missing()) {
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

void DashboardServer::RegisterJobRoutes() {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  Get("/api/jobs", [this](const Visitor& v, Req req, Res res) {
    v1::ListJobsRequest request;
    std::string state_name = req.get_param_value("state");
    if (!state_name.empty()) {
      v1::JobState state;
      if (!v1::JobState_Parse(absl::AsciiStrToUpper(state_name), &state) ||
          state == v1::JOB_STATE_UNSPECIFIED) {
        return ReplyError(res, BadRequest(absl::StrCat("state '", state_name,
                                                       "': unknown job state")));
      }
      request.add_states(state);
    }
    if (grpc::Status s = PagingParams(req, 50, &request); !s.ok()) return ReplyError(res, s);
    Answer(api_, &JobApi::ListJobs, v.caller, request, res);
  });
  Get(absl::StrCat("/api/jobs/", kJid), [this](const Visitor& v, Req req, Res res) {
    v1::GetJobRequest request;
    request.set_jid(req.matches[1]);
    Answer(api_, &JobApi::GetJob, v.caller, request, res);
  });
  // Which buttons the job page shows; the POSTs are authorised anyway.
  Get(absl::StrCat("/api/jobs/", kJid, "/actions"), [this](const Visitor& v, Req req, Res res) {
    v1::GetJobRequest request;
    request.set_jid(req.matches[1]);
    v1::Job job;
    if (grpc::Status s = api_->GetJob(v.caller, request, &job); !s.ok()) {
      return ReplyError(res, s);
    }
    nlohmann::json body = {{"RetryMissing", Allowed(v, Rpc::kRetryMissing, job.function())},
                           {"CancelJob", Allowed(v, Rpc::kCancelJob, "")}};
    ReplyJson(res, body.dump());
  });
  Get(absl::StrCat("/api/jobs/", kJid, "/returns"), [this](const Visitor& v, Req req, Res res) {
    ListReturnsRequest request;
    request.set_jid(req.matches[1]);
    ListReturnsRequest::Filter filter;
    if (grpc::Status s = FilterParam(req, &filter); !s.ok()) return ReplyError(res, s);
    request.set_filter(filter);
    if (grpc::Status s = PagingParams(req, 100, &request); !s.ok()) return ReplyError(res, s);
    request.set_datacenter(req.get_param_value("datacenter"));
    Answer(api_, &JobApi::ListReturns, v.caller, request, res);
  });
  Get(absl::StrCat("/api/jobs/", kJid, "/missing"), [this](const Visitor& v, Req req, Res res) {
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
    if (query.empty()) return Answer(api_, &JobApi::ListReturns, v.caller, request, res);
    v1::ListReturnsResponse response;
    Reply(res, SearchMissing(api_, v.caller, request, query, limit, &response), response);
  });
  Post(absl::StrCat("/api/jobs/", kJid, "/retry"), [this](const Visitor& v, Req req, Res res) {
    v1::RetryMissingRequest request;
    request.set_jid(req.matches[1]);
    Answer(api_, &JobApi::RetryMissing, v.caller, request, res);
  });
  Post(absl::StrCat("/api/jobs/", kJid, "/cancel"), [this](const Visitor& v, Req req, Res res) {
    v1::CancelJobRequest request;
    request.set_jid(req.matches[1]);
    Answer(api_, &JobApi::CancelJob, v.caller, request, res);
  });
}

void DashboardServer::RegisterFleetRoutes() {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  Get("/api/relays", [this](const Visitor& v, Req, Res res) {
    Answer(api_, &JobApi::ListRelays, v.caller, v1::ListRelaysRequest(), res);
  });
  Get("/api/minions", [this](const Visitor& v, Req req, Res res) {
    v1::ListMinionsRequest request;
    if (!req.get_param_value("target").empty()) {
      v1::TargetType type = v1::GLOB;
      std::string type_name = absl::AsciiStrToUpper(req.get_param_value("type"));
      if (!type_name.empty() && !v1::TargetType_Parse(type_name, &type)) {
        return ReplyError(res, BadRequest(absl::StrCat("type '", req.get_param_value("type"),
                                                       "': unknown target type")));
      }
      request.mutable_target()->set_type(type);
      request.mutable_target()->set_expression(req.get_param_value("target"));
    }
    if (grpc::Status s = PagingParams(req, 100, &request); !s.ok()) return ReplyError(res, s);
    request.set_datacenter(req.get_param_value("datacenter"));
    Answer(api_, &JobApi::ListMinions, v.caller, request, res);
  });
  Get("/api/audit", [this](const Visitor& v, Req req, Res res) {
    v1::ListAuditRequest request;
    request.set_principal(req.get_param_value("principal"));
    request.set_jid(req.get_param_value("jid"));
    if (grpc::Status s = PagingParams(req, 50, &request); !s.ok()) return ReplyError(res, s);
    Answer(api_, &JobApi::ListAudit, v.caller, request, res);
  });
}

}  // namespace muster::dashboard
