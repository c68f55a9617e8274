// Miner detail: live values, charts of hashrate, temperature, power and fans, pools, errors, command
// history (the node's gate audit for this miner) and, for operators, actions.
import { api, el, clear, fmt, fmtAge, fmtTime, stateBadge, lineChart, table, can, toast, newKey, hasRoute } from "./lib.js";

const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3 };
const METRICS = [["hashrate", "Hashrate", "TH/s"], ["temp", "Hottest board", "°C"], ["power", "Power", "W"], ["fans", "Slowest fan", "RPM"]];

export async function minerPage(root, id, onError) {
  let range = "1h", stopped = false;
  const live = el("div", { class: "cards", id: "live" });
  const charts = el("div", { class: "charts", id: "miner-charts" });
  const pools = el("div", { id: "pools" });
  const errors = el("div", { id: "errors" });
  const history = el("div", { id: "command-history" });
  const actions = el("div", { class: "toolbar needs-operator", id: "actions" });
  const picker = el("div", { class: "toolbar" }, "Range: ", ...Object.keys(RANGES).map((r) =>
    el("button", { type: "button", "data-range": r, class: r === range ? "on" : "", onclick: () => {
      range = r;
      for (const b of picker.querySelectorAll("button")) b.classList.toggle("on", b.dataset.range === r);
      loadCharts().catch(onError);
    } }, r)));
  const title = el("h2", null, el("a", { href: "#/miners", text: "Miners" }), " / ", el("span", { id: "miner-id", text: id }));
  root.append(title, live, actions, picker, charts, el("h3", { text: "Pools" }), pools, el("h3", { text: "Errors" }), errors,
    el("h3", { text: "Command history" }), history);

  let node = "";
  async function loadLive() {
    const m = await api("/api/v1/miners/" + encodeURIComponent(id));
    node = m.node;
    clear(live).append(
      card("State", stateBadge(m)),
      card("Hashrate", m.stale ? "–" : fmt(m.hashrate_ths, 2) + " TH/s"),
      card("Power", m.stale ? "–" : fmt(m.power_w, 0) + " W"),
      card("Efficiency", fmt(m.efficiency_jth, 1) + " J/TH"),
      card("Hottest board", fmt(m.temp_max_c, 1) + " °C"),
      card("Fans", (m.fans_rpm || []).join(" / ") || "–"),
      card("Model", m.model || "–"), card("Firmware", m.firmware || "–"), card("Node", m.node),
      card("Address", m.address || "–"), card("Last seen", fmtAge(m.last_seen_age_s)),
      card("Uptime", m.uptime_s ? Math.round(m.uptime_s / 60) + " min" : "–"));
    clear(pools).append(table([["#", (p) => p.priority], ["URL", (p) => p.url], ["User", (p) => p.user], ["Status", (p) => p.status],
      ["Active", (p) => (p.active ? "yes" : "")], ["Accepted", (p) => p.accepted], ["Rejected", (p) => p.rejected]], m.pools || []));
    const errs = (m.errors || []).slice();
    if (m.error && !errs.includes(m.error)) errs.unshift(m.error);
    clear(errors).append(errs.length ? el("ul", null, ...errs.map((e) => el("li", { class: "error", text: e }))) : el("p", { class: "muted", text: "None." }));
  }

  async function loadCharts() {
    const to = Date.now(), from = to - RANGES[range];
    const series = await Promise.all(METRICS.map(([m]) =>
      api(`/api/v1/series?scope=miner&id=${encodeURIComponent(id)}&metric=${m}&from=${from}&to=${to}`)));
    clear(charts).append(...series.map((s, i) => lineChart(METRICS[i][1], s.unit + " · " + s.resolution, s.points, { metric: METRICS[i][0], zero: METRICS[i][0] !== "temp" })));
  }

  async function loadHistory() {
    if (!node) return;
    let audit = [];
    try {
      const a = await api((await hasRoute("GET", "/api/v1/audit")) ? "/api/v1/audit?limit=2000" : `/api/v1/nodes/${encodeURIComponent(node)}/audit?limit=1000`);
      audit = (a.records || []).filter((r) => (r.miner_ids || []).includes(id));
    } catch (e) { if (e.status !== 503) throw e; }
    clear(history).append(table([["At", (r) => fmtTime(r.at)], ["Command", (r) => r.command_id], ["Actor", (r) => r.actor],
      ["Seq", (r) => r.seq], ["Result", (r) => r.code], ["Message", (r) => r.message]], audit.slice(0, 100)));
  }

  function renderActions() {
    if (!can("operator")) { actions.hidden = true; return; }
    clear(actions).append(...["reboot", "stop", "start", "blink"].map((a) =>
      el("button", { type: "button", "data-action": a, text: a, onclick: async () => {
        if (!confirm(`${a} ${id}?`)) return;
        try {
          const r = await api("/api/v1/commands", { method: "POST", body: { action: a, miner_ids: [id], idempotency_key: newKey() } });
          toast(`${a} ${id}: issued (${r.command_id})`);
        } catch (e) { onError(e); }
      } })));
  }

  renderActions();
  await loadLive();
  await Promise.all([loadCharts(), loadHistory().catch(onError)]);
  let t1 = null, t2 = null;
  const liveTick = () => loadLive().catch(onError).finally(() => { if (!stopped) t1 = setTimeout(liveTick, 2000); });
  const chartTick = () => Promise.all([loadCharts(), loadHistory()]).catch(onError).finally(() => { if (!stopped) t2 = setTimeout(chartTick, 5000); });
  t1 = setTimeout(liveTick, 2000);
  t2 = setTimeout(chartTick, 5000);
  return () => { stopped = true; clearTimeout(t1); clearTimeout(t2); };
}

function card(label, value) {
  return el("div", { class: "card" }, el("div", { class: "muted", text: label }),
    value instanceof Node ? el("div", { class: "big" }, value) : el("div", { class: "big", text: value }));
}
