// hashfleet node local UI: select-all and live refresh. Nothing else: every action is a plain form POST.
// Values from the node (and so from miners) are only ever set with textContent, never as HTML.
"use strict";
(function () {
  const one = (sel, root) => (root || document).querySelector(sel);
  const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // Select all.
  const selectAll = one('[data-testid="select-all"]');
  const boxes = () => all('[data-testid="miner-select"]');
  const counter = one('[data-testid="selected-count"]');
  function selectionChanged() {
    const bs = boxes();
    const n = bs.filter((b) => b.checked).length;
    if (counter) counter.textContent = String(n);
    if (selectAll) {
      selectAll.checked = bs.length > 0 && n === bs.length;
      selectAll.indeterminate = n > 0 && n < bs.length;
    }
  }
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      boxes().forEach((b) => { b.checked = selectAll.checked; });
      selectionChanged();
    });
  }
  document.addEventListener("change", (e) => {
    if (e.target instanceof Element && e.target.matches('[data-testid="miner-select"]')) selectionChanged();
  });
  selectionChanged();

  // Live refresh.
  const every = Number(document.body.dataset.refreshMs) || 0;
  const fmt = (v, digits, unit) => (v ? v.toFixed(digits) + " " + unit : "–");
  const set = (el, text) => { if (el && el.textContent !== text) el.textContent = text; };

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" });
    if (r.status === 401) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new Error("session ended");
    }
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  function showMiner(root, m) {
    const st = one('[data-field="state"]', root);
    if (st && st.textContent !== m.state) {
      st.textContent = m.state;
      st.className = "state state-" + m.state;
    }
    set(one('[data-field="hashrate"]', root), fmt(m.hashrate_ths, 2, "TH/s"));
    set(one('[data-field="hashrate-avg"]', root), fmt(m.hashrate_avg_ths, 2, "TH/s"));
    set(one('[data-field="temp"]', root), fmt(m.temp_max_c, 1, "°C"));
    set(one('[data-field="power"]', root), m.power_w ? Math.round(m.power_w) + " W" : "–");
    set(one('[data-field="power-target"]', root), m.power_target_w ? Math.round(m.power_target_w) + " W" : "–");
    set(one('[data-field="error"]', root), [m.error || ""].concat(m.errors || []).join(" ").trim());
  }

  async function refresh() {
    const banner = one('[data-testid="link-banner"]');
    if (banner) {
      const l = await getJSON("/api/local/link");
      banner.dataset.link = l.state;
      banner.className = "banner link-" + l.state;
      set(one('[data-field="link-text"]', banner), l.banner);
    }
    const table = one('[data-testid="miner-table"][data-refresh-url]');
    if (table) {
      const data = await getJSON(table.dataset.refreshUrl);
      const byID = new Map(data.miners.map((m) => [m.id, m]));
      all('[data-testid="miner-row"]', table).forEach((row) => {
        const m = byID.get(row.dataset.minerId);
        if (m) showMiner(row, m);
      });
    }
    const detail = one('[data-testid="miner-detail"][data-refresh-url]');
    if (detail) showMiner(detail, await getJSON(detail.dataset.refreshUrl));
    document.body.dataset.refreshedAt = String(Date.now());
  }

  if (every > 0 && one('[data-testid="link-banner"]')) {
    let busy = false;
    setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      try { await refresh(); } catch (e) { console.warn("refresh:", e.message); } finally { busy = false; }
    }, every);
  }
})();
