#include "server/dashboard/dashboard_server.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/metrics/metric_families.h"
#include "server/dashboard/assets.h"
#include "server/dashboard/json_reply.h"
#include "spdlog/spdlog.h"

namespace muster::dashboard {
namespace {

using server::auth::AuthMethod;
using server::auth::Principal;
using server::auth::Rpc;
using Req = const httplib::Request&;
using Res = httplib::Response&;

// The value of cookie `name` in the request's Cookie headers, or "".
std::string CookieValue(const httplib::Request& req, absl::string_view name) {
  size_t count = req.get_header_value_count("Cookie");
  for (size_t i = 0; i < count; ++i) {
    for (absl::string_view pair : absl::StrSplit(req.get_header_value("Cookie", i), ';')) {
      pair = absl::StripAsciiWhitespace(pair);
      if (absl::StartsWith(pair, name) && pair.size() > name.size() && pair[name.size()] == '=') {
        return std::string(pair.substr(name.size() + 1));
      }
    }
  }
  return "";
}

std::string HtmlEscape(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"},
                                    {"<", "&lt;"},
                                    {">", "&gt;"},
                                    {"\"", "&quot;"},
                                    {"'", "&#39;"}});
}

// Where to go after a login: a fragment of the page ("#/job/JID"), never
// another site (no open redirect); "" otherwise.
std::string SafeNext(absl::string_view next) {
  if (!absl::StartsWith(next, "#/") || next.size() > 512) return "";
  for (char c : next) {
    bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
              absl::string_view("#/_.-~?=&%").find(c) != absl::string_view::npos;
    if (!ok) return "";
  }
  return std::string(next);
}

// Browsers: no framing (clickjacking), no sniffing, scripts only from
// this origin (the page's bars use style attributes), no referrer to
// other sites.
void SetSecurityHeaders(Res res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                 "frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "same-origin");
}

}  // namespace

DashboardServer::DashboardServer(DashboardOptions options, JobApi* api,
                                 const server::auth::Authenticator* authenticator,
                                 const server::auth::Authorizer* authorizer,
                                 std::function<std::string()> metrics_text)
    : options_(std::move(options)),
      api_(api),
      authenticator_(authenticator),
      authorizer_(authorizer),
      metrics_text_(std::move(metrics_text)),
      sessions_(SessionStoreOptions{options_.session_lifetime}) {
  if (options_.insecure) {
    http_ = std::make_unique<httplib::Server>();
  } else if (options_.tls.cert_path.empty() || options_.tls.key_path.empty()) {
    tls_status_ = absl::InvalidArgumentError(
        "the dashboard is served over HTTPS: it needs jobd's TLS certificate and key "
        "(--tls_cert, --tls_key), or --insecure");
    http_ = std::make_unique<httplib::Server>();
  } else {
    // The callback runs inside the constructor.
    http_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
      tls_status_ = ConfigureServerTls(&ctx, options_.tls);
      return tls_status_.ok();
    });
  }
  // httplib's default pool (max(8, cores - 1) threads) would let a few
  // open event streams take every thread; each stream holds one.
  int threads = std::max(options_.max_event_streams, 0) + kRequestThreads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  listener_ = std::make_unique<http::HttpListener>(http_.get());
  // The largest body is a login form.
  http_->set_payload_max_length(64 * 1024);
  RegisterRoutes();
}

DashboardServer::~DashboardServer() { Stop(); }

absl::Status DashboardServer::ValidateHosts(const std::vector<std::string>& hosts) {
  // The port does not change what parses.
  return HostAllowList::Make(hosts, 1, true).status();
}

absl::Status DashboardServer::Start(const http::ListenAddress& address) {
  if (!tls_status_.ok()) return tls_status_;
  // A browser that goes away mid-response (an event stream's client
  // closing its tab) makes the next write fail with EPIPE; SIGPIPE's
  // default action would end the whole process.
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> entries =
      options_.hosts.empty() ? HostAllowList::DefaultEntries(address.host) : options_.hosts;
  if (absl::Status valid = ValidateHosts(entries); !valid.ok()) return valid;
  if (absl::Status started = listener_->Start(address); !started.ok()) return started;
  absl::StatusOr<HostAllowList> hosts =
      HostAllowList::Make(entries, listener_->port(), !options_.insecure);
  if (!hosts.ok()) return hosts.status();
  spdlog::info("dashboard answers Host {}", absl::StrJoin(hosts->Origins(), ", "));
  {
    absl::MutexLock lock(&hosts_mutex_);
    hosts_ = std::make_shared<const HostAllowList>(*std::move(hosts));
  }
  if (options_.insecure) {
    spdlog::warn(
        "INSECURE: the dashboard serves plain HTTP on {}:{} without login: whoever reaches it "
        "acts as principal 'insecure' with every right",
        address.host, listener_->port());
  }
  return absl::OkStatus();
}

void DashboardServer::Stop() {
  stopping_ = true;
  listener_->Stop();
}

std::string DashboardServer::Peer(const httplib::Request& req) const {
  return absl::StrCat("dashboard ", req.remote_addr, ":", req.remote_port);
}

std::string DashboardServer::CookieHeader(const std::string& value,
                                          absl::Duration max_age) const {
  return absl::StrCat(kSessionCookie, "=", value, "; Max-Age=", absl::ToInt64Seconds(max_age),
                      "; Path=/; HttpOnly; SameSite=Strict", options_.insecure ? "" : "; Secure");
}

std::optional<std::string> DashboardServer::ClientCertificateName(
    const httplib::Request& req) const {
  if (options_.insecure || options_.tls.client_ca_path.empty()) return std::nullopt;
  return VerifiedClientName(req.ssl);
}

bool DashboardServer::Allowed(const Visitor& visitor, Rpc rpc,
                              const std::string& function) const {
  if (options_.insecure) return true;
  return authorizer_->Check(visitor.caller.principal, {rpc, function}).allowed;
}

DashboardServer::Visitor DashboardServer::StartSession(const Principal& principal,
                                                       std::string bearer,
                                                       const httplib::Request& req, Res res) {
  Session session;
  session.principal = principal;
  session.peer = Peer(req);
  session.bearer = std::move(bearer);
  absl::Time now = absl::Now();
  std::string id = sessions_.Create(session, now);
  res.set_header("Set-Cookie", CookieHeader(id, options_.session_lifetime));
  return Visitor{Caller{principal, Peer(req)}, id, sessions_.Find(id, now)};
}

absl::StatusOr<DashboardServer::Visitor> DashboardServer::Identify(const httplib::Request& req,
                                                                   Res res, bool create) {
  absl::Time now = absl::Now();
  std::string id = CookieValue(req, kSessionCookie);
  if (std::optional<Session> session = sessions_.Find(id, now)) {
    const Principal& principal = session->principal;
    if (principal.method == AuthMethod::kToken &&
        (req.method == "POST" || now - session->verified >= options_.reverify_interval)) {
      absl::StatusOr<Principal> still = authenticator_->FromBearerToken(session->bearer);
      if (!still.ok() || still->name != principal.name) {
        sessions_.Remove(id);
        std::string why = still.ok() ? "the token's principal changed"
                                     : std::string(still.status().message());
        spdlog::info("dashboard: session of {} ended: {}", principal.name, why);
        return absl::UnauthenticatedError(absl::StrCat("session ended: ", why, "; log in again"));
      }
      sessions_.MarkVerified(id, now);
    }
    if (principal.method == AuthMethod::kCertificate &&
        ClientCertificateName(req) != std::optional<std::string>(principal.name)) {
      sessions_.Remove(id);
      return absl::UnauthenticatedError(
          "session ended: the connection no longer has its client certificate");
    }
    return Visitor{Caller{principal, Peer(req)}, id, std::move(session)};
  }
  std::optional<Principal> principal;
  if (options_.insecure) {
    principal = Principal{server::auth::kInsecurePrincipal, AuthMethod::kInsecure, ""};
  } else if (std::optional<std::string> name = ClientCertificateName(req)) {
    if (!server::auth::IsValidPrincipalName(*name)) {
      return absl::UnauthenticatedError(absl::StrCat(
          "client certificate common name '", *name, "' is not a valid principal name"));
    }
    principal = Principal{*name, AuthMethod::kCertificate, ""};
  }
  if (!principal) return absl::UnauthenticatedError("not logged in: log in at /login");
  if (create) return StartSession(*principal, "", req, res);
  return Visitor{Caller{*principal, Peer(req)}, "", std::nullopt};
}

void DashboardServer::Get(const std::string& pattern, Handler handler) {
  http_->Get(pattern, [this, handler = std::move(handler)](Req req, Res res) {
    absl::StatusOr<Visitor> visitor = Identify(req, res, /*create=*/false);
    if (!visitor.ok()) return ReplyError(res, visitor.status());
    handler(*visitor, req, res);
  });
}

void DashboardServer::Post(const std::string& pattern, Handler handler) {
  http_->Post(pattern, [this, handler = std::move(handler)](Req req, Res res) {
    absl::StatusOr<Visitor> visitor = Identify(req, res, /*create=*/false);
    if (!visitor.ok()) return ReplyError(res, visitor.status());
    // The Origin was checked before routing; the CSRF token proves the
    // POST comes from a page this session loaded.
    if (!visitor->session.has_value()) {
      return ReplyError(res, absl::PermissionDeniedError(absl::StrCat(
                                 "POST needs a session and its ", kCsrfHeader,
                                 " header: load /api/session first")));
    }
    if (!ConstantTimeEquals(req.get_header_value(kCsrfHeader), visitor->session->csrf_token)) {
      spdlog::warn("dashboard: POST {} by {} from {} refused: missing or wrong {}", req.path,
                   visitor->caller.principal.name, visitor->caller.peer, kCsrfHeader);
      return ReplyError(res, absl::PermissionDeniedError(absl::StrCat(
                                 "POST without this session's CSRF token in ", kCsrfHeader)));
    }
    handler(*visitor, req, res);
  });
}

void DashboardServer::RegisterRoutes() {
  // Before any route: the Host of every request and the Origin of every
  // POST (DNS rebinding, cross-site forms), and the browser headers.
  http_->set_pre_routing_handler([this](Req req, Res res) {
    SetSecurityHeaders(res);
    std::shared_ptr<const HostAllowList> hosts;
    {
      absl::MutexLock lock(&hosts_mutex_);
      hosts = hosts_;
    }
    absl::Status allowed = hosts == nullptr
                               ? absl::UnavailableError("the dashboard is starting")
                               : hosts->CheckHost(req.get_header_value("Host"));
    if (allowed.ok() && req.method != "GET" && req.method != "HEAD") {
      allowed = hosts->CheckOrigin(req.get_header_value("Origin"), req.get_header_value("Referer"));
    }
    if (allowed.ok()) return httplib::Server::HandlerResponse::Unhandled;
    spdlog::warn("dashboard: {} {} from {} refused: {}", req.method, req.path, Peer(req),
                 std::string(allowed.message()));
    ReplyError(res, allowed);
    return httplib::Server::HandlerResponse::Handled;
  });
  http_->Get("/static/app.js", [](Req, Res res) {
    res.set_content(kAppJs, "application/javascript; charset=utf-8");
  });
  http_->Get("/static/login.js", [](Req, Res res) {
    res.set_content(kLoginJs, "application/javascript; charset=utf-8");
  });
  http_->Get("/static/app.css",
             [](Req, Res res) { res.set_content(kAppCss, "text/css; charset=utf-8"); });
  http_->Get("/metrics", [this](Req req, Res res) { ServeMetrics(req, res); });
  RegisterSessionRoutes();
  RegisterJobRoutes();
  RegisterEventRoutes();
  RegisterFleetRoutes();
}

void DashboardServer::RegisterSessionRoutes() {
  http_->Get("/", [this](Req req, Res res) {
    if (!Identify(req, res, /*create=*/true).ok()) return res.set_redirect("/login", 303);
    res.set_header("Cache-Control", "no-store");
    res.set_content(kIndexHtml, "text/html; charset=utf-8");
  });
  http_->Get("/login", [this](Req, Res res) {
    if (options_.insecure) return res.set_redirect("/", 303);
    res.set_content(absl::StrReplaceAll(kLoginHtml, {{"<!--ERROR-->", ""}}),
                    "text/html; charset=utf-8");
  });
  http_->Post("/login", [this](Req req, Res res) { Login(req, res); });
  Post("/logout", [this](const Visitor& visitor, Req, Res res) {
    sessions_.Remove(visitor.session_id);
    spdlog::info("dashboard: {} logged out ({})", visitor.caller.principal.name,
                 visitor.caller.peer);
    res.set_header("Set-Cookie", CookieHeader("", absl::ZeroDuration()));
    ReplyJson(res, R"({"logged_out":true})");
  });
  http_->Get("/api/session", [this](Req req, Res res) {
    absl::StatusOr<Visitor> visitor = Identify(req, res, /*create=*/true);
    if (!visitor.ok()) return ReplyError(res, visitor.status());
    const Principal& principal = visitor->caller.principal;
    nlohmann::json allowed = nlohmann::json::object();
    for (Rpc rpc : {Rpc::kListJobs, Rpc::kGetJob, Rpc::kListReturns, Rpc::kListRelays,
                    Rpc::kListMinions, Rpc::kRetryMissing, Rpc::kCancelJob, Rpc::kListAudit}) {
      allowed[std::string(server::auth::RpcName(rpc))] = Allowed(*visitor, rpc, "");
    }
    nlohmann::json body = {
        {"principal", principal.name},
        {"authenticated_by", std::string(server::auth::AuthMethodName(principal.method))},
        {"groups", options_.insecure ? std::vector<std::string>{}
                                     : authorizer_->GroupsOf(principal)},
        {"peer", visitor->caller.peer},
        {"insecure", options_.insecure},
        {"https", !options_.insecure},
        {"client_certificates", !options_.tls.client_ca_path.empty()},
        {"allowed", allowed},
    };
    if (visitor->session) {
      body["csrf_token"] = visitor->session->csrf_token;
      body["expires_at_ms"] = absl::ToUnixMillis(visitor->session->expires);
    }
    ReplyJson(res, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  });
}

void DashboardServer::Login(const httplib::Request& req, Res res) {
  if (options_.insecure) return res.set_redirect("/", 303);
  std::string token(absl::StripAsciiWhitespace(req.get_param_value("token")));
  absl::StatusOr<Principal> principal =
      token.empty() ? absl::UnauthenticatedError("no token given")
                    : authenticator_->FromBearerToken(token);
  if (!principal.ok()) {
    spdlog::warn("dashboard: login from {} refused: {}", Peer(req),
                 std::string(principal.status().message()));
    if (options_.login_refused && !token.empty()) {
      options_.login_refused(Peer(req), std::string(server::auth::TokenIdOf(token)),
                             std::string(principal.status().message()));
    }
    res.status = 401;
    std::string error = absl::StrCat("<p class=\"error\" id=\"login-error\">Login refused: ",
                                     HtmlEscape(principal.status().message()), "</p>");
    res.set_content(absl::StrReplaceAll(kLoginHtml, {{"<!--ERROR-->", error}}),
                    "text/html; charset=utf-8");
    return;
  }
  Visitor visitor = StartSession(*principal, token, req, res);
  spdlog::info("dashboard: {} logged in with token {} ({})", principal->name,
               principal->token_id, visitor.caller.peer);
  res.set_redirect(absl::StrCat("/", SafeNext(req.get_param_value("next"))), 303);
}

void DashboardServer::ServeMetrics(const httplib::Request& req, Res res) {
  if (!options_.insecure) {
    std::string authorization = req.get_header_value("Authorization");
    bool ok = false;
    if (absl::StartsWithIgnoreCase(authorization, "Bearer ")) {
      ok = authenticator_->FromBearerToken(
                std::string(absl::StripAsciiWhitespace(authorization.substr(7))))
               .ok();
    } else {
      ok = ClientCertificateName(req).has_value();
    }
    if (!ok) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"jobd\"");
      return ReplyError(res, absl::UnauthenticatedError(
                                 "/metrics needs 'Authorization: Bearer <token>' or a client "
                                 "certificate (or scrape jobd --metrics_listen)"));
    }
  }
  res.set_content(metrics_text_(), metrics::kTextContentType);
}

}  // namespace muster::dashboard
