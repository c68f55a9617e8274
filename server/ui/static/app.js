// hashfleet operator UI: sign-in, navigation and the page lifecycle. Pages live in their own modules; each
// renders into #page and returns a function that stops its timers. Every server value is written with
// textContent or setAttribute (lib.js el), never parsed as HTML.
import { api, session, AuthError, clear, toast } from "./lib.js";
import { overviewPage } from "./overview.js";
import { minersPage } from "./miners.js";
import { minerPage } from "./miner.js";
import { nodesPage } from "./nodes.js";
import { pairsPage, conflictsPage, discoveryPage, auditPage, adminPage } from "./pages.js";
import { curtailPage } from "./curtail.js";

const $ = (id) => document.getElementById(id);
const pages = {
  overview: overviewPage, miners: minersPage, miner: minerPage, nodes: nodesPage, pairs: pairsPage,
  conflicts: conflictsPage, discovery: discoveryPage, curtail: curtailPage, audit: auditPage, admin: adminPage,
};
let stopPage = null;
window.__hf = window.__hf || {};

function showLogin(msg) {
  if (stopPage) { stopPage(); stopPage = null; }
  session.user = session.role = session.csrf = "";
  document.body.dataset.role = "";
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  clear($("page")).hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = msg || "";
}

function signedIn(s) {
  session.user = s.user; session.role = s.role; session.csrf = s.csrf_token || "";
  document.body.dataset.role = s.role;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = s.user + " (" + s.role + ")";
  route();
}

// route renders the page the hash names (#/miners, #/miner/<id>).
async function route() {
  if (!session.role) return;
  const [path, query] = (location.hash.replace(/^#\/?/, "") || "overview").split("?");
  const [name, ...rest] = path.split("/");
  const page = pages[name] || overviewPage;
  if (stopPage) { stopPage(); stopPage = null; }
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
  const root = clear($("page"));
  root.hidden = false;
  root.dataset.page = name;
  window.__hf.routeAt = performance.now();
  try {
    stopPage = await page(root, rest.map(decodeURIComponent).join("/"), onError, new URLSearchParams(query || ""));
  } catch (e) { onError(e); }
}

// onError: signed out → sign-in; anything else is shown.
function onError(e) {
  if (e instanceof AuthError) { showLogin("Signed out: sign in again."); return; }
  toast(e.message || String(e), true);
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = $("user").value, password = $("password").value;
  $("password").value = "";
  $("login-error").textContent = "";
  try {
    const s = await api("/api/v1/session", { method: "POST", body: { user, password }, allow401: true });
    signedIn(s);
  } catch (e) {
    $("login-error").textContent = e.status === 401 ? "Wrong user name or password." :
      e.status === 429 ? "Too many failed sign-ins; wait a minute." : e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("/api/v1/session", { method: "DELETE" }); } catch (_) { /* signed out anyway */ }
  showLogin("");
});

window.addEventListener("hashchange", route);

// On load: an existing session cookie signs in without a form.
(async () => {
  try {
    const s = await api("/api/v1/session");
    signedIn({ user: s.user.replace(/^user:/, ""), role: s.role, csrf_token: s.csrf_token });
  } catch (e) {
    showLogin("");
  }
})();
