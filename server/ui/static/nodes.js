// Nodes: status (stream up or down, heartbeat, version, lease epoch, queue), and enrollment: mint a code,
// then confirm a pending node by typing the fingerprint the node printed.
import { api, el, clear, fmtAge, fmtTime, table, can, toast, hasRoute } from "./lib.js";

export async function nodesPage(root, _arg, onError) {
  let stopped = false, timer = null, pendingKey = null;
  const list = el("div", { id: "node-list" });
  const enroll = el("div", { id: "enroll", class: "needs-admin" });
  const pending = el("div", { id: "pending-nodes" });
  root.append(el("h2", { text: "Nodes" }), list, enroll);
  const canRevoke = can("admin") && await hasRoute("POST", "/api/v1/nodes/{id}/revoke");

  async function loadNodes() {
    const n = await api("/api/v1/nodes");
    clear(list).append(table([
      ["Node", (x) => x.node],
      ["Stream", (x) => el("span", { class: "dot-label " + (x.connected ? "up" : "down"), text: x.connected ? "up" : "down" })],
      ["Since", (x) => (x.connected ? fmtTime(x.connected_since) : "–")],
      ["Heartbeat", (x) => fmtAge(x.last_heartbeat_age_s)],
      ["Version", (x) => x.software_version || "–"],
      ["Role", (x) => (x.standby ? "standby" : "active")],
      ["Lease epoch", (x) => x.lease_epoch],
      ["Devices", (x) => el("a", { href: "#/miners?node=" + encodeURIComponent(x.node), text: String(x.devices) })],
      ["Queued", (x) => x.queued_commands],
      ["Seq (cloud/node)", (x) => `${x.last_seq}/${x.node_last_seq}`],
      ...(canRevoke ? [["", (x) => el("button", { type: "button", "data-revoke": x.node, text: "Revoke", onclick: () => revoke(x.node) })]] : []),
    ], n.nodes, { id: "nodes-table" }));
  }

  async function revoke(id) {
    if (!confirm(`Revoke node ${id}? It can no longer connect.`)) return;
    try { await api(`/api/v1/nodes/${encodeURIComponent(id)}/revoke`, { method: "POST", body: {} }); toast(`node ${id} revoked`); loadNodes(); } catch (e) { onError(e); }
  }

  async function loadPending() {
    let p;
    try { p = await api("/api/v1/nodes/pending"); } catch (e) {
      if (e.status === 503) { clear(pending).append(el("p", { class: "muted", text: "Enrollment is for split mode (this server runs combined)." })); return; }
      throw e;
    }
    const key = p.nodes.map((x) => x.node_id + "=" + x.fingerprint).join(",");
    if (key === pendingKey && pending.firstChild) return; // keep what the operator is typing
    pendingKey = key;
    clear(pending).append(p.nodes.length === 0 ? el("p", { class: "muted", text: "No node waiting for confirmation." }) :
      table([["Node", (x) => x.node_id], ["Name", (x) => x.name], ["Site", (x) => x.site], ["Enrolled", (x) => fmtTime(x.enrolled_at)],
        ["Fingerprint shown by the cloud", (x) => el("code", { text: x.fingerprint })],
        ["Confirm", (x) => confirmForm(x)]], p.nodes, { id: "pending-table" }));
  }

  // confirmForm asks for the fingerprint the node printed; the cloud compares it with the one it holds.
  function confirmForm(x) {
    const input = el("input", { class: "fingerprint", "data-node": x.node_id, placeholder: "fingerprint the node printed", size: 40, autocomplete: "off" });
    const form = el("form", { class: "confirm", "data-node": x.node_id }, input, el("button", { type: "submit", text: "Confirm" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const fp = input.value.trim();
      if (fp !== x.fingerprint) { toast("The fingerprint does not match what the cloud received: do not confirm.", true); return; }
      try {
        await api(`/api/v1/nodes/${encodeURIComponent(x.node_id)}/confirm`, { method: "POST", body: { fingerprint: fp } });
        toast(`node ${x.node_id} confirmed`);
        loadPending().catch(onError);
        loadNodes().catch(onError);
      } catch (e) { onError(e); }
    });
    return form;
  }

  if (can("admin")) {
    const site = el("input", { id: "code-site", placeholder: "site", size: 16 });
    const out = el("div", { id: "code-out" });
    const form = el("form", { id: "mint-form" }, site, el("button", { type: "submit", text: "Mint enrollment code" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const c = await api("/api/v1/enrollment-codes", { method: "POST", body: { site: site.value.trim() } });
        clear(out).append(el("p", null, "Code (shown once, expires ", fmtTime(c.expires_at), "): ", el("code", { id: "code", text: c.code })),
          el("p", { class: "muted", text: "Run on the node: hashfleet node enroll --code <code>, then confirm the fingerprint it prints below." }));
      } catch (e) { onError(e); }
    });
    enroll.append(el("h3", { text: "Enroll a node" }), form, out, el("h3", { text: "Waiting for confirmation" }), pending);
  } else {
    enroll.hidden = true;
  }

  await Promise.all([loadNodes(), can("admin") ? loadPending() : null]);
  const tick = () => Promise.all([loadNodes(), can("admin") ? loadPending() : null]).catch(onError)
    .finally(() => { if (!stopped) timer = setTimeout(tick, 2000); });
  timer = setTimeout(tick, 2000);
  return () => { stopped = true; clearTimeout(timer); };
}
