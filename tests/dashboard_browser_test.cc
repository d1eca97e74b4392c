// The dashboard in a real browser: headless Chromium loads the job page of a
// running job served by a real cluster (redis-server, jobd, one relayd and
// one fleetsim per datacenter, a few silent minions), runs the page's
// JavaScript against jobd's JSON endpoints, and the test checks the
// rendered DOM — the completeness counts, one row per datacenter with its
// delivery, every silent minion in the missing list — and saves
// screenshots of the job, jobs and fleet pages to
// $TEST_UNDECLARED_OUTPUTS_DIR (bazel-testlogs/tests/dashboard_browser_test/
// test.outputs/).
//
// jobd runs secure: the dashboard is HTTPS with jobd's self-signed
// certificate (Chromium accepts exactly that key, by its SPKI hash) and
// every run logs in first, through the login page's link form
// /login#token=...&next=#/job/JID, as the bootstrap admin.
//
// Each Chromium run is a child process with a fresh profile directory,
// bounded by a deadline (killed past it). Headless Chromium's virtual time
// stands still while a request is open, and the job page's event stream
// stays open while the job runs: the running job's pages are loaded with
// #/job/JID?poll (the page polls); the last run follows the job by its
// stream until it is cancelled.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace muster::testing {
namespace {

constexpr int kFleetPerDatacenter = 40;
constexpr absl::Duration kChromiumDeadline = absl::Seconds(90);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string OutputsDir() {
  const char* dir = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR");
  return dir != nullptr ? dir : MakeTempDir("dashboard-outputs");
}

// The first `chromium` (or `chromium-browser`) on PATH, or "".
std::string FindChromium() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin", ':')) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      std::string candidate = absl::StrCat(dir, "/", name);
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

// base64(SHA-256(SubjectPublicKeyInfo)) of the PEM certificate at `path`,
// as Chromium's --ignore-certificate-errors-spki-list wants it.
absl::StatusOr<std::string> SpkiHash(const std::string& path) {
  std::string pem = ReadFile(path);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return absl::InvalidArgumentError("no certificate in " + path);
  unsigned char* der = nullptr;
  int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  X509_free(cert);
  if (length <= 0) return absl::InternalError("cannot encode the public key of " + path);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
  EVP_Digest(der, length, digest, &digest_length, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  std::string base64(4 * ((digest_length + 2) / 3) + 1, '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64.data()), digest,
                                static_cast<int>(digest_length));
  base64.resize(written);
  return base64;
}

// Runs headless Chromium on `url` with `mode_flags` (--dump-dom or
// --screenshot=...), stdout to `stdout_path`. The page's JavaScript gets
// `budget_ms` of virtual time (its 1 s polls included) before the dump.
absl::Status RunChromium(const std::string& chromium, const std::string& spki_hash,
                         const std::string& url, const std::vector<std::string>& mode_flags,
                         const std::string& stdout_path, int budget_ms = 5000) {
  std::string dir = MakeTempDir("chromium");
  std::vector<std::string> argv = {
      chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      absl::StrCat("--ignore-certificate-errors-spki-list=", spki_hash),
      "--no-first-run", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
      absl::StrCat("--user-data-dir=", dir, "/profile"),
      absl::StrCat("--virtual-time-budget=", budget_ms), "--window-size=1280,900"};
  argv.insert(argv.end(), mode_flags.begin(), mode_flags.end());
  argv.push_back(url);
  // Through sh only to split stdout (the DOM) from stderr (Chromium's noise).
  std::vector<std::string> quoted;
  for (const std::string& arg : argv) quoted.push_back(absl::StrCat("'", arg, "'"));
  std::string command = absl::StrCat("HOME='", dir, "' exec ", absl::StrJoin(quoted, " "), " >'",
                                     stdout_path, "' 2>'", dir, "/stderr.log'");
  ChildProcess process;
  if (absl::Status started = process.Start({"/bin/sh", "-c", command}, dir + "/sh.log");
      !started.ok()) {
    return started;
  }
  absl::StatusOr<int> exit_code = process.Wait(kChromiumDeadline);
  if (!exit_code.ok()) {
    process.Kill();
    return absl::DeadlineExceededError(absl::StrCat("chromium did not finish within ",
                                                    absl::FormatDuration(kChromiumDeadline)));
  }
  if (*exit_code != 0) {
    return absl::InternalError(absl::StrCat("chromium exited with ", *exit_code, ":\n",
                                            ReadFile(dir + "/stderr.log").substr(0, 4000)));
  }
  return absl::OkStatus();
}

// The text of `<b data-k="KEY">N</b>` inside the element with id `id`.
std::string SummaryValue(const std::string& dom, const std::string& key) {
  std::smatch match;
  std::regex pattern(absl::StrCat("<b data-k=\"", key, "\">([^<]*)</b>"));
  size_t summary = dom.find("id=\"summary\"");
  if (summary == std::string::npos) return "<no #summary>";
  std::string rest = dom.substr(summary, 2000);
  return std::regex_search(rest, match, pattern) ? match[1].str() : "<no " + key + ">";
}

// The `<tr data-dc="DC">...</tr>` row, or "".
std::string DatacenterRow(const std::string& dom, const std::string& datacenter) {
  size_t begin = dom.find(absl::StrCat("<tr data-dc=\"", datacenter, "\">"));
  if (begin == std::string::npos) return "";
  size_t end = dom.find("</tr>", begin);
  return dom.substr(begin, end - begin);
}

std::string Cell(const std::string& row, const std::string& key) {
  std::smatch match;
  std::regex pattern(absl::StrCat("data-k=\"", key, "\">([^<]*)<"));
  return std::regex_search(row, match, pattern) ? match[1].str() : "<no " + key + ">";
}

// The inner HTML of <table id="missing">.
std::string MissingTable(const std::string& dom) {
  size_t begin = dom.find("<table id=\"missing\">");
  if (begin == std::string::npos) return "";
  return dom.substr(begin, dom.find("</table>", begin) - begin);
}

class DashboardBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = FindChromium();
    ASSERT_FALSE(chromium_.empty())
        << "headless Chromium not found on PATH: install Debian's `chromium` "
           "(scripts/install-deps.sh lists it)";
    http_port_ = FreePort();
    ClusterOptions options = ClusterOptions::Datacenters(kFleetPerDatacenter, 0, 3);
    // admin may do everything; carol only read (docs/SECURITY.md 7.3).
    std::string policy = MakeTempDir("policy") + "/policy.json";
    std::ofstream(policy) << R"({"groups": {"viewers": ["carol"]}, "rules": [
        {"name": "admins", "who": ["admin"], "rpcs": ["*"]},
        {"name": "read-only", "who": ["group:viewers"], "rpcs": ["@read"]}]})";
    options.jobd_flags = {absl::StrCat("--http_listen=127.0.0.1:", http_port_),
                          "--policy=" + policy};
    // dc2 has 3 minions that heartbeat but never answer; dc3 one.
    options.datacenters[1].fleet.silent_ids = {"sim-00007.dc2.example.com",
                                               "sim-00023.dc2.example.com",
                                               "sim-00031.dc2.example.com"};
    options.datacenters[2].fleet.silent_ids = {"sim-00040.dc3.example.com"};
    options.start_timeout = absl::Seconds(60);
    cluster_ = std::make_unique<Cluster>(options);
    absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
    JobdAccess access = cluster_->jobd_access();
    ASSERT_FALSE(access.insecure);
    absl::StatusOr<std::string> spki = SpkiHash(access.tls_ca);
    ASSERT_TRUE(spki.ok()) << spki.status();
    spki_hash_ = *spki;
    token_ = std::string(absl::StripAsciiWhitespace(ReadFile(access.token_file)));
    ASSERT_FALSE(token_.empty());
  }

  // The login link that lands on `fragment` of the page.
  std::string Url(const std::string& fragment) { return UrlAs(token_, fragment); }
  std::string UrlAs(const std::string& token, const std::string& fragment) {
    return absl::StrCat("https://127.0.0.1:", http_port_, "/login#token=", token,
                        "&next=", absl::StrReplaceAll(fragment, {{"#", "%23"}}));
  }

  absl::Status Chromium(const std::string& url, const std::vector<std::string>& mode_flags,
                        const std::string& stdout_path) {
    return RunChromium(chromium_, spki_hash_, url, mode_flags, stdout_path);
  }

  std::string chromium_;
  std::string spki_hash_;
  std::string token_;
  int http_port_ = 0;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(DashboardBrowserTest, JobPageRendersCountsDatacentersAndMissingMinions) {
  absl::StatusOr<v1::SubmitJobResponse> submitted =
      cluster_->Submit("*", "test.ping", {}, absl::Minutes(5));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string& jid = submitted->jid();
  const int expected = 3 * kFleetPerDatacenter;
  const int silent = 4;
  ASSERT_EQ(submitted->expected(), static_cast<uint64_t>(expected));
  // Wait until every minion that answers has answered: the job stays
  // RUNNING with exactly the silent ones missing.
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  v1::Job job;
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::Job> got = cluster_->GetJob(jid);
    ASSERT_TRUE(got.ok()) << got.status();
    job = *got;
    bool all_delivered = job.datacenters_size() == 3;
    for (const v1::DatacenterStatus& dc : job.datacenters()) all_delivered &= dc.delivered();
    if (job.completeness().returned() == static_cast<uint64_t>(expected - silent) &&
        all_delivered) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(job.completeness().returned(), static_cast<uint64_t>(expected - silent));
  ASSERT_EQ(job.state(), v1::RUNNING);

  std::string outputs = OutputsDir();
  std::string dom_path = outputs + "/dashboard_job.html";
  absl::Status dumped = Chromium(Url("#/job/" + jid + "?poll"), {"--dump-dom"}, dom_path);
  ASSERT_TRUE(dumped.ok()) << dumped;
  std::string dom = ReadFile(dom_path);
  ASSERT_TRUE(absl::StrContains(dom, absl::StrCat("<span id=\"jid\">", jid, "</span>")))
      << dom.substr(0, 3000);
  EXPECT_TRUE(absl::StrContains(dom, "<span class=\"state RUNNING\">RUNNING</span>"));

  EXPECT_EQ(SummaryValue(dom, "expected"), absl::StrCat(expected));
  EXPECT_EQ(SummaryValue(dom, "returned"), absl::StrCat(expected - silent));
  EXPECT_EQ(SummaryValue(dom, "succeeded"), absl::StrCat(expected - silent));
  EXPECT_EQ(SummaryValue(dom, "failed"), "0");
  EXPECT_EQ(SummaryValue(dom, "missing"), absl::StrCat(silent));

  const std::map<std::string, int> silent_per_dc = {{"dc1", 0}, {"dc2", 3}, {"dc3", 1}};
  for (const auto& [dc, dc_silent] : silent_per_dc) {
    std::string row = DatacenterRow(dom, dc);
    ASSERT_FALSE(row.empty()) << "no row for " << dc;
    EXPECT_EQ(Cell(row, "expected"), absl::StrCat(kFleetPerDatacenter)) << dc;
    EXPECT_EQ(Cell(row, "returned"), absl::StrCat(kFleetPerDatacenter - dc_silent)) << dc;
    EXPECT_EQ(Cell(row, "missing"), absl::StrCat(dc_silent)) << dc;
    EXPECT_TRUE(absl::StrContains(Cell(row, "delivery"), "delivered +")) << row;
    EXPECT_TRUE(absl::StrContains(row, absl::StrCat("(relay-", dc, ")"))) << row;
  }

  std::string missing = MissingTable(dom);
  for (const char* dc : {"dc1", "dc2", "dc3"}) {
    for (const std::string& id : cluster_->SilentIds(dc)) {
      EXPECT_TRUE(absl::StrContains(missing, absl::StrCat("<td>", id, "</td><td>", dc, "</td>")))
          << id << " not in the missing list:\n" << missing;
    }
  }
  EXPECT_EQ(absl::StrContains(missing, "sim-00001."), false);
  EXPECT_TRUE(
      absl::StrContains(dom, "<span id=\"missing-range\" class=\"muted\">1–4 of 4</span>"))
      << dom;

  // The audit tab lists the submit, escaped as text.
  std::string audit_path = outputs + "/dashboard_audit.html";
  absl::Status audit_dumped = Chromium(Url("#/audit"), {"--dump-dom"}, audit_path);
  ASSERT_TRUE(audit_dumped.ok()) << audit_dumped;
  std::string audit = ReadFile(audit_path);
  size_t row = audit.find(absl::StrCat("<td>", jid, "</td>"));
  ASSERT_NE(row, std::string::npos) << audit.substr(0, 3000);
  std::string row_html = audit.substr(audit.rfind("<tr", row), audit.find("</tr>", row) - audit.rfind("<tr", row));
  EXPECT_TRUE(absl::StrContains(row_html, "<td>admin</td>")) << row_html;
  EXPECT_TRUE(absl::StrContains(row_html, "<td>SubmitJob</td>")) << row_html;
  EXPECT_TRUE(absl::StrContains(row_html, ">ALLOWED</td>")) << row_html;
  EXPECT_TRUE(absl::StrContains(audit, "admin (token)")) << "who is logged in";

  // A read-only principal sees the same job without buttons or the
  // audit tab.
  grpc::ClientContext context;
  v1::CreateTokenRequest create;
  create.set_principal("carol");
  v1::CreateTokenResponse carol;
  grpc::Status created = cluster_->stub().CreateToken(&context, create, &carol);
  ASSERT_TRUE(created.ok()) << created.error_message();
  std::string carol_path = outputs + "/dashboard_job_read_only.html";
  absl::Status carol_dumped =
      Chromium(UrlAs(carol.bearer_token(), "#/job/" + jid + "?poll"), {"--dump-dom"}, carol_path);
  ASSERT_TRUE(carol_dumped.ok()) << carol_dumped;
  std::string carol_dom = ReadFile(carol_path);
  ASSERT_TRUE(absl::StrContains(carol_dom, absl::StrCat("<span id=\"jid\">", jid, "</span>")))
      << carol_dom.substr(0, 3000);
  EXPECT_TRUE(absl::StrContains(carol_dom, "carol (token)"));
  EXPECT_EQ(SummaryValue(carol_dom, "missing"), absl::StrCat(silent));
  EXPECT_FALSE(absl::StrContains(carol_dom, "id=\"retry\"")) << MissingTable(carol_dom);
  EXPECT_FALSE(absl::StrContains(carol_dom, "id=\"cancel\""));
  EXPECT_TRUE(absl::StrContains(carol_dom, "id=\"nav-audit\" hidden"));
  EXPECT_TRUE(absl::StrContains(dom, "id=\"cancel\"")) << "admin's page has the buttons";
  EXPECT_EQ(cluster_->GetJob(jid)->state(), v1::RUNNING);

  // Screenshots for a human (and for the record): the job, the job list,
  // the fleet, the audit log.
  for (const auto& [name, fragment] :
       std::vector<std::pair<std::string, std::string>>{{"dashboard_job", "#/job/" + jid + "?poll"},
                                                        {"dashboard_jobs", "#/jobs"},
                                                        {"dashboard_fleet", "#/fleet"},
                                                        {"dashboard_audit", "#/audit"}}) {
    std::string png = absl::StrCat(outputs, "/", name, ".png");
    absl::Status shot =
        Chromium(Url(fragment), {"--screenshot=" + png}, outputs + "/" + name + ".stdout");
    ASSERT_TRUE(shot.ok()) << name << ": " << shot;
    std::string image = ReadFile(png);
    ASSERT_GT(image.size(), 8000u) << name;
    EXPECT_EQ(image.substr(0, 8), "\x89PNG\r\n\x1a\n") << name;
  }

  // Without ?poll the page follows the job by its event stream; the stream
  // ends with the job, and then the page's virtual time runs on. Whether
  // the cancel comes before or after the page opened the stream, the page
  // shows the end from it: "(live)" beside the time it was updated.
  grpc::ClientContext cancel_context;
  v1::CancelJobRequest cancel;
  cancel.set_jid(jid);
  v1::CancelJobResponse cancelled;
  std::thread canceller([&] {
    grpc::Status status = cluster_->stub().CancelJob(&cancel_context, cancel, &cancelled);
    EXPECT_TRUE(status.ok()) << status.error_message();
  });
  std::string live_path = outputs + "/dashboard_job_live.html";
  absl::Status live_dumped = Chromium(Url("#/job/" + jid), {"--dump-dom"}, live_path);
  canceller.join();
  ASSERT_TRUE(live_dumped.ok()) << live_dumped;
  std::string live = ReadFile(live_path);
  EXPECT_TRUE(absl::StrContains(live, "<span class=\"state CANCELLED\">CANCELLED</span>"))
      << live.substr(0, 3000);
  EXPECT_TRUE(std::regex_search(live, std::regex("id=\"updated\"[^>]*>updated [^<]* \\(live\\)<")))
      << "not updated by the event stream: " << live.substr(0, 3000);
}

}  // namespace
}  // namespace muster::testing
