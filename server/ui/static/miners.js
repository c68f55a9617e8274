// Miner table: one page at a time from the server (sorted, filtered by state, model, node, site and a
// search), multi-select across pages, bulk actions with a progress view of the command.
import { api, el, clear, fmt, fmtAge, stateBadge, can, toast, newKey } from "./lib.js";

const PAGE_SIZES = [50, 100, 250, 500];
const STATES = ["mining", "online", "stopped", "curtailed", "rebooting", "unreachable", "unknown", "stale"];
const ACTIONS = ["stop", "start", "reboot", "curtail", "uncurtail", "blink"];
const FINAL = new Set(["succeeded", "failed", "timeout"]);
const COLS = [
  ["id", "Miner"], ["state", "State"], ["hashrate", "TH/s"], ["temp", "Temp °C"], ["power", "Power W"],
  ["efficiency", "J/TH"], ["model", "Model"], ["node", "Node"], ["site", "Site"], [null, "Pool"], ["last_seen", "Last seen"],
];

export async function minersPage(root, _arg, onError, params) {
  const q = { offset: 0, limit: 100, sort: "id", desc: false, state: params.get("state") || "", model: params.get("model") || "",
    node: params.get("node") || "", site: params.get("site") || "", q: params.get("q") || "" };
  const selected = new Set();
  let lastPage = null, seq = 0, pending = null, timer = null, stopped = false;
  const hf = window.__hf;

  const search = el("input", { id: "search", type: "search", placeholder: "Search id, node, model, address, serial, pool…",
    "aria-label": "Search", value: q.q });
  const stateSel = select("state", "All states", STATES, q.state);
  const modelSel = select("model", "All models", [], q.model);
  const nodeSel = select("node", "All nodes", [], q.node);
  const siteSel = select("site", "All sites", [], q.site);
  const sizeSel = el("select", { id: "page-size", "aria-label": "Page size" }, ...PAGE_SIZES.map((n) => el("option", { value: n, text: n + " / page" })));
  sizeSel.value = String(q.limit);
  const info = el("span", { id: "page-info", class: "muted" });
  const prev = el("button", { id: "prev", type: "button", text: "‹ Prev" });
  const next = el("button", { id: "next", type: "button", text: "Next ›" });
  const head = el("tr", null, el("th", null, el("input", { id: "select-page", type: "checkbox", "aria-label": "Select page" })),
    ...COLS.map(([key, label]) => el("th", { "data-sort": key || undefined, class: key ? "sortable" : "", text: label })));
  const rows = el("tbody", { id: "rows" });
  const bulk = el("div", { id: "bulk", class: "bulk needs-operator" });
  const progress = el("div", { id: "progress" });
  root.append(el("h2", { text: "Miners" }),
    el("div", { class: "toolbar" }, search, stateSel, modelSel, nodeSel, siteSel, sizeSel, prev, next, info),
    bulk, progress, el("table", { id: "miners" }, el("thead", null, head), rows));

  function select(id, all, values, cur) {
    const s = el("select", { id: "f-" + id, "aria-label": id }, el("option", { value: "", text: all }),
      ...values.map((v) => el("option", { value: v, text: v })));
    s.value = cur;
    return s;
  }
  function fill(sel, values) {
    const cur = sel.value;
    const first = sel.firstChild;
    clear(sel).append(first, ...values.map((v) => el("option", { value: v, text: v })));
    if (cur && !values.includes(cur)) sel.append(el("option", { value: cur, text: cur }));
    sel.value = cur;
  }

  function url(offset, limit, extra) {
    const p = new URLSearchParams();
    if (q.state) p.set("state", q.state);
    for (const k of ["model", "node", "site", "q"]) if (q[k]) p.set(k, q[k]);
    if (q.sort !== "id" || q.desc) p.set("sort", (q.desc ? "-" : "") + q.sort);
    p.set("offset", offset);
    p.set("limit", limit);
    if (extra) p.set(extra, "1");
    return "/api/v1/miners?" + p.toString();
  }

  // load fetches and renders the current page. Each load has a sequence number: an older reply arriving
  // after a newer one is dropped, so a fast typist never sees a stale filter.
  async function load(reason) {
    const my = ++seq;
    const began = performance.now();
    const page = await api(url(q.offset, q.limit));
    if (my !== seq || stopped) return;
    lastPage = page;
    render(page);
    const ms = performance.now() - began;
    root.dataset.renders = String((Number(root.dataset.renders) || 0) + 1);
    if (reason === "first") { hf.minersFirstPageAt = performance.now(); hf.minersFirstPageMs = hf.minersFirstPageAt - hf.routeAt; }
    if (pending !== null && began >= pending) {
      hf.lastFilterMs = performance.now() - pending;
      hf.filters = (hf.filters || 0) + 1;
      pending = null;
    }
    hf.lastLoadMs = ms;
  }

  function render(page) {
    const frag = document.createDocumentFragment();
    for (const m of page.items) {
      const tr = el("tr", { "data-miner": m.id, class: m.stale ? "stale" : "" },
        el("td", null, el("input", { type: "checkbox", class: "pick", "data-id": m.id, checked: selected.has(m.id), "aria-label": "select " + m.id })),
        el("td", null, el("a", { href: "#/miner/" + encodeURIComponent(m.id), text: m.id })),
        el("td", null, stateBadge(m)),
        el("td", { class: "num", text: m.stale ? "–" : fmt(m.hashrate_ths, 1) }),
        el("td", { class: "num", text: fmt(m.temp_max_c, 0) }),
        el("td", { class: "num", text: m.stale ? "–" : fmt(m.power_w, 0) }),
        el("td", { class: "num", text: m.stale ? "–" : fmt(m.efficiency_jth, 1) }),
        el("td", { text: m.model }),
        el("td", { text: m.node }),
        el("td", { text: m.site || "" }),
        el("td", { class: "pool", text: m.pool, title: m.pool ? m.pool + " (" + m.pool_user + ")" : "" }),
        el("td", { class: "age", text: fmtAge(m.last_seen_age_s) }));
      frag.append(tr);
    }
    clear(rows).append(frag);
    const end = Math.min(page.offset + page.items.length, page.total);
    info.textContent = page.total ? `${page.offset + 1}–${end} of ${page.total}` : "no miners match";
    prev.disabled = page.offset === 0;
    next.disabled = end >= page.total;
    for (const th of head.querySelectorAll("th[data-sort]")) {
      th.classList.toggle("asc", th.dataset.sort === q.sort && !q.desc);
      th.classList.toggle("desc", th.dataset.sort === q.sort && q.desc);
    }
    document.getElementById("select-page").checked = page.items.length > 0 && page.items.every((m) => selected.has(m.id));
    renderBulk();
  }

  function renderBulk() {
    if (!can("operator")) { bulk.hidden = true; return; }
    const n = selected.size;
    clear(bulk).append(
      el("span", { id: "selected-count", text: `${n} selected` }),
      el("button", { type: "button", id: "select-all", text: `Select all ${lastPage ? lastPage.total : ""} matching`, onclick: selectAllMatching }),
      el("button", { type: "button", id: "select-none", text: "Clear", disabled: n === 0, onclick: () => { selected.clear(); render(lastPage); } }),
      ...ACTIONS.map((a) => el("button", { type: "button", "data-bulk": a, disabled: n === 0, text: a, onclick: () => bulkAction(a) })));
  }

  async function selectAllMatching() {
    const all = await api(url(0, 100000));
    for (const m of all.items) selected.add(m.id);
    render(lastPage);
  }

  async function bulkAction(action) {
    const ids = [...selected];
    if (!ids.length || !confirm(`${action} ${ids.length} miner${ids.length === 1 ? "" : "s"}?`)) return;
    try {
      const res = await api("/api/v1/commands", { method: "POST", body: { action, miner_ids: ids, idempotency_key: newKey() } });
      selected.clear();
      render(lastPage);
      track(res.command_id, action, ids.length);
    } catch (e) { onError(e); }
  }

  // track shows a bulk command's progress until every miner has a final result. It polls the counts only
  // (?summary=1: a few hundred bytes whatever the size of the command), and asks for the miners that did not
  // succeed once, at the end.
  function track(id, action, n) {
    const bar = el("progress", { max: n, value: 0 });
    const text = el("span", { class: "summary", text: "issued" });
    const box = el("div", { class: "progress", "data-command": id, "data-status": "pending" },
      el("strong", { text: `${action} × ${n}` }), " ", bar, " ", text);
    progress.prepend(box);
    const poll = async () => {
      if (stopped) return;
      try {
        const path = "/api/v1/commands/" + encodeURIComponent(id);
        const c = await api(path + "?summary=1");
        const s = c.summary || {};
        const done = (s.succeeded || 0) + (s.failed || 0) + (s.timeout || 0);
        bar.value = done;
        text.textContent = `${c.status}: ` + Object.entries(s).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(", ");
        box.dataset.status = c.status;
        if (FINAL.has(c.status)) {
          const notOK = (s.failed || 0) + (s.timeout || 0);
          if (notOK) {
            const page = await api(path + "?status=failed,timeout&limit=200");
            box.append(el("details", null, el("summary", { text: `${notOK} not succeeded` }),
              el("ul", null, ...(page.results || []).map((r) => el("li", { text: `${r.miner_id}: ${r.status} ${r.code || ""} ${r.message || ""}` })))));
          }
          toast(`${action} × ${n}: ${c.status}`);
          return;
        }
      } catch (e) { onError(e); }
      setTimeout(poll, 500);
    };
    poll();
  }

  // Events.
  let debounce = null;
  const filterChanged = () => { q.offset = 0; pending = performance.now(); load("filter").catch(onError); };
  search.addEventListener("input", () => {
    q.q = search.value.trim();
    clearTimeout(debounce);
    const at = performance.now();
    debounce = setTimeout(() => { q.offset = 0; pending = at; load("filter").catch(onError); }, 120);
  });
  for (const [sel, key] of [[stateSel, "state"], [modelSel, "model"], [nodeSel, "node"], [siteSel, "site"]]) {
    sel.addEventListener("change", () => { q[key] = sel.value; filterChanged(); });
  }
  sizeSel.addEventListener("change", () => { q.limit = Number(sizeSel.value); q.offset = 0; load().catch(onError); });
  prev.addEventListener("click", () => { q.offset = Math.max(0, q.offset - q.limit); load().catch(onError); });
  next.addEventListener("click", () => { q.offset += q.limit; load().catch(onError); });
  head.addEventListener("click", (ev) => {
    const th = ev.target.closest("th[data-sort]");
    if (!th) return;
    if (q.sort === th.dataset.sort) q.desc = !q.desc; else { q.sort = th.dataset.sort; q.desc = false; }
    q.offset = 0;
    pending = performance.now();
    load("filter").catch(onError);
  });
  rows.addEventListener("change", (ev) => {
    const cb = ev.target.closest("input.pick");
    if (!cb) return;
    if (cb.checked) selected.add(cb.dataset.id); else selected.delete(cb.dataset.id);
    renderBulk();
  });
  document.getElementById("select-page").addEventListener("change", (ev) => {
    for (const m of lastPage ? lastPage.items : []) { if (ev.target.checked) selected.add(m.id); else selected.delete(m.id); }
    render(lastPage);
  });

  await load("first");
  api(url(0, 1, "facets")).then((f) => {
    fill(modelSel, f.facets.models); fill(nodeSel, f.facets.nodes); fill(siteSel, f.facets.sites);
  }).catch(onError);
  const refresh = () => { if (!stopped) load().catch(onError).finally(() => { if (!stopped) timer = setTimeout(refresh, 2000); }); };
  timer = setTimeout(refresh, 2000);
  return () => { stopped = true; clearTimeout(timer); clearTimeout(debounce); };
}
