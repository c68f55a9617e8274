// Shared helpers: the API client (session cookie + CSRF header on writes), DOM builders that only ever
// set text, number formatting and SVG charts.

export const session = { user: "", role: "", csrf: "" };
export const ROLE_RANK = { viewer: 1, operator: 2, admin: 3 };
export const can = (role) => (ROLE_RANK[session.role] || 0) >= ROLE_RANK[role];

export class AuthError extends Error {}
export class HTTPError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// api calls /api/v1 on this origin. Writes carry the CSRF token; a 401 sends the page back to sign-in.
export async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const method = (opts.method || "GET").toUpperCase();
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = session.csrf;
  let body = opts.body;
  if (body !== undefined && typeof body !== "string") {
    body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, { method, headers, body, cache: "no-store", credentials: "same-origin" });
  if (res.status === 401 && !opts.allow401) throw new AuthError("signed out");
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch (_) { /* empty or non-JSON */ }
  }
  if (!res.ok) {
    const msg = data && data.error ? data.error.message : res.status + " " + res.statusText;
    throw new HTTPError(res.status, msg);
  }
  return data;
}

// el builds an element; text is set with textContent, attributes with setAttribute.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = String(v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "hidden") e.hidden = !!v;
      else if (k === "checked") e.checked = !!v;
      else if (k === "value") e.value = v;
      else e.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }

export function fmt(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Number(n).toFixed(digits);
}

export function fmtHashrate(ths) {
  if (!ths) return "0 TH/s";
  if (ths >= 1e6) return fmt(ths / 1e6, 2) + " EH/s";
  if (ths >= 1e3) return fmt(ths / 1e3, 2) + " PH/s";
  return fmt(ths, 1) + " TH/s";
}

export function fmtPower(w) {
  if (!w) return "0 W";
  if (w >= 1e6) return fmt(w / 1e6, 2) + " MW";
  if (w >= 1e3) return fmt(w / 1e3, 1) + " kW";
  return fmt(w, 0) + " W";
}

export function fmtAge(s) {
  if (s === null || s === undefined) return "never";
  if (s < 60) return Math.round(s) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return Math.round(s / 86400) + "d ago";
}

export function fmtTime(t) {
  if (!t) return "–";
  const d = typeof t === "number" ? new Date(t) : new Date(t);
  return d.toLocaleString();
}

export function toast(msg, isError) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.className = isError ? "toast error" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

// stateBadge shows a miner's state; a stale miner shows stale with its last-seen age, never its old state.
export function stateBadge(m) {
  if (m.stale) {
    return el("span", { class: "state stale", title: "last state " + m.state + "; node stream down or no recent sample",
      text: "stale · " + fmtAge(m.last_seen_age_s) });
  }
  return el("span", { class: "state " + m.state, text: m.state });
}

// table builds a simple table from rows of objects; cols are [header, fn(row) → text or Node].
export function table(cols, rows, attrs) {
  const head = el("tr", null, ...cols.map(([h]) => el("th", { text: h })));
  const body = el("tbody");
  for (const r of rows) {
    body.append(el("tr", null, ...cols.map(([, f]) => {
      const v = f(r);
      return v instanceof Node ? el("td", null, v) : el("td", { text: v === undefined || v === null ? "" : v });
    })));
  }
  return el("table", attrs || null, el("thead", null, head), body);
}

// genericTable renders whatever list of objects an endpoint returns (pairs, conflicts), flattening nested
// values to JSON text.
export function genericTable(items, attrs) {
  if (!items || items.length === 0) return el("p", { class: "muted", text: "None." });
  const keys = [];
  for (const it of items) for (const k of Object.keys(it)) if (!keys.includes(k)) keys.push(k);
  return table(keys.map((k) => [k, (r) => {
    const v = r[k];
    if (v === null || v === undefined) return "";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }]), items, attrs);
}

// firstList picks the array out of a list reply ({pairs: [...]} or [...]).
export function firstList(body) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object") {
    for (const v of Object.values(body)) if (Array.isArray(v)) return v;
  }
  return [];
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

// lineChart draws points [{t, v}] (t in unix ms) as an SVG line with its range, min and max. The chart's
// data-points attribute says how many points it drew (tests read it).
export function lineChart(title, unit, points, opts = {}) {
  const W = opts.width || 560, H = opts.height || 160, P = { l: 52, r: 10, t: 22, b: 22 };
  const box = el("figure", { class: "chart", "data-metric": opts.metric || title });
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, "data-points": points.length });
  const cap = el("figcaption", null, el("strong", { text: title }), " ", el("span", { class: "muted", text: unit }));
  box.append(cap, s);
  s.append(svg("rect", { x: P.l, y: P.t, width: W - P.l - P.r, height: H - P.t - P.b, class: "plot" }));
  if (points.length === 0) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" });
    t.textContent = "no data yet";
    s.append(t);
    return box;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  let lo = Infinity, hi = -Infinity;
  for (const p of points) { lo = Math.min(lo, p.v); hi = Math.max(hi, p.v); }
  if (opts.zero !== false) lo = Math.min(lo, 0);
  if (hi === lo) hi = lo + 1;
  const x = (t) => P.l + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - P.l - P.r);
  const y = (v) => P.t + (1 - (v - lo) / (hi - lo)) * (H - P.t - P.b);
  const d = points.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join("");
  s.append(svg("path", { d, class: "line" }));
  if (points.length === 1) s.append(svg("circle", { cx: x(t0), cy: y(points[0].v), r: 3, class: "dot" }));
  const label = (txt, x0, y0, anchor) => {
    const e = svg("text", { x: x0, y: y0, "text-anchor": anchor || "start", class: "axis" });
    e.textContent = txt;
    s.append(e);
  };
  label(fmt(hi, hi < 10 ? 2 : 0), P.l - 4, P.t + 8, "end");
  label(fmt(lo, lo < 10 ? 2 : 0), P.l - 4, H - P.b, "end");
  label(new Date(t0).toLocaleTimeString(), P.l, H - 6);
  label(new Date(t1).toLocaleTimeString(), W - P.r, H - 6, "end");
  const last = points[points.length - 1];
  label("now " + fmt(last.v, last.v < 10 ? 2 : 1), W - P.r - 2, P.t - 6, "end");
  return box;
}

// routes lists the API's endpoints from its OpenAPI document, so pages offer only what this server serves
// (pairs, conflicts, curtailment, node revocation arrive with the server version).
let routesP = null;
export function hasRoute(method, path) {
  if (!routesP) {
    routesP = api("/api/v1/openapi.json").then((doc) => {
      const set = new Set();
      for (const [p, ops] of Object.entries(doc.paths || {})) for (const m of Object.keys(ops)) set.add(m.toUpperCase() + " " + p);
      return set;
    }).catch(() => new Set());
  }
  return routesP.then((s) => s.has(method.toUpperCase() + " " + path));
}

// newKey is a fresh idempotency key (crypto.getRandomValues works on plain HTTP too, randomUUID does not).
export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}
