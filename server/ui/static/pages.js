// The smaller pages: pairs and leases, conflicts, discovery and pairing, the audit log, users and API keys
// (site curtailment is curtail.js). Each renders what this server's endpoints return; an endpoint this
// server does not serve is said so, not faked.
import { api, el, clear, fmtAge, fmtTime, table, firstList, can, toast, hasRoute } from "./lib.js";

function poller(fn, ms, onError) {
  let stopped = false, t = null;
  const tick = () => fn().catch(onError).finally(() => { if (!stopped) t = setTimeout(tick, ms); });
  t = setTimeout(tick, ms);
  return () => { stopped = true; clearTimeout(t); };
}

const missing = (what) => el("p", { class: "muted", text: `This server does not serve ${what}.` });

export async function pairsPage(root, _arg, onError) {
  root.append(el("h2", { text: "Warm-standby pairs and leases" }));
  const box = el("div", { id: "pairs" });
  root.append(box);
  if (!(await hasRoute("GET", "/api/v1/pairs"))) { box.append(missing("pairs")); return null; }
  const canTransfer = can("operator") && await hasRoute("POST", "/api/v1/pairs/{id}/transfer");
  async function load() {
    const pairs = firstList(await api("/api/v1/pairs"));
    clear(box);
    if (pairs.length === 0) { box.append(el("p", { class: "muted", text: "No pairs declared." })); return; }
    for (const p of pairs) {
      const members = p.members || [];
      box.append(el("div", { class: "pair", "data-pair": p.id },
        el("h3", { text: `${p.id} · site ${p.site || "–"}` }),
        el("p", null, "Holder ", el("strong", { class: "holder", text: p.holder || "none" }), ` · epoch ${p.epoch ?? "–"}`,
          p.expires_in_s != null ? ` · lease expires in ${Math.round(p.expires_in_s)}s` : "", p.live === false ? " · lease lapsed" : "",
          ` · ${p.failovers || 0} failovers · ${(p.devices || []).length} devices`),
        table([["Member", (m) => m.node], ["Role", (m) => (m.holder ? "holder" : m.standby ? "standby" : "member")],
          ["Last heard", (m) => fmtAge(m.last_heard_age_s)], ["Gossip", (m) => m.gossip_addr || "–"],
          ...(canTransfer ? [["", (m) => (m.holder ? "" : el("button", { type: "button", text: "Hand lease over", onclick: () => transfer(p.id, m.node) }))]] : [])],
        members),
        el("h4", { text: "Failover history" }),
        (p.history || []).length ? table([["At", (h) => fmtTime(h.at)], ["Kind", (h) => h.kind], ["From", (h) => h.from], ["To", (h) => h.to],
          ["Epoch", (h) => h.epoch]], p.history.slice().reverse()) : el("p", { class: "muted", text: "No failovers." })));
    }
  }
  async function transfer(id, to) {
    if (!confirm(`Hand the lease of ${id} over to ${to}?`)) return;
    try { await api(`/api/v1/pairs/${encodeURIComponent(id)}/transfer`, { method: "POST", body: { to } }); toast("transfer requested"); load(); } catch (e) { onError(e); }
  }
  await load();
  return poller(load, 3000, onError);
}

export async function conflictsPage(root, _arg, onError) {
  root.append(el("h2", { text: "Conflicts from local-degraded mode" }),
    el("p", { class: "muted", text: "Cloud commands held because the site acted on the same miner while the cloud was unreachable." }));
  const box = el("div", { id: "conflicts" });
  root.append(box);
  if (!(await hasRoute("GET", "/api/v1/conflicts"))) { box.append(missing("conflicts")); return null; }
  const canResolve = can("operator") && await hasRoute("POST", "/api/v1/conflicts/{id}/resolve");
  async function load() {
    const cs = firstList(await api("/api/v1/conflicts"));
    clear(box).append(cs.length === 0 ? el("p", { class: "muted", text: "No conflicts." }) : table([
      ["Created", (c) => fmtTime(c.created_at)], ["Miner", (c) => el("a", { href: "#/miner/" + encodeURIComponent(c.miner_id), text: c.miner_id })],
      ["Node", (c) => c.node_id], ["Field", (c) => c.field], ["Held command", (c) => `${c.action} by ${c.command_actor}`],
      ["Reason", (c) => c.message || c.reason], ["Status", (c) => c.status + (c.resolved_by ? " by " + c.resolved_by : "")],
      ...(canResolve ? [["", (c) => (c.status !== "open" && c.status !== "" ? "" : el("span", null,
        el("button", { type: "button", "data-resolve": "apply", text: "Apply", onclick: () => resolve(c.id, "apply") }),
        el("button", { type: "button", "data-resolve": "discard", text: "Discard", onclick: () => resolve(c.id, "discard") })))]] : []),
    ], cs, { id: "conflicts-table" }));
  }
  async function resolve(id, resolution) {
    if (!confirm(`${resolution} the held command?`)) return;
    try { await api(`/api/v1/conflicts/${encodeURIComponent(id)}/resolve`, { method: "POST", body: { resolution } }); load(); } catch (e) { onError(e); }
  }
  await load();
  return poller(load, 3000, onError);
}

export async function discoveryPage(root, _arg, onError) {
  root.append(el("h2", { text: "Discovery and pairing" }));
  const form = el("form", { id: "scan-form", class: "needs-operator" });
  const nodeIn = el("input", { id: "scan-node", placeholder: "node id", size: 16 });
  const targets = el("input", { id: "scan-targets", placeholder: "CIDRs or ranges, comma-separated", size: 40 });
  form.append(nodeIn, targets, el("button", { type: "submit", text: "Scan" }));
  const scans = el("div", { id: "scans" }), devices = el("div", { id: "devices" });
  root.append(form, el("h3", { text: "Scans" }), scans, el("h3", { text: "Devices found, not paired" }), devices);
  if (!can("operator")) form.hidden = true;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("/api/v1/discovery", { method: "POST", body: { node: nodeIn.value.trim(), targets: targets.value.split(",").map((s) => s.trim()).filter(Boolean) } });
      toast("scan started");
      load();
    } catch (e) { onError(e); }
  });
  async function load() {
    const [s, d] = await Promise.all([api("/api/v1/discovery"), api("/api/v1/devices?status=discovered").catch(() => api("/api/v1/devices"))]);
    clear(scans).append(table([["Scan", (x) => x.scan_id], ["Node", (x) => x.node], ["State", (x) => x.state], ["Targets", (x) => (x.targets || []).join(", ")],
      ["Progress", (x) => JSON.stringify(x.progress)], ["Started", (x) => fmtTime(x.started_at)], ["Message", (x) => x.message]], firstList(s)));
    const devs = firstList(d).filter((x) => x.status !== "paired" && x.status !== "registered");
    clear(devices).append(devs.length === 0 ? el("p", { class: "muted", text: "None." }) : table([
      ["Device", (x) => x.device_id], ["Node", (x) => x.node], ["Status", (x) => x.status], ["Address", (x) => x.address], ["Model", (x) => x.model],
      ["Pairing", (x) => (x.pairing ? `${x.pairing.status} ${x.pairing.message || ""}` : "")],
      ...(can("operator") ? [["", (x) => el("button", { type: "button", text: "Pair", onclick: () => pair(x) })]] : []),
    ], devs));
  }
  async function pair(x) {
    if (!confirm(`Pair ${x.device_id} to node ${x.node}?`)) return;
    try { await api("/api/v1/pairings", { method: "POST", body: { device_ids: [x.device_id], node: x.node, wait_s: 0 } }); toast("pairing sent"); load(); } catch (e) { onError(e); }
  }
  await load();
  return poller(load, 3000, onError);
}

export async function auditPage(root, _arg, onError) {
  root.append(el("h2", { text: "Audit log" }));
  const nodes = (await api("/api/v1/nodes")).nodes.map((n) => n.node);
  const hasOrg = await hasRoute("GET", "/api/v1/audit");
  const nodeSel = el("select", { id: "audit-node" },
    hasOrg ? el("option", { value: "@org", text: "Commands, all nodes" }) : null,
    el("option", { value: "", text: "Security events" }),
    ...nodes.map((n) => el("option", { value: n, text: "node " + n + " command gate" })));
  const originSel = el("select", { id: "audit-origin", hidden: !hasOrg },
    ...[["", "cloud and local"], ["cloud", "cloud only"], ["local", "local (site) only"]].map(([v, t]) => el("option", { value: v, text: t })));
  const text = el("input", { id: "audit-filter", type: "search", placeholder: "filter: actor, miner, code, command…" });
  const codeSel = el("select", { id: "audit-code" }, el("option", { value: "", text: "any result" }));
  const box = el("div", { id: "audit" });
  root.append(el("div", { class: "toolbar" }, nodeSel, originSel, codeSel, text), box);
  let rows = [];
  const gate = (r) => ({ at: r.at, kind: r.node_id ? "gate " + r.node_id : "gate", actor: r.actor, code: r.code, subject: (r.miner_ids || []).join(" "),
    detail: `${r.command_id} seq ${r.seq} epoch ${r.lease_epoch} ${r.message || ""}` });
  async function load() {
    originSel.hidden = nodeSel.value !== "@org";
    if (nodeSel.value === "@org") {
      const a = await api(`/api/v1/audit?limit=2000${originSel.value ? "&origin=" + originSel.value : ""}`);
      rows = (a.records || []).map(gate);
    } else if (nodeSel.value) {
      const a = await api(`/api/v1/nodes/${encodeURIComponent(nodeSel.value)}/audit?limit=2000`);
      rows = (a.records || []).map(gate);
    } else {
      try {
        const e = await api("/api/v1/security-events?limit=2000");
        rows = firstList(e).map((r) => ({ at: r.at || r.At || r.at_unix_ms, kind: r.kind || r.Kind || "", actor: r.actor || r.Actor || r.node || r.Node || "",
          code: r.code || r.Code || r.result || "", subject: r.node_id || r.NodeID || r.node || "", detail: r.message || r.Message || JSON.stringify(r) }));
      } catch (err) { if (err.status !== 503) throw err; rows = []; }
    }
    const codes = [...new Set(rows.map((r) => r.code).filter(Boolean))].sort();
    const cur = codeSel.value;
    clear(codeSel).append(el("option", { value: "", text: "any result" }), ...codes.map((c) => el("option", { value: c, text: c })));
    codeSel.value = codes.includes(cur) ? cur : "";
    render();
  }
  function render() {
    const f = text.value.trim().toLowerCase();
    const shown = rows.filter((r) => (!codeSel.value || r.code === codeSel.value) &&
      (!f || [r.actor, r.subject, r.code, r.detail, r.kind].join(" ").toLowerCase().includes(f)));
    clear(box).append(el("p", { class: "muted", text: `${shown.length} of ${rows.length} records` }),
      table([["At", (r) => fmtTime(r.at)], ["Kind", (r) => r.kind], ["Actor", (r) => r.actor], ["Result", (r) => r.code],
        ["Subject", (r) => r.subject], ["Detail", (r) => r.detail]], shown.slice(0, 500), { id: "audit-table" }));
  }
  nodeSel.addEventListener("change", () => load().catch(onError));
  originSel.addEventListener("change", () => load().catch(onError));
  codeSel.addEventListener("change", render);
  text.addEventListener("input", render);
  await load();
  return null;
}

export async function adminPage(root, _arg, onError) {
  root.append(el("h2", { text: "Users and API keys" }));
  if (!can("admin")) { root.append(el("p", { class: "muted", text: "Only admins manage users and keys." })); return null; }
  const users = el("div", { id: "users" }), keys = el("div", { id: "api-keys" }), shown = el("div", { id: "new-key" });
  const uName = el("input", { id: "new-user", placeholder: "user name", autocomplete: "off" });
  const uPass = el("input", { id: "new-password", type: "password", placeholder: "password (12+)", autocomplete: "new-password" });
  const uRole = el("select", { id: "new-role" }, ...["viewer", "operator", "admin"].map((r) => el("option", { value: r, text: r })));
  const uForm = el("form", { id: "user-form" }, uName, uPass, uRole, el("button", { type: "submit", text: "Add user" }));
  const kName = el("input", { id: "key-name", placeholder: "key name" });
  const kRole = el("select", { id: "key-role" }, ...["viewer", "operator", "admin"].map((r) => el("option", { value: r, text: r })));
  const kForm = el("form", { id: "key-form" }, kName, kRole, el("button", { type: "submit", text: "Create API key" }));
  root.append(el("h3", { text: "Users" }), uForm, users, el("h3", { text: "API keys" }), kForm, shown, keys);
  uForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("/api/v1/users", { method: "POST", body: { name: uName.value.trim(), password: uPass.value, role: uRole.value } });
      uPass.value = ""; uName.value = "";
      load();
    } catch (e) { onError(e); }
  });
  kForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const k = await api("/api/v1/api-keys", { method: "POST", body: { name: kName.value.trim(), role: kRole.value } });
      clear(shown).append(el("p", null, "New key (shown once, copy it now): ", el("code", { text: k.key })));
      load();
    } catch (e) { onError(e); }
  });
  async function load() {
    const [u, k] = await Promise.all([api("/api/v1/users"), api("/api/v1/api-keys")]);
    clear(users).append(table([["User", (x) => x.name], ["Role", (x) => x.role], ["Created", (x) => fmtTime(x.created_at)],
      ["", (x) => el("button", { type: "button", text: "Remove", onclick: async () => {
        if (!confirm(`Remove user ${x.name}?`)) return;
        try { await api("/api/v1/users/" + encodeURIComponent(x.name), { method: "DELETE" }); load(); } catch (e) { onError(e); }
      } })]], u.users));
    clear(keys).append(table([["Key", (x) => x.id], ["Name", (x) => x.name], ["Role", (x) => x.role], ["By", (x) => x.created_by],
      ["Created", (x) => fmtTime(x.created_at)], ["Last used", (x) => fmtTime(x.last_used_at)], ["Revoked", (x) => fmtTime(x.revoked_at)],
      ["", (x) => (x.revoked_at ? "" : el("button", { type: "button", text: "Revoke", onclick: async () => {
        if (!confirm(`Revoke key ${x.name}?`)) return;
        try { await api("/api/v1/api-keys/" + encodeURIComponent(x.id), { method: "DELETE" }); load(); } catch (e) { onError(e); }
      } }))]], k.api_keys));
  }
  await load();
  return null;
}
