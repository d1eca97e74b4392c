// Muster dashboard: a small single-page app over jobd's JSON endpoints
// (/api/...). The endpoints call the same JobService code as gRPC, so the
// figures here are exactly those of GetJob / ListReturns / ListRelays.
//
// Each page builds its skeleton once when the route changes (inputs,
// buttons, table heads) and then only refreshes the parts that hold data,
// in place, on every update: a search box keeps its focus and text, a pager
// its position. The job page follows its job by server push: an
// EventSource on /api/jobs/JID/events delivers the job's JSON when it
// changes and ends after the final state. Where that is refused (no
// EventSource, the dashboard's stream limit, jobd restarting), or with
// #/job/JID?poll (a proxy that buffers streams), it polls every second
// instead, as the lists do every 3 s; a job is not polled once it has
// ended.
//
// Access (docs/SECURITY.md 7.6): the page first asks /api/session who is
// logged in, the session's CSRF token (sent in X-CSRF-Token on every POST)
// and what the policy allows; without a session (401) it goes to /login.
// Buttons the principal may not use are not shown (jobd refuses their POSTs
// anyway). Data from jobd reaches the DOM escaped (esc) or as textContent.
"use strict";

const view = document.getElementById("view");
let timer = null;
let page = null;       // the mounted page: {refresh() -> Promise<bool keepPolling>, interval}
let generation = 0;    // bumps on every route change: a page's late answers are dropped
let tick = 0;          // bumps on every schedule(): only the latest chain keeps polling
let source = null;     // the job page's open EventSource, if any

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c =>
    ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
// The UTF-8 character at b[i]: [length, code point], or [0, 0] when the
// bytes there are not well-formed UTF-8 (as common/text/utf8.h).
function utf8Char(b, i) {
  const lead = b[i];
  if (lead < 0x80) return [1, lead];
  let len, cp, min;
  if ((lead & 0xe0) === 0xc0) { len = 2; cp = lead & 0x1f; min = 0x80; }
  else if ((lead & 0xf0) === 0xe0) { len = 3; cp = lead & 0x0f; min = 0x800; }
  else if ((lead & 0xf8) === 0xf0) { len = 4; cp = lead & 0x07; min = 0x10000; }
  else return [0, 0];
  if (i + len > b.length) return [0, 0];
  for (let k = 1; k < len; k++) {
    if ((b[i + k] & 0xc0) !== 0x80) return [0, 0];
    cp = (cp << 6) | (b[i + k] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return [0, 0];
  return [len, cp];
}
// A return's output as text (not yet HTML-escaped). The API gives the exact
// bytes in `<field>_base64` when they are not valid UTF-8; control
// characters (but newline and tab) and invalid bytes are shown as \xNN,
// as jobctl does on a terminal.
function outputText(text, base64) {
  const b = base64 ? Uint8Array.from(atob(base64), c => c.charCodeAt(0))
                   : new TextEncoder().encode(text || "");
  let out = "";
  for (let i = 0; i < b.length;) {
    const [len, cp] = utf8Char(b, i);
    const control = cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
    if (len && (!control || cp === 10 || cp === 9)) {
      out += String.fromCodePoint(cp);
      i += len;
      continue;
    }
    for (let k = 0; k < Math.max(len, 1); k++) out += "\\x" + b[i + k].toString(16).padStart(2, "0");
    i += Math.max(len, 1);
  }
  return out;
}
function n(v) { return Number(v || 0); }
function $(id) { return document.getElementById(id); }
function fmtTime(ms) { return n(ms) ? new Date(n(ms)).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–"; }
function fmtAge(ms) {
  if (!n(ms)) return "–";
  const s = Math.max(0, (Date.now() - n(ms)) / 1000);
  if (s < 60) return s.toFixed(0) + " s ago";
  if (s < 3600) return (s / 60).toFixed(0) + " min ago";
  if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
  return (s / 86400).toFixed(0) + " d ago";
}
function hashParams() { return new URLSearchParams(location.hash.split("?")[1] || ""); }
let session = null;     // /api/session: {principal, csrf_token, allowed: {Rpc: bool}, insecure, ...}

function goLogin() { location.assign("/login" + location.hash); }
async function api(path, options) {
  const r = await fetch(path, Object.assign({cache: "no-store", credentials: "same-origin"}, options));
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) { goLogin(); throw new Error(body.error || "not logged in"); }
  if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
  return body;
}
function post(path) {
  return api(path, {method: "POST", headers: {"X-CSRF-Token": session ? session.csrf_token : ""}});
}
function allowed(rpc) { return !!(session && session.allowed && session.allowed[rpc]); }
// An element with `text` as its text (never parsed as HTML).
function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

// Completeness bar: ok (green), failed (red), missing (grey background).
function bar(c) {
  const e = Math.max(n(c.expected), 1);
  const ok = 100 * n(c.succeeded) / e, failed = 100 * n(c.failed) / e;
  return `<div class="bar" title="ok ${n(c.succeeded)} · failed ${n(c.failed)} · missing ${n(c.missing)}">` +
    `<span class="ok" style="width:${ok}%"></span><span class="failed" style="width:${failed}%"></span></div>`;
}
function counts(c) {
  const e = n(c.expected);
  const pct = e ? (100 * n(c.returned) / e).toFixed(1) : "100.0";
  return `expected <b data-k="expected">${e}</b> · received <b data-k="received">${n(c.received)}</b> · ` +
    `returned <b data-k="returned">${n(c.returned)}</b> (${pct}%) · ` +
    `ok <b data-k="succeeded">${n(c.succeeded)}</b> · failed <b data-k="failed">${n(c.failed)}</b> · ` +
    `missing <b data-k="missing">${n(c.missing)}</b> · unexpected <b data-k="unexpected">${n(c.unexpected)}</b>`;
}
function stateBadge(s) { return `<span class="state ${esc(s)}">${esc(s)}</span>`; }
function setHtml(id, html) { const el = $(id); if (el && el.innerHTML !== html) el.innerHTML = html; }
function setActive(id) {
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.id === id);
}
function debounce(fn, ms) { let t = null; return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); }; }

// ---------------------------------------------------------------- jobs list

function jobsPage() {
  setActive("nav-jobs");
  const gen = generation;
  const state = hashParams().get("state") || "";
  const states = ["", "RUNNING", "PENDING", "COMPLETE", "INCOMPLETE", "CANCELLED"];
  view.innerHTML = `<h1>Jobs</h1>
    <div class="toolbar">State <select id="state">${states.map(s =>
      `<option value="${s}" ${s === state ? "selected" : ""}>${s || "all"}</option>`).join("")}</select></div>
    <table id="jobs"><thead><tr><th>jid</th><th>state</th><th>function</th><th>target</th><th>age</th>
    <th>completeness</th><th class="num">returned</th><th class="num">failed</th><th class="num">missing</th></tr></thead>
    <tbody id="jobs-body"></tbody></table>`;
  $("state").onchange = e => { location.hash = "#/jobs" + (e.target.value ? "?state=" + e.target.value : ""); };
  return {
    interval: 3000,
    async refresh() {
      const data = await api("/api/jobs?limit=100" + (state ? "&state=" + state : ""));
      if (gen !== generation) return false;
      setHtml("jobs-body", (data.jobs || []).map(j => `<tr data-jid="${esc(j.jid)}">
        <td><a href="#/job/${esc(j.jid)}">${esc(j.jid)}</a></td>
        <td>${stateBadge(j.state)}</td>
        <td>${esc(j.function)} ${esc((j.args || []).join(" "))}</td>
        <td><code>${esc(j.target.expression)}</code> <span class="muted">${esc(j.target.type)}</span></td>
        <td>${fmtAge(j.created_at_ms)}</td>
        <td>${bar(j.completeness)}</td>
        <td class="num">${n(j.completeness.returned)}/${n(j.completeness.expected)}</td>
        <td class="num">${n(j.completeness.failed)}</td><td class="num">${n(j.completeness.missing)}</td></tr>`).join("") ||
        '<tr><td colspan="9" class="muted">no jobs</td></tr>');
      return true;
    },
  };
}

// ---------------------------------------------------------------- one job

function jobPage(jid) {
  setActive("nav-jobs");
  const gen = generation;
  const base = "/api/jobs/" + encodeURIComponent(jid);
  // Missing list paging: `token` is the current page's token, `previous`
  // the tokens of the pages before it (for ‹ prev).
  const missing = {token: "", previous: [], query: "", next: ""};
  const pageSize = 100;
  let job = null;
  view.innerHTML = `<h1>Job <span id="jid">${esc(jid)}</span> <span id="job-state"></span></h1>
    <div class="muted" id="meta"></div>
    <div class="summary" id="summary"></div>
    <div id="overall"></div>
    <h2>Datacenters</h2>
    <table id="datacenters"><thead><tr><th>datacenter</th><th>completeness</th><th class="num">expected</th><th class="num">received</th><th class="num">returned</th>
      <th class="num">ok</th><th class="num">failed</th><th class="num">missing</th><th>delivery</th></tr></thead>
      <tbody id="dc-body"></tbody></table>
    <h2>Missing minions (<span id="missing-count">0</span>)</h2>
    <div class="toolbar"><input id="q" placeholder="search missing ids" autocomplete="off">
      <button id="retry" disabled>Retry missing</button>
      <button id="cancel" disabled>Cancel job</button>
      <span id="action-result" class="muted"></span></div>
    <table id="missing"><thead><tr><th>minion</th><th>datacenter</th><th>job</th></tr></thead><tbody id="missing-body"></tbody></table>
    <div class="pager"><button id="prev" disabled>‹ prev</button><button id="next" disabled>next ›</button>
      <span id="missing-range" class="muted"></span></div>
    <h2>Failed minions (<span id="failed-count">0</span>)</h2>
    <table id="failed"><thead><tr><th>minion</th><th>datacenter</th><th class="num">retcode</th><th>output</th></tr></thead>
      <tbody id="failed-body"></tbody></table>
    <div id="failed-more" class="muted"></div>`;

  // When each attempt started (delivery times are relative to it).
  function attemptStart(attempt) {
    const a = (job.attempts || []).find(x => n(x.attempt) === n(attempt));
    return a ? n(a.started_at_ms) : n(job.created_at_ms);
  }

  // "3 unreachable (e.g. a, b, c)" for a delivery whose bus said it cannot
  // reach some expected minions (they stay missing); "" when none.
  function unreachable(a) {
    const count = n(a && a.unreachable);
    if (!count) return "";
    const ids = (a.unreachable_ids || []).slice(0, 5);
    const sample = ids.length ? ` (${ids.length < count ? "e.g. " : ""}${ids.map(esc).join(", ")})` : "";
    return `<span class="warn" title="the datacenter's bus cannot reach them (Salt: no accepted key at the salt-master); they stay missing">${count} unreachable${sample}</span>`;
  }

  // The delivery cell: the latest attempt sent to the datacenter (with its
  // unreachable minions), then, after a retry, one line per attempt (sent
  // or not, delivered when).
  function delivery(d) {
    let latest = d.delivered ? "delivered +" + Math.max(0, n(d.delivered_at_ms) - attemptStart(d.delivery_attempt)) +
      " ms (" + esc(d.relay_id) + ")"
      : d.expired_at_relay ? '<span class="warn">expired at relay</span>'
      : d.interrupted_at_relay ? '<span class="warn">interrupted at relay (may have reached minions)</span>'
      : '<span class="warn">not delivered</span>';
    if (n(d.unreachable)) {
      const sent = (d.attempts || []).find(a => n(a.attempt) === n(d.delivery_attempt));
      latest += `<div data-k="unreachable">${unreachable(sent || { unreachable: d.unreachable })}</div>`;
    }
    if ((job.attempts || []).length < 2) return latest;
    const rows = (d.attempts || []).map(a => {
      const at = Math.max(0, n(a.at_ms) - attemptStart(a.attempt));
      let what = a.status === "NOT_SENT" ? "not sent"
        : a.status === "DELIVERED" ? `${n(a.asked)} asked, delivered +${at} ms (${esc(a.relay_id)})`
        : a.status === "EXPIRED" ? `${n(a.asked)} asked, <span class="warn">expired at relay</span>`
        : a.status === "INTERRUPTED" ? `${n(a.asked)} asked, <span class="warn">interrupted at relay</span>`
        : `${n(a.asked)} asked, <span class="warn">not delivered</span>`;
      if (n(a.unreachable)) what += ", " + unreachable(a);
      return `<div class="muted" data-attempt="${n(a.attempt)}">attempt ${n(a.attempt)}: ${what}</div>`;
    });
    return `${latest} [attempt ${n(d.delivery_attempt)}]${rows.join("")}`;
  }

  function renderJob() {
    setHtml("job-state", stateBadge(job.state));
    setHtml("meta", `${esc(job.function)} ${esc((job.args || []).join(" "))} on <code>${esc(job.target.expression)}</code>
      (${esc(job.target.type)}) · attempt ${n(job.attempt)} · submitted ${fmtTime(job.created_at_ms)}
      ${job.submitter ? "by " + esc(job.submitter) : ""} · timeout ${n(job.timeout_ms) / 1000} s
      ${n(job.ended_at_ms) ? "· ended " + fmtTime(job.ended_at_ms) : ""}`);
    setHtml("summary", counts(job.completeness));
    setHtml("overall", bar(job.completeness));
    setHtml("dc-body", (job.datacenters || []).map(d => `<tr data-dc="${esc(d.datacenter)}">
      <td>${esc(d.datacenter)}</td><td>${bar(d.completeness)}</td>
      <td class="num" data-k="expected">${n(d.completeness.expected)}</td>
      <td class="num" title="acknowledged receipt or returned" data-k="received">${n(d.completeness.received)}</td><td class="num" data-k="returned">${n(d.completeness.returned)}</td>
      <td class="num" data-k="succeeded">${n(d.completeness.succeeded)}</td><td class="num" data-k="failed">${n(d.completeness.failed)}</td>
      <td class="num" data-k="missing">${n(d.completeness.missing)}</td>
      <td data-k="delivery">${delivery(d)}</td></tr>`).join("") ||
      '<tr><td colspan="9" class="muted">no expected minions</td></tr>');
    setHtml("missing-count", String(n(job.completeness.missing)));
    setHtml("failed-count", String(n(job.completeness.failed)));
    const ended = !(job.state === "RUNNING" || job.state === "PENDING");
    if ($("retry")) $("retry").disabled = !n(job.completeness.missing) || job.state === "CANCELLED";
    if ($("cancel")) $("cancel").disabled = ended;
  }

  async function refreshMissing() {
    const query = missing.query;
    const data = await api(`${base}/missing?limit=${pageSize}&page_token=${encodeURIComponent(missing.token)}` +
      (query ? "&q=" + encodeURIComponent(query) : ""));
    if (gen !== generation || query !== missing.query) return;  // stale answer
    const rows = data.missing || [];
    missing.next = data.next_page_token || "";
    setHtml("missing-body", rows.map(m => `<tr><td>${esc(m.minion_id)}</td><td>${esc(m.datacenter)}</td>` +
      `<td data-k="received">${m.received ? "received, no answer" : '<span class="warn">never reached</span>'}</td></tr>`).join("") ||
      `<tr><td colspan="3" class="muted">${query ? "no missing id contains “" + esc(query) + "”" : "none"}</td></tr>`);
    const first = missing.previous.length * pageSize;
    setHtml("missing-range", rows.length ? `${first + 1}–${first + rows.length}` +
      (query ? " matching" : " of " + n(job && job.completeness.missing)) : "");
    $("prev").disabled = missing.previous.length === 0;
    $("next").disabled = !missing.next;
  }

  async function refreshFailed() {
    const data = await api(`${base}/returns?filter=failed&limit=50`);
    if (gen !== generation) return;
    const rows = data.returns || [];
    setHtml("failed-body", rows.map(r => `<tr><td>${esc(r.minion_id)}</td><td>${esc(r.datacenter)}</td>
      <td class="num">${n(r.retcode)}</td><td><pre>${esc(outputText(r.stdout, r.stdout_base64))}${r.stderr ? "\n" + esc(outputText(r.stderr, r.stderr_base64)) : ""}</pre></td></tr>`).join("") ||
      '<tr><td colspan="4" class="muted">none</td></tr>');
    setHtml("failed-more", data.next_page_token ? `first ${rows.length} shown; <code>jobctl returns ${esc(jid)} --failed</code> lists all` : "");
  }

  const search = debounce(() => {
    missing.query = $("q").value.trim();
    missing.token = ""; missing.previous = [];
    refreshMissing().catch(showError);
  }, 250);
  $("q").addEventListener("input", search);
  $("next").onclick = () => {
    if (!missing.next) return;
    missing.previous.push(missing.token); missing.token = missing.next;
    refreshMissing().catch(showError);
  };
  $("prev").onclick = () => {
    missing.token = missing.previous.pop() || "";
    refreshMissing().catch(showError);
  };
  async function act(what, label) {
    try {
      const r = await post(`${base}/${what}`);
      $("action-result").textContent = what === "retry"
        ? `attempt ${n(r.attempt)}: retrying ${n(r.retried)} minions` : label;
      missing.token = ""; missing.previous = [];
      follow();  // a retried job runs again: its stream had ended
    } catch (e) { $("action-result").textContent = e.message; }
  }
  $("retry").onclick = () => act("retry");
  $("cancel").onclick = () => act("cancel", "cancelled");
  // No button the policy would refuse: ask once which this principal has
  // for this job (RetryMissing may be limited to some functions).
  $("retry").hidden = $("cancel").hidden = true;
  api(base + "/actions").then(a => {
    if (gen !== generation) return;
    if (!a.RetryMissing) $("retry").remove(); else $("retry").hidden = false;
    if (!a.CancelJob) $("cancel").remove(); else $("cancel").hidden = false;
  }).catch(showError);

  // The lists under the job cost two requests: with the event stream
  // (an update every 200 ms at most) they follow at most once a second,
  // and at once when the job ends.
  let listsAt = 0;
  let listsTimer = null;
  async function refreshLists(now) {
    clearTimeout(listsTimer);
    const wait = listsAt + 1000 - Date.now();
    if (!now && wait > 0) {
      listsTimer = setTimeout(() => { if (gen === generation) refreshLists(true).catch(showError); }, wait);
      return;
    }
    listsAt = Date.now();
    await Promise.all([refreshMissing(), refreshFailed()]);
  }
  // Shows `fresh` (the job's JSON); whether the job still runs.
  async function show(fresh, streamed) {
    if (gen !== generation) return false;
    job = fresh;
    renderJob();
    const running = job.state === "RUNNING" || job.state === "PENDING";
    await refreshLists(!streamed || !running);
    return running;
  }

  return {
    interval: 1000,
    events: hashParams().has("poll") ? null : base + "/events",
    show,
    async refresh() { return show(await api(base), false); },
  };
}

// ---------------------------------------------------------------- fleet

// What a relay's security checks refused (docs/PROTOCOL.md 8.3, 8.4): the
// total, with each reason in the cell's tooltip and below it.
function refusalText(r) {
  const parts = [];
  for (const [who, counts] of [["relay", r.dispatches_refused], ["minions", r.minion_dispatches_refused],
                               ["messages", r.messages_refused]]) {
    const reasons = Object.keys(counts || {}).sort().filter(k => n(counts[k]) > 0)
      .map(k => `${k}=${n(counts[k])}`);
    if (reasons.length) parts.push(`${who} ${reasons.join(" ")}`);
  }
  return parts.join(" · ");
}

function relaySecurityCells(r) {
  const sum = counts => Object.values(counts || {}).reduce((a, v) => a + n(v), 0);
  const refused = sum(r.dispatches_refused) + sum(r.minion_dispatches_refused) + sum(r.messages_refused);
  const details = refusalText(r);
  const refusedCell = refused > 0
    ? `<span class="warn" title="${esc(details)}">${refused}</span><div class="muted small">${esc(details)}</div>`
    : "0";
  // A Salt relay's minion keys are its master's (accepted with salt-key).
  const pending = r.bus_kind === "salt" && r.salt_master ? n(r.salt_master.keys_pending) : n(r.keys_pending);
  return `<td class="num refused">${refusedCell}</td>
    <td class="num">${pending > 0 ? `<span class="warn">${pending}</span>` : "0"}</td>
    <td>${r.secure === true ? "secure" : '<span class="insecure">INSECURE/unknown</span>'}</td>`;
}

// The bus cell: "muster", or "salt" with its master's condition and keys
// (loud when the master is not UP).
function relayBusCell(r) {
  const kind = r.bus_kind || "muster";
  if (kind !== "salt") return `<td data-k="bus">${esc(kind)}</td>`;
  const m = r.salt_master;
  if (!m) return '<td data-k="bus">salt <span class="warn">master not reported</span></td>';
  const condition = m.condition === "UP" ? "UP" : m.condition === "DOWN" ? "DOWN"
    : m.condition === "KEY_REFUSED" ? "KEY_REFUSED (refuses the relay's key)" : "UNKNOWN";
  const since = m.condition !== "UP" && n(m.since_ms) ? " for " + fmtAge(m.since_ms).replace(/ ago$/, "") : "";
  const keys = [`${n(m.keys_accepted)} keys accepted`];
  if (n(m.keys_pending)) keys.push(`${n(m.keys_pending)} pending`);
  if (n(m.keys_rejected)) keys.push(`${n(m.keys_rejected)} rejected`);
  if (n(m.returns_caught_up)) keys.push(`${n(m.returns_caught_up)} returns caught up`);
  const state = m.condition === "UP" ? "master UP" : `<span class="insecure">master ${esc(condition)}${esc(since)}</span>`;
  const detail = m.detail ? `<div class="muted small">${esc(m.detail)}</div>` : "";
  return `<td data-k="bus">salt · ${state}<div class="muted small">${keys.join(", ")}</div>${detail}</td>`;
}

// ---------------------------------------------------------------- redis

// The same words as `jobctl relays` (client/fleet_format.cc): above 1 MiB a
// replica's lag is warned about.
const kReplicaLagWarningBytes = 1 << 20;

function fmtBytes(v) {
  const b = n(v);
  if (b < 1024) return `${b} B`;
  if (b < 1 << 20) return `${(b / 1024).toFixed(1)} KiB`;
  if (b < 1 << 30) return `${(b / 1048576).toFixed(1)} MiB`;
  return `${(b / 1073741824).toFixed(1)} GiB`;
}

function plural(count, one, many) { return `${n(count)} ${n(count) === 1 ? one : many}`; }

// jobd's view of the primary and its replicas (ListRelaysResponse.redis).
function redisTopologyHtml(t) {
  if (!t) return "";
  const about = [];
  if (t.master_name) about.push(`sentinel master '${esc(t.master_name)}'`);
  about.push(`jobd followed ${plural(t.failovers_followed, "failover", "failovers")}`);
  if (!t.primary) {
    return `<p class="redis-topology">redis: <span class="insecure">primary UNREACHABLE</span>
      (${esc(t.error || "")}) (${about.join(", ")})</p>`;
  }
  const replicas = (t.replicas || []).map(r => {
    const lag = `${esc(r.address)} lag ${fmtBytes(r.lag_bytes)}`;
    return n(r.lag_bytes) > kReplicaLagWarningBytes ? `<span class="warn">${lag}</span>` : lag;
  });
  return `<p class="redis-topology">redis: primary ${esc(t.primary)} (${about.join(", ")});
    ${replicas.length ? "replicas " + replicas.join(", ") : "no replicas online"}</p>`;
}

// A relay's Redis cell: where it writes and reads, what it holds.
function relayRedisCell(r, topology) {
  const v = r.redis;
  if (!v) return '<td data-k="redis" class="muted">not reported</td>';
  let reads = "reads (not connected)";
  if (v.read_node && v.read_from_replica) {
    const replica = ((topology || {}).replicas || []).find(x => x.address === v.read_node);
    reads = `reads replica ${esc(v.read_node)}${replica ? ` (lag ${fmtBytes(replica.lag_bytes)})` : ""}`;
  } else if (v.read_node) {
    reads = `reads primary ${esc(v.read_node)}`;
    if (v.replica) reads = `<span class="warn">${reads} (replica ${esc(v.replica)} not used)</span>`;
  }
  const more = [];
  if (n(v.failovers_followed)) more.push(`followed ${plural(v.failovers_followed, "failover", "failovers")}`);
  if (n(v.unconfirmed_entries) || n(v.unconfirmed_deliveries)) {
    more.push(`unconfirmed ${plural(v.unconfirmed_entries, "entry", "entries")} (${fmtBytes(v.unconfirmed_bytes)}) and ` +
              plural(v.unconfirmed_deliveries, "delivery", "deliveries"));
  }
  if (n(v.entries_rewritten) || n(v.deliveries_rewritten)) {
    more.push(`rewrote ${plural(v.entries_rewritten, "entry", "entries")} and ` +
              plural(v.deliveries_rewritten, "delivery", "deliveries"));
  }
  if (n(v.job_cursor_rewinds)) more.push(`job cursor moved back ${plural(v.job_cursor_rewinds, "time", "times")}`);
  return `<td data-k="redis">writes ${v.write_node ? esc(v.write_node) : "(not connected)"}<br>${reads}` +
    (more.length ? `<div class="muted small">${more.join(", ")}</div>` : "") + "</td>";
}

// The same warnings as jobctl relays: a relay reading the primary although
// it has a replica, a replica lagging more than 1 MiB.
function redisWarningsHtml(relays) {
  const warnings = [];
  for (const r of (relays.redis || {}).replicas || []) {
    if (n(r.lag_bytes) > kReplicaLagWarningBytes) {
      warnings.push(`Redis replica ${esc(r.address)} lags ${fmtBytes(r.lag_bytes)} behind the primary: the relays reading it see jobs late.`);
    }
  }
  for (const r of relays.relays || []) {
    const v = r.redis;
    if (r.alive && v && v.replica && v.read_node && !v.read_from_replica) {
      warnings.push(`Relay ${esc(r.relay_id)} reads from the primary although replica ${esc(v.replica)} is configured: the replica is down, syncing or not a replica (see its log).`);
    }
  }
  return warnings.map(w => `<p class="banner-insecure">WARNING: ${w}</p>`).join("");
}

function fleetPage() {
  setActive("nav-fleet");
  const gen = generation;
  let query = hashParams().get("q") || "";
  view.innerHTML = `<h1>Relays</h1>
    <div id="relays-insecure"></div>
    <div id="relays-salt-down"></div>
    <div id="relays-redis"></div>
    <table id="relays"><thead><tr><th>relay</th><th>datacenter</th><th>bus</th><th>redis</th><th>alive</th><th>last heartbeat</th><th class="num">minions</th>
      <th class="num">jobs injected</th><th class="num">returns forwarded</th><th class="num">spool</th><th class="num">malformed</th>
      <th class="num">refused</th><th class="num">keys pending</th><th>security</th></tr></thead>
      <tbody id="relays-body"></tbody></table>
    <h1 class="section">Minions</h1>
    <div class="toolbar"><input id="mq" size="40" placeholder="target, e.g. web-00* or G@role:db" autocomplete="off">
      <select id="mtype"><option value="glob">glob</option><option value="compound">compound</option>
        <option value="pcre">pcre</option><option value="list">list</option><option value="grain">grain</option></select>
      <span id="minion-total" class="muted"></span></div>
    <table id="minions"><thead><tr><th>id</th><th>datacenter</th><th>alive</th><th>last seen</th><th>grains</th></tr></thead>
      <tbody id="minions-body"></tbody></table>`;
  $("mq").value = query;
  $("mtype").value = hashParams().get("type") || "glob";
  const research = debounce(() => {
    query = $("mq").value.trim();
    // Keep the search in the address without a hashchange (which remounts).
    const params = new URLSearchParams();
    if (query) { params.set("q", query); params.set("type", $("mtype").value); }
    history.replaceState(null, "", "#/fleet" + (params.toString() ? "?" + params : ""));
    schedule(0);
  }, 250);
  $("mq").addEventListener("input", research);
  $("mtype").addEventListener("change", research);
  return {
    interval: 3000,
    async refresh() {
      const relays = await api("/api/relays");
      if (gen !== generation) return false;
      setHtml("relays-body", (relays.relays || []).map(r => `<tr data-relay="${esc(r.relay_id)}"><td>${esc(r.relay_id)}</td><td>${esc(r.datacenter)}</td>
        ${relayBusCell(r)}${relayRedisCell(r, relays.redis)}<td>${r.alive ? "yes" : '<span class="warn">no</span>'}</td><td>${fmtAge(r.last_heartbeat_ms)}</td>
        <td class="num">${n(r.minions_connected)}</td><td class="num">${n(r.jobs_injected)}</td>
        <td class="num">${n(r.returns_forwarded)}</td><td class="num">${n(r.spool_depth)}</td>
        <td class="num">${n(r.malformed_dropped)}</td>${relaySecurityCells(r)}</tr>`).join("") ||
        '<tr><td colspan="14" class="muted">no relay has reported</td></tr>');
      const insecure = (relays.relays || []).filter(r => r.secure !== true);
      setHtml("relays-insecure", insecure.length === 0 ? "" :
        `<p class="banner-insecure">INSECURE: ${insecure.map(r => esc(r.relay_id)).join(", ")}
         ${insecure.length === 1 ? "runs" : "run"} without security (started with --insecure, or too old to say):
         dispatches are not verified and the bus is not encrypted.</p>`);
      const saltDown = (relays.relays || []).filter(r => r.bus_kind === "salt" &&
                                                        !(r.salt_master && r.salt_master.condition === "UP"));
      setHtml("relays-salt-down", saltDown.length === 0 ? "" :
        `<p class="banner-insecure">SALT MASTER NOT UP behind ${saltDown.map(r => esc(r.relay_id)).join(", ")}:
         dispatches to ${saltDown.length === 1 ? "its datacenter are" : "their datacenters are"} retried until their deadline, then their minions stay missing.</p>`);
      setHtml("relays-redis", redisTopologyHtml(relays.redis) + redisWarningsHtml(relays));
      const q = query;
      let minions;
      try {
        minions = await api("/api/minions?limit=200" +
          (q ? "&target=" + encodeURIComponent(q) + "&type=" + $("mtype").value : ""));
      } catch (e) {
        setHtml("minion-total", `<span class="error">${esc(e.message)}</span>`);
        return true;
      }
      if (gen !== generation) return false;
      if (q !== query) return true;
      const list = minions.minions || [];
      setHtml("minion-total", `${n(minions.total)} match` + (n(minions.total) > list.length ? ` (first ${list.length} shown)` : ""));
      setHtml("minions-body", list.map(m => `<tr><td>${esc(m.id)}</td><td>${esc(m.datacenter)}</td>
        <td>${m.alive ? "yes" : '<span class="warn">no</span>'}</td><td>${fmtAge(m.last_seen_ms)}</td>
        <td><code>${esc(Object.entries(m.grains || {}).sort().map(([k, v]) => k + "=" + v).join(", "))}</code></td></tr>`).join("") ||
        '<tr><td colspan="5" class="muted">no minion matches</td></tr>');
      return true;
    },
  };
}

// ---------------------------------------------------------------- audit

// The audit log (ListAudit), newest first, a page at a time. Every field
// is written with textContent: principals, reasons and targets come from
// callers.
function auditPage() {
  setActive("nav-audit");
  const gen = generation;
  const pageSize = 50;
  const paging = {token: "", previous: [], next: ""};
  view.innerHTML = `<h1>Audit</h1>
    <div class="toolbar"><input id="audit-principal" placeholder="principal" autocomplete="off">
      <input id="audit-jid" placeholder="jid" autocomplete="off"></div>
    <table id="audit"><thead><tr><th>seq</th><th>time</th><th>principal</th><th>peer</th><th>rpc</th>
      <th>jid</th><th>function</th><th>target</th><th class="num">expected</th><th>decision</th><th>reason</th><th>rule</th></tr></thead>
      <tbody id="audit-body"></tbody></table>
    <div class="pager"><button id="audit-prev" disabled>‹ newer</button><button id="audit-next" disabled>older ›</button></div>`;
  const filter = debounce(() => { paging.token = ""; paging.previous = []; schedule(0); }, 250);
  $("audit-principal").addEventListener("input", filter);
  $("audit-jid").addEventListener("input", filter);
  $("audit-next").onclick = () => {
    if (!paging.next) return;
    paging.previous.push(paging.token); paging.token = paging.next; schedule(0);
  };
  $("audit-prev").onclick = () => { paging.token = paging.previous.pop() || ""; schedule(0); };
  return {
    interval: 3000,
    async refresh() {
      const params = new URLSearchParams({limit: pageSize, page_token: paging.token,
        principal: $("audit-principal").value.trim(), jid: $("audit-jid").value.trim()});
      const data = await api("/api/audit?" + params);
      if (gen !== generation) return false;
      const rows = (data.entries || []).map(a => {
        const tr = el("tr");
        tr.dataset.seq = String(n(a.seq));
        for (const [text, cls] of [[n(a.seq), "num"], [fmtTime(a.at_ms)], [a.principal], [a.peer], [a.rpc],
                                   [a.jid], [a.function], [a.target], [n(a.expected), "num"],
                                   [a.decision, "decision-" + (a.decision || "")],
                                   [a.reason], [a.rule]]) {
          tr.append(el("td", text, cls));
        }
        return tr;
      });
      if (!rows.length) { const td = el("td", "no audit entries", "muted"); td.colSpan = 12; rows.push(el("tr")); rows[0].append(td); }
      $("audit-body").replaceChildren(...rows);
      paging.next = data.next_page_token || "";
      $("audit-prev").disabled = paging.previous.length === 0;
      $("audit-next").disabled = !paging.next;
      return true;
    },
  };
}

// ---------------------------------------------------------------- routing

function showError(e) {
  const el = $("error");
  el.textContent = e ? "jobd: " + e.message : "";
  el.hidden = !e;
}

function showUpdated(how) {
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString() + how;
}

function closeSource() {
  if (source) source.close();
  source = null;
}

// Runs the mounted page's refresh after `delay` ms, then keeps polling
// while it asks to.
function schedule(delay) {
  closeSource();
  clearTimeout(timer);
  const mine = ++tick;
  timer = setTimeout(async () => {
    let again = true;
    try {
      again = await page.refresh();
      showError(null);
      showUpdated("");
    } catch (e) {
      showError(e);  // keep the page and retry: jobd may be restarting
    }
    if (mine === tick && again) schedule(page.interval);
  }, delay);
}

// Follows the mounted page by its event stream when it has one and the
// browser can (each message is the page's data, shown in order; the
// stream ends after the final state), else by polling. Any stream error
// (refused, limit reached, jobd gone) falls back to polling.
function follow() {
  if (!page.events || typeof EventSource !== "function") return schedule(0);
  closeSource();
  clearTimeout(timer);
  tick++;  // no polling chain runs beside the stream
  const mine = page;
  const stream = new EventSource(page.events);
  source = stream;
  let shown = Promise.resolve();
  const fallBack = () => {
    if (source !== stream) return;  // closed on purpose, or replaced
    closeSource();
    if (page === mine) schedule(0);
  };
  stream.onmessage = (message) => {
    let data;
    try { data = JSON.parse(message.data); } catch (e) { return fallBack(); }
    // Closed before the server ends it: an EventSource would reconnect.
    if (data.state !== "RUNNING" && data.state !== "PENDING") {
      if (source === stream) source = null;
      stream.close();
    }
    shown = shown.then(async () => {
      if (page !== mine) return;
      try {
        await mine.show(data, true);
        showError(null);
        showUpdated(" (live)");
      } catch (e) {
        showError(e);
      }
    });
  };
  // `end`: jobd ended the stream early ({"error": ...}); onerror: the
  // connection failed or was refused.
  stream.addEventListener("end", fallBack);
  stream.onerror = fallBack;
}

function route() {
  generation++;
  const hash = location.hash || "#/jobs";
  if (hash.startsWith("#/job/")) page = jobPage(decodeURIComponent(hash.slice(6).split("?")[0]));
  else if (hash.startsWith("#/fleet")) page = fleetPage();
  else if (hash.startsWith("#/audit") && allowed("ListAudit")) page = auditPage();
  else page = jobsPage();
  follow();
}

// Who is logged in, how, and the security state, in the header.
function showSession() {
  $("who").textContent = session.principal + " (" + session.authenticated_by + ")";
  $("who").title = (session.groups || []).length ? "groups: " + session.groups.join(", ") : "";
  const security = $("security");
  security.textContent = session.insecure ? "INSECURE" : "HTTPS";
  security.className = "security" + (session.insecure ? " insecure" : "");
  security.title = session.insecure ? "jobd --insecure: no TLS, no login"
    : "TLS; session cookie HttpOnly, Secure, SameSite=Strict; CSRF token on every POST" +
      (session.client_certificates ? "; client certificates accepted" : "");
  $("insecure-banner").hidden = !session.insecure;
  $("nav-audit").hidden = !allowed("ListAudit");
  $("logout").hidden = session.insecure || session.authenticated_by === "certificate";
  $("logout").onclick = async () => {
    try { await post("/logout"); } catch (e) { /* the session may be gone already */ }
    location.assign("/login");
  };
}

async function start() {
  try {
    session = await api("/api/session");
  } catch (e) {
    showError(e);
    return;
  }
  showSession();
  window.addEventListener("hashchange", route);
  route();
}
start();
