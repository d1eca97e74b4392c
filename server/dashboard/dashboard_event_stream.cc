// GET /api/jobs/JID/events: the job page's live view as Server-Sent Events
// (text/event-stream), so the browser hears of a change when it happens
// instead of polling GET /api/jobs/JID.
//
// The stream is gRPC's WatchJob through JobApi: the same right (WatchJob),
// the same audit of refusals and the same watch-stream limits
// (--max_watch_streams, per principal). Each message is one event whose
// data is the job's JSON exactly as GET /api/jobs/JID answers it: the state
// at once, then after each change (progress at most every kIntervalMs, the
// final state at once); after the final state the server ends the stream.
// An error after the start (the job gone) is one `event: end` with
// {"error": ...} before the stream ends (not `error`: an EventSource
// reports its own connection failures under that name).
//
// Each open stream holds one of the HTTP server's threads (cpp-httplib
// serves a connection on one thread), so the dashboard bounds them itself
// (DashboardOptions::max_event_streams, below its thread count): past
// the bound, 429 and the page polls instead. A stream waits for a change
// at most a second at a time; with nothing to send it writes a comment
// line (":"), which finds a client that went away (the write fails; its
// slots are freed) and keeps proxies from closing an idle stream. Stop()
// ends every stream within that second. The visitor is identified again
// before each wait, as for every request: a logout, an expired session or
// a revoked token (checked every reverify_interval) ends the stream; the
// JobWatch re-checks the WatchJob right every second (a policy reload).
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/json/proto_json.h"
#include "server/dashboard/dashboard_server.h"
#include "server/dashboard/json_reply.h"
#include "spdlog/spdlog.h"

namespace muster::dashboard {
namespace {

constexpr uint32_t kIntervalMs = 200;
constexpr absl::Duration kWaitSlice = absl::Seconds(1);

// `data` (no line breaks expected, but kept valid if any) as one event.
std::string Event(absl::string_view type, absl::string_view data) {
  std::string event = type.empty() ? "" : absl::StrCat("event: ", type, "\n");
  absl::StrAppend(&event, "data: ", absl::StrReplaceAll(data, {{"\n", "\ndata: "}}), "\n\n");
  return event;
}

}  // namespace

class DashboardServer::EventStreamSlot {
 public:
  explicit EventStreamSlot(DashboardServer* owner) : owner_(owner) {}
  ~EventStreamSlot() {
    absl::MutexLock lock(&owner_->streams_mutex_);
    --owner_->open_event_streams_;
  }
  EventStreamSlot(const EventStreamSlot&) = delete;
  EventStreamSlot& operator=(const EventStreamSlot&) = delete;

 private:
  DashboardServer* const owner_;
};

std::unique_ptr<DashboardServer::EventStreamSlot> DashboardServer::TakeEventStreamSlot() {
  absl::MutexLock lock(&streams_mutex_);
  if (open_event_streams_ >= options_.max_event_streams) return nullptr;
  ++open_event_streams_;
  return std::make_unique<EventStreamSlot>(this);
}

void DashboardServer::RegisterEventRoutes() {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  Get("/api/jobs/([^/]+)/events", [this](const Visitor& v, Req req, Res res) {
    v1::WatchJobRequest request;
    request.set_jid(req.matches[1]);
    request.set_interval_ms(kIntervalMs);
    // jobd's checks and limits first, so a refused caller hears why.
    std::unique_ptr<JobWatch> watch;
    if (grpc::Status s = api_->WatchJob(v.caller, request, &watch); !s.ok()) {
      return ReplyError(res, s);
    }
    std::unique_ptr<EventStreamSlot> slot = TakeEventStreamSlot();
    if (slot == nullptr) {
      spdlog::warn("dashboard: event stream of job {} for {} refused: {} streams open",
                   request.jid(), v.caller.principal.name, options_.max_event_streams);
      std::string reason = absl::StrCat(
          "the dashboard has ", options_.max_event_streams,
          " event streams open, its limit (each holds a server thread): poll GET /api/jobs/",
          request.jid(), " instead");
      // Counted and audited like jobd's own stream limits (the watch, and
      // with it jobd's slot, is given back as this returns).
      api_->RefuseWatchStream(v.caller, request.jid(), reason);
      return ReplyError(res, absl::ResourceExhaustedError(reason));
    }
    struct Stream {
      std::unique_ptr<JobWatch> watch;
      std::unique_ptr<EventStreamSlot> slot;
    };
    auto stream = std::make_shared<Stream>(Stream{std::move(watch), std::move(slot)});
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");  // nginx: do not buffer the stream
    // Called again after each return of true until sink.done(); false
    // ends the connection. The Response (and with it `stream`, the watch
    // and both slots) is destroyed once the stream has ended either way.
    res.set_chunked_content_provider(
        "text/event-stream", [this, stream, &req](size_t, httplib::DataSink& sink) {
          // `req` outlives the response: httplib writes it before the
          // request is destroyed.
          if (stopping_) return false;
          httplib::Response unused;
          absl::StatusOr<Visitor> still = Identify(req, unused, /*create=*/false);
          std::optional<v1::Job> job;
          grpc::Status status = still.ok() ? stream->watch->Next(absl::Now() + kWaitSlice, &job)
                                           : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                                          std::string(still.status().message()));
          if (!status.ok()) {
            nlohmann::json error = {{"error", status.error_message()}};
            std::string event =
                Event("end", error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            sink.write(event.data(), event.size());
            sink.done();
            return true;
          }
          std::string text = job ? Event("", ProtoToJson(*job)) : ":\n";
          if (!sink.write(text.data(), text.size())) return false;
          if (stream->watch->ended()) sink.done();
          return true;
        });
  });
}

}  // namespace muster::dashboard
