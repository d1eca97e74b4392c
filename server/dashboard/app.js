// Muster dashboard: a small single-page app over jobd's JSON endpoints
// (/api/...). The endpoints call the same JobService code as gRPC, so the
// figures here are exactly those of GetJob / ListReturns / ListRelays.
"use strict";

const view = document.getElementById("view");
let timer = null;

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c =>
    ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function n(v) { return Number(v || 0); }
function fmtTime(ms) { return n(ms) ? new Date(n(ms)).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–"; }
function fmtAge(ms) {
  if (!n(ms)) return "–";
  const s = Math.max(0, (Date.now() - n(ms)) / 1000);
  if (s < 60) return s.toFixed(0) + " s ago";
  if (s < 3600) return (s / 60).toFixed(0) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}
async function api(path, options) {
  const r = await fetch(path, options);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function bar(c) {
  const e = Math.max(n(c.expected), 1);
  const ok = 100 * n(c.succeeded) / e, failed = 100 * n(c.failed) / e;
  return `<div class="bar" title="ok ${n(c.succeeded)} · failed ${n(c.failed)} · missing ${n(c.missing)}">` +
    `<span class="ok" style="width:${ok}%"></span><span class="failed" style="width:${failed}%"></span></div>`;
}
function counts(c) {
  const e = n(c.expected);
  const pct = e ? (100 * n(c.returned) / e).toFixed(1) : "100.0";
  return `expected <b data-k="expected">${e}</b> · returned <b data-k="returned">${n(c.returned)}</b> (${pct}%) · ` +
    `ok <b data-k="succeeded">${n(c.succeeded)}</b> · failed <b data-k="failed">${n(c.failed)}</b> · ` +
    `missing <b data-k="missing">${n(c.missing)}</b> · unexpected <b data-k="unexpected">${n(c.unexpected)}</b>`;
}
function stateBadge(s) { return `<span class="state ${esc(s)}">${esc(s)}</span>`; }
function setActive(id) {
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.id === id);
}
function stamp() { document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString(); }
function fail(e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; }

async function jobsPage() {
  setActive("nav-jobs");
  const state = new URLSearchParams(location.hash.split("?")[1] || "").get("state") || "";
  const data = await api("/api/jobs?limit=100" + (state ? "&state=" + state : ""));
  const rows = (data.jobs || []).map(j => `<tr>
      <td><a href="#/job/${esc(j.jid)}">${esc(j.jid)}</a></td>
      <td>${stateBadge(j.state)}</td>
      <td>${esc(j.function)} ${esc((j.args || []).join(" "))}</td>
      <td><code>${esc(j.target.expression)}</code> <span class="muted">${esc(j.target.type)}</span></td>
      <td>${fmtAge(j.created_at_ms)}</td>
      <td>${bar(j.completeness)}</td>
      <td class="num">${n(j.completeness.returned)}/${n(j.completeness.expected)}</td>
      <td class="num">${n(j.completeness.failed)}</td><td class="num">${n(j.completeness.missing)}</td></tr>`).join("");
  const states = ["", "RUNNING", "COMPLETE", "INCOMPLETE", "CANCELLED", "PENDING"];
  view.innerHTML = `<h1>Jobs</h1>
    <div class="toolbar">State <select id="state">${states.map(s =>
      `<option value="${s}" ${s === state ? "selected" : ""}>${s || "all"}</option>`).join("")}</select></div>
    <table id="jobs"><tr><th>jid</th><th>state</th><th>function</th><th>target</th><th>age</th>
    <th>completeness</th><th class="num">returned</th><th class="num">failed</th><th class="num">missing</th></tr>
    ${rows || '<tr><td colspan="9" class="muted">no jobs</td></tr>'}</table>`;
  document.getElementById("state").onchange = e =>
    location.hash = "#/jobs" + (e.target.value ? "?state=" + e.target.value : "");
  stamp();
}

const jobView = {jid: null, missingToken: "", missingTokens: [], query: ""};

async function jobPage(jid) {
  setActive("nav-jobs");
  if (jobView.jid !== jid) Object.assign(jobView, {jid, missingToken: "", missingTokens: [], query: ""});
  const job = await api("/api/jobs/" + encodeURIComponent(jid));
  const dcRows = (job.datacenters || []).map(d => `<tr data-dc="${esc(d.datacenter)}">
      <td>${esc(d.datacenter)}</td><td>${bar(d.completeness)}</td>
      <td class="num">${n(d.completeness.expected)}</td><td class="num">${n(d.completeness.returned)}</td>
      <td class="num">${n(d.completeness.succeeded)}</td><td class="num">${n(d.completeness.failed)}</td>
      <td class="num">${n(d.completeness.missing)}</td>
      <td>${d.delivered ? "delivered +" + (n(d.delivered_at_ms) - n(job.created_at_ms)) + " ms (" + esc(d.relay_id) + ")"
        : d.expired_at_relay ? '<span class="warn">expired at relay</span>' : '<span class="warn">not delivered</span>'}</td></tr>`).join("");
  const missing = await api(`/api/jobs/${encodeURIComponent(jid)}/missing?limit=100&page_token=${encodeURIComponent(jobView.missingToken)}` +
    (jobView.query ? "&q=" + encodeURIComponent(jobView.query) : ""));
  const failed = await api(`/api/jobs/${encodeURIComponent(jid)}/returns?filter=failed&limit=50`);
  const missRows = (missing.missing || []).map(m => `<tr><td>${esc(m.minion_id)}</td><td>${esc(m.datacenter)}</td></tr>`).join("");
  const failRows = (failed.returns || []).map(r => `<tr><td>${esc(r.minion_id)}</td><td>${esc(r.datacenter)}</td>
      <td class="num">${n(r.retcode)}</td><td><pre>${esc(r.stdout)}${r.stderr ? "\n" + esc(r.stderr) : ""}</pre></td></tr>`).join("");
  const running = job.state === "RUNNING" || job.state === "PENDING";
  view.innerHTML = `<h1>Job ${esc(job.jid)} ${stateBadge(job.state)}</h1>
    <div class="muted">${esc(job.function)} ${esc((job.args || []).join(" "))} on <code>${esc(job.target.expression)}</code>
      (${esc(job.target.type)}) · attempt ${n(job.attempt)} · submitted ${fmtTime(job.created_at_ms)}
      ${job.submitter ? "by " + esc(job.submitter) : ""}</div>
    <div class="summary" id="summary">${counts(job.completeness)}</div>
    ${bar(job.completeness)}
    <h2>Datacenters</h2>
    <table id="datacenters"><tr><th>datacenter</th><th>completeness</th><th class="num">expected</th><th class="num">returned</th>
      <th class="num">ok</th><th class="num">failed</th><th class="num">missing</th><th>delivery</th></tr>${dcRows}</table>
    <h2>Missing minions (${n(job.completeness.missing)})</h2>
    <div class="toolbar"><input id="q" placeholder="search missing ids" value="${esc(jobView.query)}">
      <button id="retry" ${n(job.completeness.missing) && job.state !== "CANCELLED" ? "" : "disabled"}>Retry missing</button>
      <span id="retry-result" class="muted"></span></div>
    <table id="missing"><tr><th>minion</th><th>datacenter</th></tr>${missRows || '<tr><td colspan="2" class="muted">none</td></tr>'}</table>
    <div class="pager"><button id="prev" ${jobView.missingTokens.length ? "" : "disabled"}>‹ prev</button>
      <button id="next" ${missing.next_page_token ? "" : "disabled"}>next ›</button></div>
    <h2>Failed minions (${n(job.completeness.failed)})</h2>
    <table id="failed"><tr><th>minion</th><th>datacenter</th><th class="num">retcode</th><th>output</th></tr>
      ${failRows || '<tr><td colspan="4" class="muted">none</td></tr>'}</table>`;
  document.getElementById("q").onchange = e => { jobView.query = e.target.value; jobView.missingToken = ""; jobView.missingTokens = []; route(); };
  document.getElementById("next").onclick = () => { jobView.missingTokens.push(jobView.missingToken); jobView.missingToken = missing.next_page_token; route(); };
  document.getElementById("prev").onclick = () => { jobView.missingToken = jobView.missingTokens.pop() || ""; route(); };
  document.getElementById("retry").onclick = async () => {
    try {
      const r = await api(`/api/jobs/${encodeURIComponent(jid)}/retry`, {method: "POST"});
      document.getElementById("retry-result").textContent = `attempt ${n(r.attempt)}: retrying ${n(r.retried)} minions`;
      setTimeout(route, 500);
    } catch (e) { document.getElementById("retry-result").textContent = e.message; }
  };
  stamp();
  return running;
}

async function fleetPage() {
  setActive("nav-fleet");
  const relays = await api("/api/relays");
  const q = new URLSearchParams(location.hash.split("?")[1] || "").get("q") || "";
  const minions = await api("/api/minions?limit=200" + (q ? "&target=" + encodeURIComponent(q) : ""));
  const relayRows = (relays.relays || []).map(r => `<tr><td>${esc(r.relay_id)}</td><td>${esc(r.datacenter)}</td>
      <td>${r.alive ? "yes" : '<span class="warn">no</span>'}</td><td>${fmtAge(r.last_heartbeat_ms)}</td>
      <td class="num">${n(r.minions_connected)}</td><td class="num">${n(r.jobs_injected)}</td>
      <td class="num">${n(r.returns_forwarded)}</td><td class="num">${n(r.spool_depth)}</td></tr>`).join("");
  const minionRows = (minions.minions || []).map(m => `<tr><td>${esc(m.id)}</td><td>${esc(m.datacenter)}</td>
      <td>${m.alive ? "yes" : '<span class="warn">no</span>'}</td><td>${fmtAge(m.last_seen_ms)}</td>
      <td><code>${esc(Object.entries(m.grains || {}).sort().map(([k, v]) => k + "=" + v).join(", "))}</code></td></tr>`).join("");
  view.innerHTML = `<h1>Relays</h1>
    <table id="relays"><tr><th>relay</th><th>datacenter</th><th>alive</th><th>last heartbeat</th><th class="num">minions</th>
      <th class="num">jobs injected</th><th class="num">returns forwarded</th><th class="num">spool</th></tr>
      ${relayRows || '<tr><td colspan="8" class="muted">no relay has reported</td></tr>'}</table>
    <h1 style="margin-top:24px">Minions</h1>
    <div class="toolbar"><input id="mq" size="40" placeholder="glob on id, e.g. web-00*" value="${esc(q)}">
      <span class="muted">${n(minions.total)} match</span></div>
    <table id="minions"><tr><th>id</th><th>datacenter</th><th>alive</th><th>last seen</th><th>grains</th></tr>${minionRows}</table>`;
  document.getElementById("mq").onchange = e => location.hash = "#/fleet?q=" + encodeURIComponent(e.target.value);
  stamp();
}

async function route() {
  clearTimeout(timer);
  const hash = location.hash || "#/jobs";
  let again = true;
  try {
    if (hash.startsWith("#/job/")) again = await jobPage(decodeURIComponent(hash.slice(6)));
    else if (hash.startsWith("#/fleet")) await fleetPage();
    else await jobsPage();
  } catch (e) { fail(e); }
  // Live updates: poll while a job runs (and the lists every few seconds).
  if (again !== false) timer = setTimeout(route, hash.startsWith("#/job/") ? 1000 : 3000);
}
window.addEventListener("hashchange", route);
route();
