// Overview: fleet totals now and over time, miners by state, and the sites → nodes → miners tree.
import { api, el, clear, fmt, fmtHashrate, fmtPower, lineChart, fmtAge } from "./lib.js";

const RANGES = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3 };

export async function overviewPage(root, _arg, onError) {
  let range = "1h";
  const cards = el("div", { class: "cards", id: "totals" });
  const states = el("div", { class: "states", id: "states" });
  const charts = el("div", { class: "charts", id: "fleet-charts" });
  const tree = el("div", { id: "tree" });
  const picker = el("div", { class: "toolbar" }, "Range: ",
    ...Object.keys(RANGES).map((r) => el("button", { type: "button", "data-range": r, class: r === range ? "on" : "",
      onclick: () => { range = r; for (const b of picker.querySelectorAll("button")) b.classList.toggle("on", b.dataset.range === r); load(); } },
    r)));
  root.append(el("h2", { text: "Fleet overview" }), cards, states, picker, charts, el("h3", { text: "Sites → nodes → miners" }), tree);

  async function load() {
    const to = Date.now();
    const t = await api(`/api/v1/fleet/totals?from=${to - RANGES[range]}&to=${to}`);
    const live = t.live;
    clear(cards).append(
      card("Hashrate", fmtHashrate(live.hashrate_ths), "hashrate"),
      card("Power", fmtPower(live.power_w), "power"),
      card("Efficiency", fmt(live.efficiency_jth, 1) + " J/TH", "efficiency"),
      card("Reporting", String(live.miners), "miners"),
      card("Stale", String(live.stale || 0), "stale"));
    clear(states);
    for (const [s, n] of Object.entries(live.states).sort()) states.append(el("span", { class: "state " + s, text: s + " " + n }));
    const pts = (f) => t.points.map((p) => ({ t: p.t, v: f(p) }));
    clear(charts).append(
      lineChart("Hashrate", "TH/s", pts((p) => p.hashrate_ths), { metric: "hashrate" }),
      lineChart("Power", "W", pts((p) => p.power_w), { metric: "power" }),
      lineChart("Efficiency", "J/TH", pts((p) => p.efficiency_jth), { metric: "efficiency", zero: false }),
      lineChart("Miners reporting", "", pts((p) => p.miners), { metric: "miners" }));
  }

  async function loadTree() {
    const [nodes, facets] = await Promise.all([api("/api/v1/nodes"), api("/api/v1/miners?facets=1&limit=1")]);
    const byNode = new Map(nodes.nodes.map((n) => [n.node, n]));
    const sites = facets.facets.sites.length ? facets.facets.sites : [""];
    const list = el("ul", { class: "tree" });
    for (const site of sites) {
      const q = site ? `site=${encodeURIComponent(site)}&` : "";
      const f = site ? await api(`/api/v1/miners?${q}facets=1&limit=1`) : facets;
      const nodesUl = el("ul");
      for (const n of f.facets.nodes) {
        const st = byNode.get(n);
        const up = st && st.connected;
        nodesUl.append(el("li", { "data-node": n },
          el("span", { class: "dot " + (up ? "up" : "down"), title: up ? "stream up" : "stream down" }),
          el("a", { href: `#/miners?node=${encodeURIComponent(n)}`, text: n }),
          el("span", { class: "muted", text: ` ${st ? st.devices : "?"} miners` + (up ? "" : " · stream down, miners stale") +
            (st && st.last_heartbeat_age_s != null ? " · heartbeat " + fmtAge(st.last_heartbeat_age_s) : "") })));
      }
      list.append(el("li", { "data-site": site },
        site ? el("a", { href: `#/miners?site=${encodeURIComponent(site)}`, text: "site " + site }) : el("span", { text: "(no site)" }),
        el("span", { class: "muted", text: ` ${f.total} miners` }), nodesUl));
    }
    clear(tree).append(list);
  }

  const tick = () => load().catch(onError);
  await Promise.all([load(), loadTree()]);
  const timer = setInterval(tick, 5000);
  return () => clearInterval(timer);
}

function card(label, value, key) {
  return el("div", { class: "card", "data-total": key }, el("div", { class: "muted", text: label }), el("div", { class: "big", text: value }));
}
