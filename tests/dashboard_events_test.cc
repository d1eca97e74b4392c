// The dashboard's event stream (GET /api/jobs/JID/events, Server-Sent
// Events) against an in-process jobd (DashboardFixture: real Redis, SQLite,
// returns written the way relays write them): the job's state at once, an
// update after each change, the final state and then the end of the
// stream; the same refusals as the other routes (401, 403 audited, 400,
// 404); the dashboard's and jobd's stream limits (429) with ordinary
// requests still served; a client that goes away gives its slot back; a
// logout and a stopping jobd end the streams.
#include <httplib.h>

#include <deque>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "re2/re2.h"
#include "server/dashboard/dashboard_server.h"
#include "tests/dashboard_fixture.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr absl::Duration kPatience = absl::Seconds(10);

uint64_t U(const nlohmann::json& value) { return std::stoull(value.get<std::string>()); }

struct SseEvent {
  std::string type;  // "" for a plain message
  nlohmann::json data;
};

// One GET of an event stream on a thread of its own, as a browser's
// EventSource makes it: the status and content type of the answer, then
// the events as they arrive.
class EventReader {
 public:
  // `port` and `ca_path` of jobd's dashboard (ca_path "": plain HTTP).
  EventReader(int port, const std::string& ca_path, const std::string& cookie,
              const std::string& path) {
    thread_ = std::thread([this, port, ca_path, cookie, path] {
      std::unique_ptr<httplib::ClientImpl> client;
      if (ca_path.empty()) {
        client = std::make_unique<httplib::ClientImpl>("127.0.0.1", port);
      } else {
        auto ssl = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
        ssl->set_ca_cert_path(ca_path.c_str());
        ssl->enable_server_certificate_verification(true);
        client = std::move(ssl);
      }
      client->set_connection_timeout(5);
      client->set_read_timeout(5);
      httplib::Headers headers = {{"Accept", "text/event-stream"}};
      if (!cookie.empty()) {
        headers.emplace("Cookie", absl::StrCat(dashboard::kSessionCookie, "=", cookie));
      }
      httplib::Result result = client->Get(
          path.c_str(), headers,
          [this](const httplib::Response& response) {
            absl::MutexLock lock(&mu_);
            status_ = response.status;
            content_type_ = response.get_header_value("Content-Type");
            return true;
          },
          [this](const char* data, size_t length) {
            absl::MutexLock lock(&mu_);
            body_.append(data, length);
            Parse();
            return !closing_;
          });
      absl::MutexLock lock(&mu_);
      if (result && status_ == 0) status_ = result->status;
      if (result && body_.empty()) body_ = result->body;
      ended_ = true;
    });
  }
  ~EventReader() {
    Close();
    thread_.join();
  }

  // The answer's status once its head arrived (0: none within kPatience).
  int Status() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return status_ != 0 || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), kPatience);
    return status_;
  }
  std::string ContentType() {
    absl::MutexLock lock(&mu_);
    return content_type_;
  }
  // The body so far (of a refusal: its JSON).
  std::string Body() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), kPatience);
    return body_;
  }
  // The next event; nullopt when the stream ended first (or kPatience
  // passed: then ended() is false).
  std::optional<SseEvent> Next() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !events_.empty() || ended_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), kPatience);
    if (events_.empty()) return std::nullopt;
    SseEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
  }
  // Whether the server ended the stream (within kPatience).
  bool Ended() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return ended_; };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), kPatience);
  }
  // Drops the connection at the next bytes the server sends (as a closed
  // browser tab does).
  void Close() {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }

 private:
  // Moves each complete event of body_ to events_ (comments skipped).
  void Parse() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t end;
    while ((end = body_.find("\n\n", parsed_)) != std::string::npos) {
      std::string block = body_.substr(parsed_, end - parsed_);
      parsed_ = end + 2;
      SseEvent event;
      std::string data;
      bool has_data = false;
      for (absl::string_view line : absl::StrSplit(block, '\n')) {
        if (absl::ConsumePrefix(&line, "event: ")) event.type = std::string(line);
        if (absl::ConsumePrefix(&line, "data: ")) {
          absl::StrAppend(&data, has_data ? "\n" : "", line);
          has_data = true;
        }
      }
      if (!has_data) continue;
      event.data = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
      events_.push_back(std::move(event));
    }
  }

  absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  std::string content_type_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
  size_t parsed_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<SseEvent> events_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

constexpr char kPolicy[] = R"({
  "rules": [
    {"name": "admins", "who": ["admin"], "rpcs": ["*"]},
    {"name": "lookers", "who": ["dave"], "rpcs": ["GetJob", "ListJobs"]},
    {"name": "watchers", "who": ["erin"], "rpcs": ["GetJob", "WatchJob"]}
  ]
})";

class DashboardEventsTest : public DashboardFixture {
 protected:
  void Configure(server::JobdOptions& options) override {
    policy_path_ = MakeTempDir("policy") + "/policy.json";
    std::ofstream(policy_path_) << kPolicy;
    options.policy_path = policy_path_;
  }

  std::string policy_path_;

  std::unique_ptr<EventReader> Open(const std::string& cookie, const std::string& jid) {
    return std::make_unique<EventReader>(jobd_->http_port(), jobd_->tls()->cert_path, cookie,
                                         absl::StrCat("/api/jobs/", jid, "/events"));
  }
  std::unique_ptr<EventReader> OpenAsAdmin(const std::string& jid) {
    return Open(admin_.cookie, jid);
  }

  // The stream's next event is its end, whose error names `reason_part`,
  // and then the server closes it.
  static void ExpectEnded(EventReader& reader, const std::string& reason_part,
                          const std::string& what) {
    std::optional<SseEvent> end = reader.Next();
    ASSERT_TRUE(end.has_value()) << "the stream outlived " << what;
    EXPECT_EQ(end->type, "end");
    EXPECT_TRUE(absl::StrContains(end->data.value("error", ""), reason_part)) << end->data.dump();
    EXPECT_TRUE(reader.Ended());
  }

  // A dashboard session of `principal`, through a token the admin makes.
  absl::StatusOr<WebSession> LoginAs(const std::string& principal) {
    grpc::ClientContext context;
    v1::CreateTokenRequest create;
    create.set_principal(principal);
    v1::CreateTokenResponse token;
    grpc::Status created = stub_->CreateToken(&context, create, &token);
    if (!created.ok()) return absl::InternalError(created.error_message());
    return Login(token.bearer_token());
  }

  // A running job on web-a0 and web-a1 (nobody answers yet).
  std::string RunningJob() {
    AddMinions("dc1", "web-a", 2);
    std::string jid = Submit("web-*");
    EXPECT_EQ(GetJob(jid).state(), v1::RUNNING);
    return jid;
  }

  // Events of `reader` until one satisfies `want` (its data), or nullopt
  // when the stream ends or stalls first.
  std::optional<nlohmann::json> EventWhere(EventReader& reader,
                                           const std::function<bool(const nlohmann::json&)>& want) {
    while (std::optional<SseEvent> event = reader.Next()) {
      EXPECT_EQ(event->type, "") << event->data.dump();
      if (want(event->data)) return event->data;
    }
    return std::nullopt;
  }
};

TEST_F(DashboardEventsTest, StreamSendsTheJobAtOnceThenEachChangeThenEnds) {
  std::string jid = RunningJob();
  std::unique_ptr<EventReader> reader = OpenAsAdmin(jid);
  ASSERT_EQ(reader->Status(), 200) << reader->Body();
  EXPECT_EQ(reader->ContentType(), "text/event-stream");

  std::optional<SseEvent> first = reader->Next();
  ASSERT_TRUE(first.has_value()) << "no first event";
  EXPECT_EQ(first->data["jid"], jid);
  EXPECT_EQ(first->data["state"], "RUNNING");
  EXPECT_EQ(U(first->data["completeness"]["expected"]), 2u);
  EXPECT_EQ(U(first->data["completeness"]["returned"]), 0u);

  // A return is pushed: no request of ours asks for it.
  SendReturns("dc1", jid, {"web-a0"});
  std::optional<nlohmann::json> one = EventWhere(
      *reader, [](const nlohmann::json& job) { return U(job["completeness"]["returned"]) == 1; });
  ASSERT_TRUE(one.has_value()) << "no event after the first return";
  EXPECT_EQ(one->at("state"), "RUNNING");

  SendReturns("dc1", jid, {"web-a1"});
  std::optional<nlohmann::json> last =
      EventWhere(*reader, [](const nlohmann::json& job) { return job["state"] != "RUNNING"; });
  ASSERT_TRUE(last.has_value()) << "no final state";
  EXPECT_EQ(last->at("state"), "COMPLETE");
  EXPECT_EQ(U(last->at("completeness")["returned"]), 2u);
  // Nothing after the final state: the server ends the stream.
  EXPECT_FALSE(reader->Next().has_value());
  EXPECT_TRUE(reader->Ended());
  // The events are GET /api/jobs/JID's JSON.
  HttpReply job = Get("/api/jobs/" + jid);
  ASSERT_EQ(job.status, 200);
  EXPECT_EQ(*last, job.json);
}

TEST_F(DashboardEventsTest, AnEndedJobGivesItsStateAndTheEnd) {
  std::string jid = RunningJob();
  ASSERT_EQ(Post("/api/jobs/" + jid + "/cancel").status, 200);
  std::unique_ptr<EventReader> reader = OpenAsAdmin(jid);
  ASSERT_EQ(reader->Status(), 200) << reader->Body();
  std::optional<SseEvent> only = reader->Next();
  ASSERT_TRUE(only.has_value());
  EXPECT_EQ(only->data["state"], "CANCELLED");
  EXPECT_FALSE(reader->Next().has_value());
  EXPECT_TRUE(reader->Ended());
}

TEST_F(DashboardEventsTest, RefusalsAnswerLikeTheOtherRoutes) {
  std::string jid = RunningJob();
  auto body_of = [](EventReader& reader) {
    return nlohmann::json::parse(reader.Body(), nullptr, false);
  };
  std::unique_ptr<EventReader> anonymous = Open("", jid);
  EXPECT_EQ(anonymous->Status(), 401);

  std::unique_ptr<EventReader> bad = OpenAsAdmin("not-a-jid");
  EXPECT_EQ(bad->Status(), 400);
  EXPECT_TRUE(absl::StrContains(body_of(*bad).value("error", ""), "20 decimal digits"))
      << bad->Body();

  std::unique_ptr<EventReader> unknown = OpenAsAdmin("00000000000000000001");
  EXPECT_EQ(unknown->Status(), 404) << unknown->Body();

  // dave may GetJob, not WatchJob: refused and audited as WatchJob is.
  absl::StatusOr<WebSession> dave = LoginAs("dave");
  ASSERT_TRUE(dave.ok()) << dave.status();
  EXPECT_EQ(GetAs(*dave, "/api/jobs/" + jid).status, 200);
  std::unique_ptr<EventReader> refused = Open(dave->cookie, jid);
  EXPECT_EQ(refused->Status(), 403) << refused->Body();

  grpc::ClientContext audit_context;
  v1::ListAuditRequest audit;
  audit.set_jid(jid);
  v1::ListAuditResponse rows;
  ASSERT_TRUE(stub_->ListAudit(&audit_context, audit, &rows).ok());
  bool audited = false;
  for (const v1::AuditEntry& row : rows.entries()) {
    audited |= row.principal() == "dave" && row.rpc() == "WatchJob" &&
               row.decision() == v1::AuditEntry::DENIED &&
               absl::StartsWith(row.peer(), "dashboard 127.0.0.1:");
  }
  EXPECT_TRUE(audited);
}

TEST_F(DashboardEventsTest, LogoutEndsTheSessionsStreams) {
  std::string jid = RunningJob();
  absl::StatusOr<WebSession> session = Login(admin_token_);
  ASSERT_TRUE(session.ok()) << session.status();
  std::unique_ptr<EventReader> reader = Open(session->cookie, jid);
  ASSERT_EQ(reader->Status(), 200);
  ASSERT_TRUE(reader->Next().has_value());
  ASSERT_EQ(PostAs(*session, "/logout").status, 200);
  ExpectEnded(*reader, "log in", "its session");
}

// A policy reload (jobd's SIGHUP) that takes WatchJob away ends the
// visitor's open stream within about a second, with the refusal.
TEST_F(DashboardEventsTest, APolicyReloadWithoutWatchJobEndsTheStream) {
  std::string jid = RunningJob();
  absl::StatusOr<WebSession> erin = LoginAs("erin");
  ASSERT_TRUE(erin.ok()) << erin.status();
  std::unique_ptr<EventReader> reader = Open(erin->cookie, jid);
  ASSERT_EQ(reader->Status(), 200) << reader->Body();
  ASSERT_TRUE(reader->Next().has_value());

  std::string changed = kPolicy;
  std::string from = R"(["GetJob", "WatchJob"])";
  changed.replace(changed.find(from), from.size(), R"(["GetJob"])");
  std::ofstream(policy_path_, std::ios::trunc) << changed;
  ASSERT_TRUE(jobd_->ReloadPolicy().ok());
  ExpectEnded(*reader, "WatchJob", "the WatchJob right");
}

TEST_F(DashboardEventsTest, StoppingJobdEndsOpenStreams) {
  std::string jid = RunningJob();
  std::unique_ptr<EventReader> reader = OpenAsAdmin(jid);
  ASSERT_EQ(reader->Status(), 200);
  ASSERT_TRUE(reader->Next().has_value());
  jobd_->Stop();
  EXPECT_TRUE(reader->Ended()) << "the stream outlived jobd";
}

// The dashboard allows 2 streams (DashboardOptions::max_event_streams).
class DashboardEventLimitTest : public DashboardEventsTest {
 protected:
  void Configure(server::JobdOptions& options) override {
    DashboardEventsTest::Configure(options);
    options.dashboard_event_streams = 2;
  }
};

TEST_F(DashboardEventLimitTest, PastTheLimit429AndAClosedClientFreesItsSlot) {
  std::string jid = RunningJob();
  std::unique_ptr<EventReader> a = OpenAsAdmin(jid);
  std::unique_ptr<EventReader> b = OpenAsAdmin(jid);
  ASSERT_EQ(a->Status(), 200);
  ASSERT_EQ(b->Status(), 200);
  ASSERT_TRUE(a->Next().has_value());
  ASSERT_TRUE(b->Next().has_value());
  auto denied_streams = [&] {
    HttpReply metrics = Get("/metrics");
    static const RE2 kLine(R"(muster_jobd_api_denied_total\{reason="watch_streams"\} (\d+))");
    uint64_t count = 0;
    RE2::PartialMatch(metrics.body, kLine, &count);
    return count;
  };
  uint64_t denied_before = denied_streams();
  std::unique_ptr<EventReader> c = OpenAsAdmin(jid);
  EXPECT_EQ(c->Status(), 429);
  EXPECT_TRUE(absl::StrContains(c->Body(), "event streams open")) << c->Body();
  // Counted and audited as jobd's own stream limits are.
  EXPECT_EQ(denied_streams(), denied_before + 1);
  grpc::ClientContext audit_context;
  v1::ListAuditRequest audit;
  audit.set_jid(jid);
  v1::ListAuditResponse rows;
  ASSERT_TRUE(stub_->ListAudit(&audit_context, audit, &rows).ok());
  ASSERT_GT(rows.entries_size(), 0);
  EXPECT_EQ(rows.entries(0).rpc(), "WatchJob");
  EXPECT_EQ(rows.entries(0).decision(), v1::AuditEntry::DENIED);
  EXPECT_TRUE(absl::StrContains(rows.entries(0).reason(), "event streams open"))
      << rows.entries(0).reason();
  // The streams hold threads, but ordinary requests are still served.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Get("/api/jobs/" + jid).status, 200);

  // A browser closes its tab: its slot comes back.
  a->Close();
  EXPECT_TRUE(a->Ended());
  bool reopened = WaitFor(
      [&] {
        EventReader again(jobd_->http_port(), jobd_->tls()->cert_path, admin_.cookie,
                          absl::StrCat("/api/jobs/", jid, "/events"));
        return again.Status() == 200;
      },
      kPatience);
  EXPECT_TRUE(reopened) << "the closed client's slot was not freed";
}

// jobd allows one WatchJob stream (--max_watch_streams), gRPC or dashboard.
class DashboardWatchLimitTest : public DashboardEventsTest {
 protected:
  void Configure(server::JobdOptions& options) override {
    DashboardEventsTest::Configure(options);
    options.max_watch_streams = 1;
  }
};

TEST_F(DashboardWatchLimitTest, JobdsWatchStreamLimitCountsDashboardStreams) {
  std::string jid = RunningJob();
  std::unique_ptr<EventReader> a = OpenAsAdmin(jid);
  ASSERT_EQ(a->Status(), 200);
  ASSERT_TRUE(a->Next().has_value());
  std::unique_ptr<EventReader> b = OpenAsAdmin(jid);
  EXPECT_EQ(b->Status(), 429);
  EXPECT_TRUE(absl::StrContains(b->Body(), "--max_watch_streams")) << b->Body();
  // So does a gRPC WatchJob.
  grpc::ClientContext context;
  v1::WatchJobRequest request;
  request.set_jid(jid);
  std::unique_ptr<grpc::ClientReader<v1::Job>> watch = stub_->WatchJob(&context, request);
  v1::Job job;
  EXPECT_FALSE(watch->Read(&job));
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace muster::testing
