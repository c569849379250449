// The console page. Every cell that comes from a CSV is inserted with textContent, never as
// HTML. The token lives in sessionStorage and goes out as Authorization: Bearer on every
// request; EventSource cannot set headers, so /api/events alone takes it as ?token=.
"use strict";

const STATES = ["pending", "dialing", "awaiting_outcome", "retry_wait", "done", "exhausted",
  "invalid", "suppressed", "expired", "cancelled"];
const COLORS = { answered: "#2e8b57", no_answer: "#c98a1b", busy: "#d9534f", failed: "#8b1e3f",
  voicemail: "#6f42c1", no_outcome: "#9aa5b8", pending: "#5b8def" };
const WAITING = ["pending", "retry_wait", "dialing", "awaiting_outcome"];
const NOT_CALLED = ["invalid", "suppressed"];
const CLOSED = ["exhausted", "expired", "cancelled"];

let token = null;
let selected = null;
let csvFile = null;
let cursor = null;
let campaigns = [];
let events = null;

const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function sum(counts, keys) { return keys.reduce((n, k) => n + (counts[k] || 0), 0); }
function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + "%"; }
function duration(s) {
  if (s === null || s === undefined) return "-";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(r).padStart(2, "0")}s` : `${r}s`;
}

async function api(path, opts = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token }, opts.headers || {});
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401) { logout("That token was refused."); throw new Error("unauthorized"); }
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

function logout(message) {
  sessionStorage.removeItem("vaani-token");
  token = null;
  if (events) events.close();
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function login(candidate) {
  token = candidate;
  try { await api("/api/campaigns"); } catch (e) { return; }
  sessionStorage.setItem("vaani-token", token);
  $("login").hidden = true;
  $("app").hidden = false;
  listen();
}

// ---------------------------------------------------------------- new campaign: preview, create
function formData() {
  const fd = new FormData($("create-form"));
  fd.append("csv", csvFile, csvFile.name);
  const dnc = $("dnc").files;
  if (dnc.length) fd.append("dnc", dnc[0], dnc[0].name);
  return fd;
}

async function preview(file) {
  csvFile = file;
  $("new-error").textContent = "";
  $("preview").hidden = true;
  try {
    const p = await (await api("/api/campaigns/preview", { method: "POST", body: formData() })).json();
    showPreview(p);
  } catch (e) { $("new-error").textContent = e.message; }
}

function showPreview(p) {
  $("preview-file").textContent = csvFile.name;
  const dl = $("preview-counts");
  dl.replaceChildren();
  const items = [["rows", p.rows], ["valid", p.valid], ["duplicates", p.duplicates],
    ["invalid", p.invalid], ["suppressed", p.suppressed], ["callable now", p.callable_now]];
  for (const [reason, n] of Object.entries(p.rejected_by_reason)) items.push(["rejected: " + reason, n]);
  for (const [k, v] of items) {
    const d = el("div"); d.append(el("dt", k), el("dd", v)); dl.append(d);
  }
  $("preview-window").textContent = p.later
    ? `${p.later} contact(s) wait for their window; the first opens ${p.next_window_at ? new Date(p.next_window_at).toLocaleString() : "never"}.`
    : "Every valid contact can be called now.";
  const table = $("preview-sample");
  const keys = [...new Set(p.sample.flatMap((s) => Object.keys(s.metadata)))];
  const head = el("tr");
  ["name", "phone_e164", ...keys].forEach((k) => head.append(el("th", k)));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...p.sample.map((s) => {
    const tr = el("tr");
    tr.append(el("td", s.name), el("td", s.phone_e164), ...keys.map((k) => el("td", s.metadata[k] ?? "")));
    return tr;
  }));
  $("preview").hidden = false;
}

async function create() {
  $("create").disabled = true;
  try {
    const c = await (await api("/api/campaigns", { method: "POST", body: formData() })).json();
    $("preview").hidden = true;
    $("new-error").textContent = "";
    await refreshList();
    select(c.id);
  } catch (e) { $("new-error").textContent = e.message; }
  finally { $("create").disabled = false; }
}

// ---------------------------------------------------------------- campaign list (live)
function progressBar(c) {
  const bar = el("div", null, "bar");
  const total = c.total || 1;
  const parts = { done: c.counts.done || 0, closed: sum(c.counts, CLOSED),
    not_called: sum(c.counts, NOT_CALLED), in_flight: sum(c.counts, ["dialing", "awaiting_outcome"]) };
  for (const [k, n] of Object.entries(parts)) {
    const s = el("span", null, "seg-" + k);
    s.style.width = (100 * n / total) + "%";
    s.title = `${k}: ${n}`;
    bar.append(s);
  }
  return bar;
}

function card(c) {
  const div = el("div", null, "card" + (c.id === selected ? " selected" : ""));
  div.dataset.id = c.id;
  const head = el("div", null, "card-head");
  const finished = c.total ? Math.round(100 * c.finished / c.total) : 100;
  head.append(el("strong", `#${c.id} ${c.name}`), el("span", c.status, "status"),
    el("span", `${finished}% finished`, "progress-pct"));
  const states = Object.entries(c.counts).filter(([, n]) => n).map(([s, n]) => `${s} ${n}`).join(" · ");
  const outcomes = Object.entries(c.outcomes).filter(([o, n]) => n && o !== "none").map(([o, n]) => `${o} ${n}`).join(" · ");
  div.append(head, progressBar(c),
    el("div", `States: ${states || "-"}`, "small"),
    el("div", `Outcomes: ${outcomes || "-"}`, "small"),
    el("div", `Pickup rate ${pct(c.pickup_rate)} · ETA ${c.waiting ? duration(c.eta_s) : "done"} · ${c.waiting} still to dial`, "small"));
  div.addEventListener("click", () => select(c.id));
  return div;
}

function renderList() {
  const box = $("campaigns");
  box.replaceChildren(...(campaigns.length ? campaigns.map(card) : [el("p", "No campaign yet: drop a CSV above.", "muted")]));
  const c = campaigns.find((x) => x.id === selected);
  if (c) renderStatus(c);
}

async function refreshList() {
  campaigns = await (await api("/api/campaigns")).json();
  renderList();
}

function listen() {
  if (events) events.close();
  events = new EventSource("/api/events?token=" + encodeURIComponent(token));
  events.addEventListener("campaigns", (ev) => {
    campaigns = JSON.parse(ev.data);
    $("live").textContent = "live · " + new Date().toLocaleTimeString();
    renderList();
    if (selected !== null) refreshChart();
  });
  events.onerror = () => { $("live").textContent = "reconnecting…"; };
}

// ---------------------------------------------------------------- one campaign
function renderStatus(c) {
  $("detail-title").textContent = `Campaign #${c.id}: ${c.name}`;
  $("detail-status").textContent = `Status: ${c.status}${c.status_reason ? " (" + c.status_reason + ")" : ""} · ${c.finished} of ${c.total} finished`;
  $("detail-status").dataset.status = c.status;
  const e = c.events;
  $("detail-events").textContent = e
    ? `CRM events: ${e.pending} waiting · ${e.delivered} delivered · ${e.dead} dead` +
      (e.last_dead_error ? ` (last dead: ${e.last_dead_error})` : "")
    : "";
}

async function select(id) {
  selected = id;
  $("detail").hidden = false;
  $("detail-error").textContent = "";
  renderList();
  const c = await (await api(`/api/campaigns/${id}`)).json();
  renderStatus(c);
  await Promise.all([loadContacts(true), refreshChart()]);
}

let contactsGeneration = 0;
async function loadContacts(reset) {
  if (reset) { cursor = 0; contactsGeneration += 1; }
  const generation = contactsGeneration;
  const params = new URLSearchParams({ cursor: String(cursor), limit: "50" });
  if ($("q").value) params.set("q", $("q").value);
  if ($("state").value) params.set("state", $("state").value);
  const page = await (await api(`/api/campaigns/${selected}/contacts?${params}`)).json();
  if (generation !== contactsGeneration) return;  // a newer search started meanwhile
  const body = $("contacts").tBodies[0];
  if (reset) body.replaceChildren();
  for (const c of page.contacts) {
    const tr = el("tr");
    tr.append(el("td", c.row_number), el("td", c.name), el("td", c.raw_phone), el("td", c.state),
      el("td", c.outcome || ""), el("td", c.attempts), el("td", c.reason || ""),
      el("td", Object.entries(c.metadata).map(([k, v]) => `${k}: ${v}`).join("\n"), "meta"));
    body.append(tr);
  }
  cursor = page.next_cursor;
  $("more").hidden = cursor === null;
}

async function action(name) {
  $("detail-error").textContent = "";
  try {
    await api(`/api/campaigns/${selected}/${name}`, { method: "POST" });
    await refreshList();
  } catch (e) { $("detail-error").textContent = e.message; }
}

async function download() {
  try {
    const res = await api(`/api/campaigns/${selected}/report.csv`);
    const url = URL.createObjectURL(await res.blob());
    const a = el("a");
    a.href = url;
    a.download = `campaign-${selected}-report.csv`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (e) { $("detail-error").textContent = e.message; }
}

// a stacked bar per minute: calls placed, by outcome
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

let chartBusy = false;
async function refreshChart() {
  if (chartBusy || selected === null) return;
  chartBusy = true;
  try {
    const { points } = await (await api(`/api/campaigns/${selected}/timeline?minutes=60`)).json();
    drawChart(points);
  } finally { chartBusy = false; }
}

function drawChart(points) {
  const W = 600, H = 180, pad = 24;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "calls per minute by outcome" });
  const max = Math.max(1, ...points.map((p) => p.placed));
  const slot = (W - 2 * pad) / Math.max(points.length, 10);
  root.append(svg("line", { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: "#9aa5b8" }));
  const top = svg("text", { x: 2, y: pad, "font-size": 10, fill: "#4a5468" }); top.textContent = String(max); root.append(top);
  points.forEach((p, i) => {
    let y = H - pad;
    for (const [outcome, n] of Object.entries(p.outcomes)) {
      const h = (H - 2 * pad) * n / max;
      y -= h;
      const r = svg("rect", { x: pad + i * slot + 1, y, width: Math.max(1, slot - 2), height: h, fill: COLORS[outcome] || "#555" });
      const t = svg("title", {}); t.textContent = `${new Date(p.minute).toLocaleTimeString()} ${outcome}: ${n}`; r.append(t);
      root.append(r);
    }
    if (i % Math.ceil(points.length / 6 || 1) === 0) {
      const label = svg("text", { x: pad + i * slot, y: H - 8, "font-size": 10, fill: "#4a5468" });
      label.textContent = new Date(p.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      root.append(label);
    }
  });
  if (!points.length) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#9aa5b8" }); t.textContent = "no call placed in the last hour"; root.append(t);
  }
  $("chart").replaceChildren(root);
  $("legend").replaceChildren(...Object.entries(COLORS).map(([k, c]) => {
    const s = el("span"); const i = el("i"); i.style.background = c; s.append(i, document.createTextNode(k)); return s;
  }));
}

// ---------------------------------------------------------------- wiring
function init() {
  for (const s of STATES) { const o = el("option", s); o.value = s; $("state").append(o); }
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) preview(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", () => { if ($("file").files.length) preview($("file").files[0]); });
  $("create").addEventListener("click", create);
  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => action(b.dataset.action)));
  $("download").addEventListener("click", download);
  $("more").addEventListener("click", () => loadContacts(false));
  let timer = null;
  $("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => loadContacts(true), 250); });
  $("state").addEventListener("change", () => loadContacts(true));
  $("contact-filter").addEventListener("submit", (e) => e.preventDefault());
  $("token-form").addEventListener("submit", (e) => { e.preventDefault(); login($("token-input").value.trim()); });

  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) history.replaceState(null, "", location.pathname);  // out of the address bar
  const saved = fromUrl || sessionStorage.getItem("vaani-token");
  if (saved) login(saved); else $("login").hidden = false;
}

document.addEventListener("DOMContentLoaded", init);
