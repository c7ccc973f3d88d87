// meshgate dashboard: polls the admin API's dashboard data (relative URLs) every two seconds and
// draws the traffic graph and tables. Data is inserted as text only, never as markup.
"use strict";

const REFRESH_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 170, NODE_H = 44, COL_GAP = 350, ROW_GAP = 84, PAD = 24;
const POLICY_KEYS = ["auth", "authz", "rateLimit", "retry", "timeout", "fault", "mirror", "ipAccess", "cors",
  "maxBodyBytes", "streamIdleTimeout", "filters"];

let tick = 0;
let routesCache = null;

function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") n.className = v; else n.setAttribute(k, v);
  }
  for (const c of children) n.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return n;
}

function svg(tag, attrs, text) {
  const n = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  if (text != null) n.textContent = text;
  return n;
}

async function get(url) {
  const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (resp.status === 401) {
    window.location.href = "login";
    throw new Error("not logged in");
  }
  const text = await resp.text();
  let body;
  try { body = JSON.parse(text); } catch (e) { throw new Error(url + ": " + resp.status + " " + text.slice(0, 200)); }
  if (!resp.ok) throw new Error(url + ": " + (body.error || resp.status));
  return body;
}

function fmtNum(x, digits) {
  if (!isFinite(x)) return "-";
  return x >= 100 ? x.toFixed(0) : x.toFixed(digits);
}

function pct(x) { return (x * 100).toFixed(x >= 0.9995 || x === 0 ? 0 : 1) + "%"; }

function successClass(s) { return s >= 0.99 ? "ok" : s >= 0.95 ? "warn" : "bad"; }

function successColour(s) { return s >= 0.99 ? "#1a7f37" : s >= 0.95 ? "#d29922" : "#c62828"; }

function fillBody(table, rows) {
  const tb = table.tBodies[0];
  tb.replaceChildren(...rows);
}

// graphEdges folds the top rows into one edge per caller and callee: the gateway's edge rows and
// the sidecars' outbound rows.
function graphEdges(top) {
  const rows = (top.edges || []).filter(r => r.direction === "edge" || r.direction === "outbound");
  const services = new Set(rows.map(r => r.service).filter(Boolean));
  const alias = s => {
    if (!s) return "gateway";
    if (services.has(s)) return s;
    const head = s.split(".")[0];
    return services.has(head) ? head : s;
  };
  const byKey = new Map();
  for (const r of rows) {
    if (!r.service) continue;
    const from = r.direction === "edge" ? (r.source ? alias(r.source) : "gateway") : alias(r.source);
    const key = from + "\u0000" + r.service;
    let e = byKey.get(key);
    if (!e) { e = { from, to: r.service, requests: 0, rps: 0, failures: 0, p99: 0 }; byKey.set(key, e); }
    e.requests += r.requests;
    e.rps += r.rps;
    e.failures += r.requests * (1 - r.success);
    e.p99 = Math.max(e.p99, r.p99Ms);
  }
  const edges = [...byKey.values()].filter(e => e.requests > 0);
  for (const e of edges) e.success = e.requests ? 1 - e.failures / e.requests : 1;
  edges.sort((a, b) => (a.from + a.to).localeCompare(b.from + b.to));
  return edges;
}

// layout places nodes in columns by call depth (the longest chain of calls from a root), each
// column sorted by name: the same traffic always draws the same picture.
function layout(edges) {
  const names = new Set();
  for (const e of edges) { names.add(e.from); names.add(e.to); }
  const nodes = [...names].sort((a, b) => a === "gateway" ? -1 : b === "gateway" ? 1 : a.localeCompare(b));
  const depth = new Map(nodes.map(n => [n, 0]));
  for (let i = 0; i < nodes.length; i++) {
    let changed = false;
    for (const e of edges) {
      if (e.from === e.to) continue;
      const d = Math.min(depth.get(e.from) + 1, nodes.length - 1);
      if (d > depth.get(e.to)) { depth.set(e.to, d); changed = true; }
    }
    if (!changed) break;
  }
  const cols = new Map();
  for (const n of nodes) {
    const d = depth.get(n);
    if (!cols.has(d)) cols.set(d, []);
    cols.get(d).push(n);
  }
  const pos = new Map();
  let maxRows = 1, maxDepth = 0;
  for (const [d, col] of cols) {
    maxRows = Math.max(maxRows, col.length);
    maxDepth = Math.max(maxDepth, d);
    col.forEach((n, i) => pos.set(n, { x: PAD + d * COL_GAP, y: PAD + i * ROW_GAP, depth: d }));
  }
  return { nodes, pos, width: PAD * 2 + maxDepth * COL_GAP + NODE_W, height: PAD * 2 + (maxRows - 1) * ROW_GAP + NODE_H + 30 };
}

function healthOf(status, name) {
  for (const s of (status && status.services) || []) {
    const svcName = s.service.split("/").pop();
    if (svcName === name) return s;
  }
  return null;
}

function drawGraph(top, status) {
  const g = document.getElementById("graph");
  const edges = graphEdges(top);
  document.getElementById("graph-empty").hidden = edges.length > 0;
  const { nodes, pos, width, height } = layout(edges);
  g.setAttribute("width", Math.max(width, 320));
  g.setAttribute("height", Math.max(height, 120));
  g.setAttribute("viewBox", `0 0 ${Math.max(width, 320)} ${Math.max(height, 120)}`);
  const defs = svg("defs");
  for (const [id, colour] of [["ok", "#1a7f37"], ["warn", "#d29922"], ["bad", "#c62828"]]) {
    const m = svg("marker", { id: "arrow-" + id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    m.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }));
    defs.append(m);
  }
  const children = [defs];
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    const cls = successClass(e.success);
    const colour = successColour(e.success);
    const w = 1.5 + Math.min(6, Math.log10(1 + e.rps) * 2.5);
    let d, lx, ly;
    if (b.depth > a.depth) {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      lx = mx; ly = (y1 + y2) / 2 - 21;
    } else {
      // A call back to an earlier or the same column: an arc below both nodes.
      const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2 + (a === b ? 30 : 0), y2 = b.y + NODE_H;
      const dip = Math.max(y1, y2) + 40;
      d = `M${x1},${y1} C${x1},${dip} ${x2},${dip} ${x2},${y2}`;
      lx = (x1 + x2) / 2; ly = dip - 6;
    }
    const grp = svg("g", { class: "edge " + cls, "data-from": e.from, "data-to": e.to });
    grp.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": w.toFixed(1), "marker-end": `url(#arrow-${cls})` }));
    const label = svg("text", { class: "edge-label", x: lx, y: ly, "text-anchor": "middle" });
    label.append(svg("tspan", { x: lx, dy: 0 }, `${fmtNum(e.rps, 2)} req/s`));
    label.append(svg("tspan", { x: lx, dy: 13, fill: colour }, `${pct(e.success)} ok · p99 ${fmtNum(e.p99, 0)} ms`));
    grp.append(label);
    children.push(grp);
  }
  for (const n of nodes) {
    const p = pos.get(n);
    const grp = svg("g", { class: "node" + (n === "gateway" ? " gateway" : ""), "data-node": n, transform: `translate(${p.x},${p.y})` });
    grp.append(svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }));
    grp.append(svg("text", { x: 10, y: 18 }, n.length > 24 ? n.slice(0, 23) + "…" : n));
    const h = healthOf(status, n);
    if (h) grp.append(svg("text", { x: 10, y: 34, class: "muted" }, `${h.healthy} healthy` + (h.unhealthy ? `, ${h.unhealthy} unhealthy` : "")));
    children.push(grp);
  }
  g.replaceChildren(...children);
}

function drawConsumers(c) {
  const rows = (c.consumers || []).map(r => el("tr", { class: "consumer" },
    el("td", {}, r.consumer || "(anonymous)"), el("td", {}, r.requests), el("td", {}, r.failures),
    el("td", { class: successClass(1 - r.errorRate) }, pct(r.errorRate))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No edge requests in the window.")));
  fillBody(document.getElementById("consumers"), rows);
}

function until(t) {
  const ms = new Date(t).getTime() - Date.now();
  const days = ms / 86400000;
  const text = ms < 0 ? "expired" : days >= 2 ? `in ${days.toFixed(0)} days` : `in ${(ms / 3600000).toFixed(1)} hours`;
  return { text, cls: ms < 0 ? "bad" : days < 7 ? "warn" : "ok" };
}

function drawStatus(st) {
  const rows = [];
  const kv = (k, v, cls) => rows.push(el("tr", {}, el("th", {}, k), el("td", cls ? { class: cls } : {}, v)));
  if (st.rotation) {
    document.getElementById("where").textContent = `control plane ${st.replica || ""}`;
    kv("trust domain", st.trustDomain);
    kv("CA", `${st.rotation.kind} CA, ${st.rotation.roots} root(s), ${st.rotation.phase}`);
    if (st.rotation.signing_not_after) {
      const u = until(st.rotation.signing_not_after);
      kv("signing certificate expires", `${new Date(st.rotation.signing_not_after).toISOString()} (${u.text})`, u.cls);
    }
    if (st.rotation.signs_at) kv("new signer from", new Date(st.rotation.signs_at).toISOString());
    if (st.rotation.retires_at) kv("old roots retire", new Date(st.rotation.retires_at).toISOString());
    kv("config version", `${st.configVersion} (state ${st.stateVersion})`, st.configError ? "bad" : "");
    if (st.configError) kv("config error", st.configError, "bad");
    kv("workloads", st.workloads);
  } else {
    document.getElementById("where").textContent = "gateway";
    kv("mesh CA", "none: this gateway runs from a file");
    kv("config version", st.version);
    if (st.source) kv("config file", st.source);
    if (st.loadedAt) kv("loaded", new Date(st.loadedAt).toISOString());
    if (st.lastError) kv("last reload error", JSON.stringify(st.lastError), "bad");
  }
  fillBody(document.getElementById("certs"), rows);
  const proxies = (st.proxies || []).map(p => {
    let state = "in sync", cls = "ok";
    if (p.lastNack) { state = "NACK: " + p.lastNack.error; cls = "bad"; }
    else if (p.stale) { state = "stale"; cls = "bad"; }
    else if (p.versionAcked !== p.versionSent) { state = "pending"; cls = "warn"; }
    return el("tr", { class: "proxy" }, el("td", {}, p.id), el("td", {}, p.role),
      el("td", {}, `${p.namespace}/${p.service}`), el("td", { class: cls }, state));
  });
  if (!proxies.length) proxies.push(el("tr", {}, el("td", { colspan: 4, class: "muted" }, st.rotation ? "No proxy connected." : "none: not on a control plane")));
  fillBody(document.getElementById("proxies"), proxies);
}

function drawRefusals(lists) {
  const recs = lists.flat().sort((a, b) => new Date(b.time) - new Date(a.time)).slice(0, 50);
  const rows = recs.map(r => el("tr", { class: "refusal" },
    el("td", {}, new Date(r.time).toLocaleTimeString()), el("td", { class: r.status >= 500 ? "bad" : "warn" }, r.status),
    el("td", { class: "reason" }, r.reason || "-"), el("td", {}, r.proxy), el("td", {}, r.route || "-"),
    el("td", {}, r.service || "-"), el("td", {}, r.consumer || "-"), el("td", { class: "muted" }, r.requestId)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No refusals or failures recorded.")));
  fillBody(document.getElementById("refusals"), rows);
}

function compact(v) {
  if (v == null) return "";
  if (typeof v !== "object") return String(v);
  return JSON.stringify(v);
}

function drawRoutes(cfg) {
  const rows = (cfg.routes || []).map(r => {
    const match = [];
    if (r.service) match.push("calls to " + r.service);
    if (r.hosts) match.push(r.hosts.join(", "));
    for (const m of r.match || []) match.push(compact(m));
    const policies = el("td", {});
    for (const k of POLICY_KEYS) {
      if (r[k] == null) continue;
      let text = k;
      if (k === "auth" && r.auth.authenticators) text = "auth: " + r.auth.authenticators.join(", ");
      else if (k === "authz" && r.authz.rules) text = "authz: " + r.authz.rules.map(x => x.name || x.action).join(", ");
      else if (typeof r[k] !== "object") text = `${k}: ${r[k]}`;
      policies.append(el("span", { class: "policy", title: compact(r[k]) }, text));
    }
    if (!policies.childNodes.length) policies.append(el("span", { class: "muted" }, "none"));
    const backends = (r.backends || []).map(b => b.service + (b.weight != null ? ` (${b.weight})` : "")).join(", ");
    return el("tr", { class: "route" }, el("td", {}, r.name), el("td", {}, match.join("; ") || "every request"),
      el("td", {}, backends || "-"), policies);
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No routes.")));
  fillBody(document.getElementById("routes"), rows);
}

async function refresh() {
  const errors = [];
  const want = (p, f) => p.then(f, e => errors.push(e.message));
  const jobs = [
    want(Promise.all([get("api/top?window=1m"), get("api/status").catch(() => null)]), ([top, st]) => {
      document.getElementById("window").textContent = `(${top.window})`;
      drawGraph(top, st);
      if (st) drawStatus(st);
    }),
    want(get("api/consumers?window=5m"), drawConsumers),
    want(Promise.all([get("api/requests?status=4xx&n=50"), get("api/requests?status=5xx&n=50")]), drawRefusals),
  ];
  if (routesCache === null || tick % 5 === 0) {
    jobs.push(want(get("api/routes"), cfg => { routesCache = cfg; drawRoutes(cfg); }));
  }
  await Promise.all(jobs);
  tick++;
  const err = document.getElementById("error");
  err.hidden = errors.length === 0;
  err.textContent = errors.join("; ");
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  document.body.dataset.refreshes = String(tick);
}

async function loop() {
  try { await refresh(); } catch (e) { /* shown on the next round */ }
  setTimeout(loop, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", loop);
