// hashfleet operator page. Every value from the server is written with textContent or setAttribute, never
// parsed as HTML, so a miner-supplied string cannot inject markup.
"use strict";

const TOKEN_KEY = "hashfleet.token";
const POLL_MS = 2000;
const PAGE = 500;
const FINAL = new Set(["succeeded", "failed", "timeout"]);

const $ = (id) => document.getElementById(id);
const state = { offset: 0, total: 0, timer: null, inflight: false, commands: new Map(), lastCmd: new Map() };

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class AuthError extends Error {}

async function api(path, opts = {}) {
  const headers = Object.assign({ "Authorization": "Bearer " + token() }, opts.headers || {});
  const res = await fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
  if (res.status === 401) throw new AuthError("unauthorized");
  let body = null;
  try { body = await res.json(); } catch (_) { /* empty or non-JSON body */ }
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : res.status + " " + res.statusText;
    throw new Error(msg);
  }
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fmt(n, digits) {
  if (n === null || n === undefined || n === 0) return "–";
  return Number(n).toFixed(digits);
}

function ago(s) {
  if (s === null || s === undefined) return "never";
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function showLogin(message) {
  stopPolling();
  $("fleet").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("summary").textContent = "";
  $("login-error").textContent = message || "";
  $("token").focus();
}

function showFleet() {
  $("login").hidden = true;
  $("fleet").hidden = false;
  $("logout").hidden = false;
  startPolling();
}

function startPolling() {
  stopPolling();
  refresh();
  state.timer = setInterval(refresh, POLL_MS);
}

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

async function refresh() {
  if (state.inflight) return;
  state.inflight = true;
  try {
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset) });
    const q = $("search").value.trim();
    if (q) params.set("q", q);
    if ($("state").value) params.set("state", $("state").value);
    const [miners, nodes] = await Promise.all([api("/api/v1/miners?" + params), api("/api/v1/nodes")]);
    renderSummary(miners);
    renderNodes(nodes);
    renderRows(miners);
    await pollCommands();
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof AuthError) { sessionStorage.removeItem(TOKEN_KEY); showLogin("Token rejected, sign in again."); return; }
    $("status").textContent = "update failed: " + e.message;
  } finally {
    state.inflight = false;
  }
}

function renderSummary(m) {
  const box = $("summary");
  box.replaceChildren();
  const total = Object.entries(m.counts).filter(([k]) => k !== "stale").reduce((a, [, v]) => a + v, 0);
  const parts = [["miners", total], ["mining", m.counts.mining || 0], ["stale", m.counts.stale || 0],
    ["unreachable", m.counts.unreachable || 0]];
  parts.forEach(([label, n], i) => {
    if (i) box.append(" · ");
    box.append(el("b", n), " " + label);
  });
}

function renderNodes(n) {
  const box = $("nodes");
  box.replaceChildren();
  for (const node of n.nodes) {
    const chip = el("span", node.node + (node.connected ? "" : " (down)"), "chip " + (node.connected ? "up" : "down"));
    chip.setAttribute("title", "last heartbeat " + ago(node.last_heartbeat_age_s) + ", " + node.devices + " devices, " +
      node.queued_commands + " queued commands");
    box.append(chip);
  }
}

function renderRows(m) {
  state.total = m.total;
  const end = Math.min(m.offset + m.items.length, m.total);
  $("page-info").textContent = m.total ? (m.offset + 1) + "–" + end + " of " + m.total : "no miners";
  $("prev").disabled = m.offset === 0;
  $("next").disabled = end >= m.total;
  const frag = document.createDocumentFragment();
  for (const r of m.items) frag.append(row(r));
  $("rows").replaceChildren(frag);
}

function row(r) {
  const tr = el("tr");
  tr.dataset.miner = r.id;
  if (r.stale) tr.className = "stale";
  tr.append(el("td", r.id));
  const st = el("td");
  st.append(el("span", r.state, "state " + r.state));
  if (r.stale) st.append(el("span", "stale", "badge"));
  tr.append(st);
  tr.append(el("td", fmt(r.hashrate_ths, 1), "num"));
  tr.append(el("td", fmt(r.temp_max_c, 0), "num"));
  tr.append(el("td", fmt(r.chip_temp_max_c, 0), "num"));
  tr.append(el("td", fmt(r.power_w, 0), "num"));
  const pool = el("td", r.pool || "–", "pool");
  if (r.pool) pool.setAttribute("title", r.pool + (r.pool_user ? " (" + r.pool_user + ")" : ""));
  tr.append(pool);
  tr.append(el("td", r.node));
  tr.append(el("td", ago(r.last_seen_age_s)));
  const err = el("td", r.error || "", "err");
  if (r.error) err.setAttribute("title", r.error);
  tr.append(err);
  const actions = el("td", null, "actions");
  for (const [label, action] of [["Reboot", "reboot"], ["Stop", "stop"], ["Start", "start"]]) {
    const b = el("button", label);
    b.type = "button";
    b.dataset.action = action;
    b.addEventListener("click", () => issue(r.id, action, b));
    actions.append(b);
  }
  tr.append(actions);
  const last = state.lastCmd.get(r.id);
  tr.append(last ? el("td", last.text, "cmd " + last.status) : el("td", ""));
  return tr;
}

function randomKey() {
  const a = new Uint8Array(12);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function issue(minerId, action, button) {
  if ((action === "reboot" || action === "stop") && !confirm(action + " " + minerId + "?")) return;
  button.disabled = true;
  try {
    const res = await api("/api/v1/commands", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ miner_ids: [minerId], action, idempotency_key: randomKey() }),
    });
    state.commands.set(res.command_id, { miner: minerId, action });
    state.lastCmd.set(minerId, { status: "pending", text: action + ": pending" });
    note(action + " " + minerId + ": sent (" + res.command_id + ")");
    await pollCommands();
  } catch (e) {
    if (e instanceof AuthError) { showLogin("Token rejected, sign in again."); return; }
    note(action + " " + minerId + " refused: " + e.message);
  } finally {
    button.disabled = false;
  }
}

async function pollCommands() {
  for (const [id, c] of state.commands) {
    const cmd = await api("/api/v1/commands/" + encodeURIComponent(id));
    const r = cmd.results.find((x) => x.miner_id === c.miner) || {};
    const text = c.action + ": " + (r.status || cmd.status) + (r.message ? " – " + r.message : "");
    state.lastCmd.set(c.miner, { status: r.status || cmd.status, text });
    if (FINAL.has(cmd.status)) {
      state.commands.delete(id);
      note(c.action + " " + c.miner + ": " + cmd.status + (r.message ? " – " + r.message : ""));
    }
  }
}

function note(text) {
  const box = $("commands");
  box.prepend(el("div", new Date().toLocaleTimeString() + "  " + text));
  while (box.children.length > 5) box.lastChild.remove();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    try {
      await api("/api/v1/nodes");
      showFleet();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(e instanceof AuthError ? "Wrong token." : "Cannot reach the server: " + e.message);
    }
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(""); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); refresh(); });
  $("next").addEventListener("click", () => { if (state.offset + PAGE < state.total) { state.offset += PAGE; refresh(); } });
  let debounce = null;
  $("search").addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(() => { state.offset = 0; refresh(); }, 250); });
  $("state").addEventListener("change", () => { state.offset = 0; refresh(); });
  if (token()) showFleet(); else showLogin("");
});
