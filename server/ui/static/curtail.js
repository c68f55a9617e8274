// Site curtailment: start an event (a kW target to shed, or full) with an optional end time, stop it, and
// follow every node of the site (state, target, achieved kW, miners curtailed, stragglers, the node's answer
// to the last command); the site's signed policy is shown read-only. Viewers see the state, not the controls
// (the API refuses their writes too).
import { api, el, clear, fmt, fmtTime, table, can, toast, hasRoute, newKey } from "./lib.js";

// States (node/curtail StatusState) of an event that can still be stopped.
const ACTIVE = new Set(["scheduled", "ramping", "holding"]);

export async function curtailPage(root, arg, onError) {
  root.append(el("h2", { text: "Site curtailment" }));
  const box = el("div", { id: "curtail" });
  root.append(box);
  if (!(await hasRoute("POST", "/api/v1/sites/{site}/curtail"))) {
    box.append(el("p", { class: "muted", text: "This server does not serve site curtailment." }));
    return null;
  }
  const f = await api("/api/v1/miners?facets=1&limit=1");
  const known = (f.facets && f.facets.sites) || [];
  const siteIn = el("input", { id: "curtail-site", list: "curtail-sites", placeholder: "site", size: 20, value: arg || known[0] || "" });
  const pick = el("form", { class: "toolbar", id: "curtail-pick" }, el("label", { for: "curtail-site", text: "Site " }), siteIn,
    el("datalist", { id: "curtail-sites" }, ...known.map((s) => el("option", { value: s }))), el("button", { type: "submit", text: "Show" }));

  const kw = el("input", { id: "curtail-kw", type: "number", min: 0, step: "any", placeholder: "kW to shed", size: 10 });
  const full = el("input", { id: "curtail-full", type: "checkbox" });
  const endAt = el("input", { id: "curtail-end", type: "datetime-local", title: "optional end time (local)" });
  const start = el("form", { id: "curtail-start", class: "toolbar needs-operator" },
    el("label", { for: "curtail-kw", text: "Shed" }), kw, el("span", { text: "kW" }),
    el("label", null, full, " or curtail fully"), el("label", { for: "curtail-end", text: "until (optional)" }), endAt,
    el("button", { type: "submit", id: "curtail-start-btn", text: "Start event" }));
  const stop = el("button", { type: "button", id: "curtail-stop", class: "needs-operator", text: "Stop event", hidden: true });
  const summary = el("p", { id: "curtail-summary", class: "muted" });
  const nodes = el("div", { id: "curtail-nodes" });
  const policy = el("div", { id: "curtail-policy" });
  box.append(pick, start, el("div", { class: "toolbar" }, summary, stop), el("h3", { text: "Nodes" }), nodes,
    el("h3", { text: "Site policy" }), policy);
  if (!can("operator")) { start.hidden = true; stop.remove(); }
  full.addEventListener("change", () => { kw.disabled = full.checked; });

  let active = ""; // the event to stop: one some node of the site is still running
  const site = () => siteIn.value.trim();
  const path = (what) => `/api/v1/sites/${encodeURIComponent(site())}/${what}`;

  pick.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/curtail/" + encodeURIComponent(site());
  });
  start.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!site()) return;
    const body = { event_id: "ui-" + newKey().slice(0, 12) };
    if (full.checked) body.full = true;
    else {
      const v = Number(kw.value);
      if (!(v > 0)) { toast("Give the kW to shed, or curtail fully.", true); return; }
      body.target_kw = v;
    }
    if (endAt.value) {
      const t = new Date(endAt.value);
      if (Number.isNaN(t.getTime()) || t <= new Date()) { toast("The end time must be in the future.", true); return; }
      body.end_at = t.toISOString();
    }
    const what = body.full ? "fully" : `by ${body.target_kw} kW`;
    if (!confirm(`Curtail ${site()} ${what}${body.end_at ? " until " + fmtTime(body.end_at) : ""}?`)) return;
    try {
      const r = await api(path("curtail"), { method: "POST", body });
      toast(`event ${r.event_id} sent to ${r.nodes.length} node(s)`);
      await load();
    } catch (e) { onError(e); }
  });
  stop.addEventListener("click", async () => {
    if (!active || !confirm(`Stop event ${active} at ${site()}?`)) return;
    try {
      await api(path("curtail"), { method: "POST", body: { event_id: active, stop: true } });
      toast(`stop of ${active} sent`);
      await load();
    } catch (e) { onError(e); }
  });

  async function loadStatus() {
    let s;
    try { s = await api(path("curtail")); } catch (e) {
      if (e.status === 404 || e.status === 400) {
        active = "";
        stop.hidden = true;
        summary.textContent = "";
        clear(nodes).append(el("p", { class: "muted", text: e.status === 404 ? `No node is at site ${site()}.` : e.message }));
        return;
      }
      throw e;
    }
    const rows = s.nodes || [];
    const running = rows.filter((n) => n.status && ACTIVE.has(n.status.state));
    active = running.length ? running[0].status.event_id : "";
    stop.hidden = !active;
    box.dataset.state = running.length ? running[0].status.state : (rows.find((n) => n.status)?.status.state || "idle");
    const shed = rows.reduce((a, n) => a + (n.status ? n.status.achieved_kw || 0 : 0), 0);
    const curtailed = rows.reduce((a, n) => a + (n.status ? n.status.miners_curtailed || 0 : 0), 0);
    summary.textContent = active ? `Event ${active}: ${fmt(shed, 1)} kW shed, ${curtailed} miners curtailed` : "No event running.";
    clear(nodes).append(rows.length === 0 ? el("p", { class: "muted", text: "No node at this site." }) : table([
      ["Node", (n) => n.node],
      ["Event", (n) => n.status?.event_id || "–"],
      ["State", (n) => el("span", { class: "state " + (n.status?.state === "holding" ? "curtailed" : ""), "data-state": n.status?.state || "none",
        text: n.status?.state || "none" })],
      ["Source", (n) => n.status?.source || ""],
      ["Target", (n) => (!n.status ? "" : n.status.full ? "full" : fmt(n.status.target_kw, 1) + " kW")],
      ["Achieved", (n) => (n.status ? fmt(n.status.achieved_kw, 1) + " kW" : "")],
      ["Miners curtailed", (n) => (n.status ? String(n.status.miners_curtailed) : "")],
      ["Stragglers", (n) => ((n.status?.stragglers || []).length ? n.status.stragglers.join(", ") : "none")],
      ["Last command", (n) => (n.command ? `${n.command.code}${n.command.message ? ": " + n.command.message : ""}` : "–")],
      ["At", (n) => (n.command?.at ? fmtTime(n.command.at) : "")],
    ], rows, { id: "curtail-table" }));
    for (const [i, tr] of [...nodes.querySelectorAll("tbody tr")].entries()) tr.dataset.node = rows[i].node;
  }

  async function loadPolicy() {
    let p;
    try { p = await api(path("policy")); } catch (e) {
      if (e.status === 404 || e.status === 400) { clear(policy).append(el("p", { class: "muted", text: "No policy set for this site." })); return; }
      throw e;
    }
    clear(policy).append(
      el("p", null, `Version ${p.version} · signed with key ${p.key_id}`),
      (p.nodes || []).length ? table([["Node", (n) => n.node], ["Installed", (n) => n.code], ["Message", (n) => n.message], ["At", (n) => fmtTime(n.at)]],
        p.nodes) : null,
      el("pre", { id: "curtail-policy-json", class: "json", text: JSON.stringify(p.policy, null, 2) }));
  }

  async function load() {
    if (!site()) { clear(nodes).append(el("p", { class: "muted", text: "Name a site." })); return; }
    await Promise.all([loadStatus(), loadPolicy()]);
  }
  await load().catch(onError);
  let stopped = false, timer = null;
  const tick = () => load().catch(onError).finally(() => { if (!stopped) timer = setTimeout(tick, 2000); });
  timer = setTimeout(tick, 2000);
  return () => { stopped = true; clearTimeout(timer); };
}
