"use strict";
const $ = (sel) => document.querySelector(sel);
const PAGE = 50;
let selected = null;       // id of the job shown in the detail panel
let nextCursor = null;
const jobs = new Map();    // id → the newest view of the job seen, from a listing or an event
const deleted = new Set(); // ids seen deleted: a listing older than that cannot bring them back

function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }
function say(text) { $("#message").textContent = text || ""; }

// A lab with LAB_API_TOKEN set is opened as /admin?token=...; the page keeps the token for this
// tab and sends it with every call (EventSource cannot send headers, so it goes in the query).
const token = new URLSearchParams(location.search).get("token") || sessionStorage.getItem("labToken") || "";
if (token) sessionStorage.setItem("labToken", token);
const auth = token ? {"Authorization": `Bearer ${token}`} : {};

async function api(method, path, body) {
  const headers = body ? {...auth, "Content-Type": "application/json"} : auth;
  const response = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${method} ${path}: HTTP ${response.status}`);
  return data;
}

// Each call made while one is in flight runs once more after it, never twice at once.
function coalesce(fn, gapMs) {
  let running = false, again = false;
  return async function run() {
    if (running) { again = true; return; }
    running = true;
    try { await fn(); } catch (e) { say(e.message); }
    await new Promise((r) => setTimeout(r, gapMs));
    running = false;
    if (again) { again = false; run(); }
  };
}

function filters() {
  const q = new URLSearchParams({limit: PAGE});
  if ($("#state-filter").value) q.set("state", $("#state-filter").value);
  if ($("#kind-filter").value) q.set("kind", $("#kind-filter").value);
  if ($("#search").value.trim()) q.set("q", $("#search").value.trim());
  return q;
}
function matches(job) {
  const s = $("#state-filter").value, k = $("#kind-filter").value;
  return (!s || job.state === s) && (!k || job.kind === k);
}

function row(job) {
  const tr = document.createElement("tr");
  tr.className = "job" + (job.id === selected ? " selected" : "");
  tr.dataset.jobId = job.id;
  tr.dataset.state = job.state;
  const canCancel = job.state === "queued" || (job.state === "active" && !job.cancelRequested);
  const canRetry = job.state === "failed" || job.state === "cancelled";
  const canDelete = job.state !== "active";
  const waits = job.state === "queued" && job.runAt && new Date(job.runAt) > new Date();
  const picked = document.querySelector(`input.job-pick[value="${CSS.escape(job.id)}"]`)?.checked;
  tr.innerHTML = `<td><input type="checkbox" class="job-pick" value="${esc(job.id)}" ${picked ? "checked" : ""}
      aria-label="select job ${esc(job.id)}"></td><td class="mono">${esc(job.id)}</td><td>${esc(job.kind)}</td>
    <td><span class="badge state ${esc(job.state)}">${esc(job.state)}</span>${job.priority && job.priority !== "normal"
      ? `<span class="priority ${esc(job.priority)}">${esc(job.priority)}</span>` : ""}</td>
    <td><span class="bar"><i></i></span><span class="progress-text">${job.progress}%</span></td>
    <td class="step">${waits ? `<span class="delayed">waits until ${esc(time(job.runAt))}</span>
      <button class="run-now">Run now</button>` : esc(job.step || (job.error ? "✗ " + job.error : ""))}</td>
    <td class="num" title="created ${esc(time(job.createdAt))}">${job.attempt}/${job.maxAttempt}</td>
    <td class="actions"><button class="cancel" ${canCancel ? "" : "disabled"}>Cancel</button>
        <button class="retry" ${canRetry ? "" : "disabled"}>Retry</button>
        <button class="delete" ${canDelete ? "" : "disabled"}>Delete</button></td>`;
  // Set through the DOM: the page's CSP refuses inline style attributes.
  tr.querySelector(".bar i").style.width = `${Math.max(0, Math.min(100, Number(job.progress) || 0))}%`;
  tr.querySelector(".cancel").onclick = (e) => act(e, "POST", `/jobs/${job.id}/cancel`);
  tr.querySelector(".retry").onclick = (e) => act(e, "POST", `/jobs/${job.id}/retry`);
  tr.querySelector(".delete").onclick = (e) => act(e, "DELETE", `/jobs/${job.id}`);
  if (waits) tr.querySelector(".run-now").onclick = (e) => act(e, "POST", `/jobs/${job.id}/run-now`);
  tr.querySelector(".job-pick").onclick = (e) => { e.stopPropagation(); bulkChanged(); };
  tr.onclick = () => select(job.id);
  return tr;
}

// A listing answered after an event can still be older than it: of two views of a job, keep the
// one with the higher `version` (every change of the record bumps it).
function newest(job) {
  const known = jobs.get(job.id);
  const fresh = known && (known.version || 0) > (job.version || 0) ? known : job;
  jobs.set(job.id, fresh);
  return fresh;
}
function listed(list) { return list.filter((j) => !deleted.has(j.id)).map(newest).filter(matches); }

function draw(job) {
  job = newest(job);
  const old = document.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (old && !matches(job)) { old.remove(); return; }
  if (old) old.replaceWith(row(job));
  else if (matches(job) && !$("#search").value.trim()) $("#jobs").prepend(row(job));
}

const loadJobs = coalesce(async () => {
  const data = await api("GET", "/jobs?" + filters());
  const shown = listed(data.jobs);
  $("#jobs").replaceChildren(...shown.map(row));
  nextCursor = data.nextCursor;
  $("#more").hidden = !nextCursor;
  $("#shown").textContent = `${shown.length}${nextCursor ? "+" : ""} shown`;
}, 100);

async function more() {
  const q = filters(); q.set("cursor", nextCursor);
  const data = await api("GET", "/jobs?" + q);
  listed(data.jobs).forEach((j) => $("#jobs").append(row(j)));
  nextCursor = data.nextCursor;
  $("#more").hidden = !nextCursor;
}

// A duration in ms as people read it: 850 ms, 2.4 s, 3 min.
const seconds = (ms) => ms === null || ms === undefined ? "–"
  : ms < 1000 ? `${Math.round(ms)} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`;

const loadOverview = coalesce(async () => {
  const data = await api("GET", "/admin/overview");
  for (const [state, n] of Object.entries(data.counts)) {
    const cell = document.querySelector(`.count[data-state="${state}"] b`);
    if (cell) cell.textContent = n;
  }
  $("#queues").innerHTML = data.queues.map((q) =>
    `<tr data-queue="${esc(q.name)}"><td class="mono">${esc(q.name)}${q.paused ? ' <span class="paused">paused</span>' : ""}</td>
     <td class="num">${q.ready}</td><td class="num">${q.consumers}</td>
     <td class="num head-age">${seconds(q.headAgeMs)}</td>
     <td>${q.pausable ? `<button class="queue-toggle" data-action="${q.paused ? "resume" : "pause"}">${q.paused ? "Resume" : "Pause"}</button>
       <button class="queue-purge">Purge</button>` : ""}</td></tr>`).join("");
  $("#queues-error").textContent = data.queuesError || "";
  const run = data.run;
  const active = run.runId && run.running;
  // Every run state: running (releasing or paused), completed, stopped, breached (an objective).
  const objectives = (run.slo || []).map((o) => `${o.text || o.objective.metric}: ${o.state}`).join(" · ");
  // A run of another framework (a target) says which, and its delivery so far.
  const target = run.target && run.target !== "lab"
    ? ` · on ${run.target}${run.submits ? `, submits ${run.submits.ok} ok / ${run.submits.failed} failed / ${run.submits.indeterminate} indeterminate` : ""}${run.executedAgain ? `, ${run.executedAgain} run again` : ""}`
    : "";
  $("#run-state").textContent = (active
    ? `run ${run.runId}: ${run.paused ? "release paused" : `releasing, ${run.shapeText || ""}`}`
    : run.runId ? `last run ${run.runId}: ${run.state}` : "no run yet") + target + (objectives ? ` · ${objectives}` : "");
  $("#run-state").dataset.state = run.state || "";
  // Where the run's jobs spent their time so far (GET /runs/{id}/latency has the windows).
  const lat = run.latency || {};
  $("#run-latency").textContent = run.runId && lat.endToEnd && lat.endToEnd.count
    ? ["queueWait", "service", "endToEnd"].map((m) =>
        `${m} p50 ${seconds(lat[m].p50Ms)}, p99 ${seconds(lat[m].p99Ms)}`).join(" · ") +
      ` (${lat.endToEnd.count} jobs)` + (active && run.headAgeMs !== null ? ` · head age ${seconds(run.headAgeMs)}` : "")
    : "";
  $("#run-pause").hidden = !active || run.paused;
  $("#run-resume").hidden = !active || !run.paused;
  $("#workers").innerHTML = data.workers.map((w) =>
    `<tr><td class="mono">${esc(w.id)}</td><td class="num">${w.heartbeatAgeSeconds.toFixed(1)} s</td>
     <td class="num">${w.running}</td><td class="mono">${w.jobs.map(esc).join("<br>")}</td>
     <td class="num">${w.processed}</td></tr>`).join("") ||
    `<tr><td colspan="5" class="muted">no live workers</td></tr>`;
}, 500);

const loadDetail = coalesce(async () => {
  if (!selected) return;
  let job;
  try { job = await api("GET", `/jobs/${selected}`); }
  catch (e) { $("#detail-fields").innerHTML = `<dt>job</dt><dd>${esc(e.message)}</dd>`; $("#log").innerHTML = ""; return; }
  const fields = {id: job.id, kind: job.kind, state: job.state, progress: `${job.progress}%`,
    step: job.step, attempt: `${job.attempt} of ${job.maxAttempt}`, priority: job.priority, worker: job.worker,
    created: job.createdAt, started: job.startedAt, finished: job.finishedAt, error: job.error,
    payload: JSON.stringify(job.payload), result: job.result ? JSON.stringify(job.result) : null};
  $("#detail-fields").innerHTML = Object.entries(fields).filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `<dt>${k}</dt><dd class="${k === "state" ? "detail-state" : ""}">${esc(v)}</dd>`).join("");
  $("#log").innerHTML = (job.log || []).map((l) =>
    `<li><span class="at">${new Date(l.at).toLocaleTimeString()}</span>${esc(l.message)}</li>`).join("");
  $("#log").scrollTop = $("#log").scrollHeight;
}, 150);

function select(id) {
  selected = id;
  document.querySelectorAll("tr.job").forEach((tr) => tr.classList.toggle("selected", tr.dataset.jobId === id));
  $("#detail-empty").hidden = true;
  $("#detail-body").hidden = false;
  loadDetail();
}

async function act(event, method, path) {
  event.stopPropagation();
  event.target.disabled = true;
  try { const job = await api(method, path); say(""); if (job && job.id) draw(job); else loadJobs(); }
  catch (e) { say(e.message); }
  loadOverview();
  if (selected) loadDetail();
}

$("#add").onsubmit = async (event) => {
  event.preventDefault();
  const form = event.target;
  let payload;
  try { payload = JSON.parse(form.payload.value || "{}"); }
  catch (e) { say(`payload is not JSON: ${e.message}`); return; }
  const body = {kind: form.kind.value, payload, priority: form.priority.value};
  if (form.attempts.value) body.attempts = Number(form.attempts.value);
  try { const job = await api("POST", "/jobs", body); say(""); draw(job); select(job.id); }
  catch (e) { say(e.message); }
  loadOverview();
};
$("#state-filter").onchange = loadJobs;
$("#kind-filter").onchange = loadJobs;
$("#search").onkeydown = (e) => { if (e.key === "Enter") { e.preventDefault(); loadJobs(); } };
$("#search").onsearch = loadJobs;  // the field's own clear button
$("#more").onclick = () => more().catch((e) => say(e.message));
document.querySelectorAll(".count[data-state]").forEach((el) => {
  if (el.dataset.state === "deadLettered") return;
  el.onclick = () => { $("#state-filter").value = el.dataset.state; loadJobs(); };
});

// Live: every job event redraws its row (and the detail when it is the selected job).
function follow() {
  const source = new EventSource("/events" + (token ? `?token=${encodeURIComponent(token)}` : ""));
  source.onopen = () => { $("#live").textContent = "live"; $("#live").className = "on"; };
  source.onerror = () => { $("#live").textContent = "reconnecting…"; $("#live").className = ""; };
  source.addEventListener("job", (message) => {
    const e = JSON.parse(message.data);
    const known = jobs.get(e.jobId);
    if (e.state === "deleted") {
      jobs.delete(e.jobId);
      deleted.add(e.jobId);
      const old = document.querySelector(`tr[data-job-id="${CSS.escape(e.jobId)}"]`);
      if (old) old.remove();
    } else if (known) {
      draw({...known, state: e.state, progress: e.progress, step: e.step, attempt: e.attempt,
            error: e.error, worker: e.worker, version: e.version,
            cancelRequested: e.state === "active" && (known.cancelRequested || /cancel requested/.test(e.message || ""))});
    } else {
      loadJobs();
    }
    if (e.jobId === selected) loadDetail();
    loadOverview();
  });
}

// The last hour from GET /history: kept in Redis, so it is all there after any restart.
async function loadHistory() {
  const h = await api("GET", "/history?seconds=3600");
  const points = h.points, step = h.bucketSeconds;
  const fields = ["released", "processed", "failed"];
  const top = Math.max(1, ...points.flatMap((p) => fields.map((f) => p[f] / step)));
  const x = (i) => (points.length > 1 ? (i / (points.length - 1)) * 600 : 0);
  const y = (v) => 136 - (v / step / top) * 128;
  const grid = [0, 0.5, 1].map((share) =>
    `<line class="grid" x1="0" x2="600" y1="${y(share * top * step)}" y2="${y(share * top * step)}"/>`);
  $("#history-chart").innerHTML = grid.join("") + fields.map((f) =>
    `<polyline class="${f}" data-field="${f}" stroke="currentColor" points="${
      points.map((p, i) => `${x(i).toFixed(1)},${y(p[f]).toFixed(1)}`).join(" ")}"/>`).join("");
  // The axes: jobs per second (peak, half, 0) and the time of day of five buckets.
  const rate = (v) => (v >= 100 ? Math.round(v).toLocaleString() : +v.toPrecision(2)) + "/s";
  $("#history-y").innerHTML = [top, top / 2, 0].map((v) => `<span>${rate(v)}</span>`).join("");
  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const ticks = points.length ? [0, 0.25, 0.5, 0.75, 1].map((f) => points[Math.round(f * (points.length - 1))].t) : [];
  $("#history-x").innerHTML = ticks.map((t) => `<span data-t="${t}">${clock(t)}</span>`).join("");
  const total = (f) => points.reduce((sum, p) => sum + p[f], 0);
  $("#history-summary").textContent =
    `${total("processed").toLocaleString()} processed, ${total("failed").toLocaleString()} failed` +
    ` · peak ${Math.round(top).toLocaleString()}/s`;
}
const loadHistorySoon = coalesce(loadHistory, 1000);

// Dead letters: GET /dead-letters lists them (none taken); replay and purge say what they did.
function deadSay(text) { $("#dead-message").textContent = text || ""; }
function deadChecked() { return [...document.querySelectorAll("input.dead-pick:checked")].map((c) => c.value); }
async function loadDead() {
  const page = await api("GET", "/dead-letters?limit=100");
  $("#dead-total").textContent = `(${page.total.toLocaleString()})`;
  $("#dead-letters").innerHTML = page.letters.map((d) => `<tr class="dead-letter" data-letter-id="${esc(d.id)}">
    <td><input type="checkbox" class="dead-pick" value="${esc(d.id)}" aria-label="select letter ${esc(d.id)}"></td>
    <td>${esc(d.reason)}</td><td>${esc(d.queue)}</td><td class="num">${d.attempts}</td>
    <td>${time(d.firstFailedAt)}</td><td>${time(d.lastFailedAt)}</td>
    <td>${esc(d.jobId || "")}<div class="muted">${esc(d.jobId ? "" : d.preview.slice(0, 60))}</div></td>
    <td>${esc((d.error || "").slice(0, 120))}</td></tr>`).join("") ||
    `<tr><td colspan="8" class="muted">no dead letters</td></tr>`;
  $("#dead-all").checked = false;
  $("#dead-replay").disabled = true;
}
async function replayDead(body) {
  const r = await api("POST", "/dead-letters/replay", body);
  const kept = Object.entries(r.kept).map(([why, n]) => `${n} ${why}`).join(", ");
  deadSay(`replayed ${r.replayed} of ${r.matched}` + (kept ? `; kept ${kept}` : ""));
  await loadDead(); loadOverview();
}
$("#dead-letters").onchange = () => { $("#dead-replay").disabled = deadChecked().length === 0; };
$("#dead-all").onchange = (e) => {
  document.querySelectorAll("input.dead-pick").forEach((c) => { c.checked = e.target.checked; });
  $("#dead-replay").disabled = deadChecked().length === 0;
};
$("#dead-replay").onclick = () => replayDead({ids: deadChecked()}).catch((e) => deadSay(e.message));
$("#dead-replay-all").onclick = () => {
  if (confirm("Replay every dead letter?")) replayDead({all: true}).catch((e) => deadSay(e.message));
};
$("#dead-purge").onclick = async () => {
  const total = $("#dead-total").textContent;
  if (!confirm(`Delete every dead letter ${total} for good?`)) return;
  try { const r = await api("DELETE", "/dead-letters"); deadSay(`purged ${r.purged}`); await loadDead(); loadOverview(); }
  catch (e) { deadSay(e.message); }
};
// Pause, resume and purge: queues for the workers, the run's release for the scheduler.
$("#queues").onclick = async (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  const name = button.closest("tr").dataset.queue;
  const path = `/queues/${encodeURIComponent(name)}/`;
  try {
    if (button.classList.contains("queue-purge")) {
      if (!confirm(`Delete every message waiting in ${name}?`)) return;
      const r = await api("POST", path + "purge");
      say(`purged ${r.purged} from ${name}`);
    } else {
      await api("POST", path + button.dataset.action);
      say("");
    }
  } catch (e) { say(e.message); }
  loadOverview();
};
$("#run-pause").onclick = () => api("POST", "/run/pause").then(loadOverview, (e) => say(e.message));
$("#run-resume").onclick = () => api("POST", "/run/resume").then(loadOverview, (e) => say(e.message));
// Bulk: count first (a dry run), then apply, call after call until nothing is left.
function bulkBody(dryRun) {
  const body = {action: $("#bulk-action").value, dryRun, filter: {}};
  if ($("#bulk-scope").value === "selected") {
    body.filter.ids = [...document.querySelectorAll("input.job-pick:checked")].map((c) => c.value);
  } else {
    if ($("#state-filter").value) body.filter.state = $("#state-filter").value;
    if ($("#kind-filter").value) body.filter.kind = $("#kind-filter").value;
    if ($("#search").value.trim()) body.filter.q = $("#search").value.trim();
  }
  return body;
}
function bulkChanged() { $("#bulk-apply").disabled = true; $("#bulk-message").textContent = ""; }
$("#bulk-action").onchange = bulkChanged;
$("#bulk-scope").onchange = bulkChanged;
$("#jobs-all").onchange = (e) => {
  document.querySelectorAll("input.job-pick").forEach((c) => { c.checked = e.target.checked; });
  bulkChanged();
};
$("#bulk-count").onclick = async () => {
  const body = bulkBody(true);
  if (body.filter.ids && !body.filter.ids.length) { $("#bulk-message").textContent = "select jobs first"; return; }
  try {
    const r = await api("POST", "/jobs/bulk", body);
    $("#bulk-message").textContent = `${r.matched} matched; ${body.action} would change ${r.eligible}`;
    $("#bulk-apply").disabled = r.eligible === 0;
  } catch (e) { $("#bulk-message").textContent = e.message; }
};
$("#bulk-apply").onclick = async () => {
  const body = bulkBody(false);
  if (!Object.keys(body.filter).length) {
    if (!confirm(`No filter is set: ${body.action} every job?`)) return;
    body.all = true;
  }
  $("#bulk-apply").disabled = true;
  let changed = 0;
  try {
    for (;;) {
      const r = await api("POST", "/jobs/bulk", body);
      changed += r.changed;
      $("#bulk-message").textContent = `${bulkBody(false).action}: ${changed} changed, ${r.remaining} left`;
      if (!r.remaining || !r.changed) break;
    }
  } catch (e) { $("#bulk-message").textContent = e.message; }
  document.querySelectorAll("input.job-pick:checked").forEach((c) => { c.checked = false; });
  $("#jobs-all").checked = false;
  loadJobs(); loadOverview();
};
$("#dead-refresh").onclick = () => loadDead().catch((e) => deadSay(e.message));

loadJobs(); loadOverview(); follow(); loadHistorySoon(); loadDead().catch((e) => deadSay(e.message));
setInterval(loadHistorySoon, 10000);
setInterval(loadOverview, 3000);   // heartbeat ages and queue depths move without events
