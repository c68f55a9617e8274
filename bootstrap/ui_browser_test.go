package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashfleet/hashfleet/bootstrap/browsertest"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// A pool URL a miner reports, full of markup: the page must show it as text and create no element from it.
const (
	hostilePoolURL  = `stratum+tcp://<img src=x onerror="document.body.dataset.pwned='1'"><b>bold</b>&amp;:3333`
	hostilePoolUser = `w<i>orker</i>`
)

// signIn fills the sign-in form and waits for the navigation to appear.
func signIn(t *testing.T, ctx context.Context, user, password string) {
	t.Helper()
	browsertest.WaitFor(t, ctx, 15*time.Second, "the sign-in form", `!document.getElementById("login").hidden`)
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("user").value = ""`)
	browsertest.Do(t, ctx, "sign in as "+user,
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
}

// goTo opens a hash route and waits for its page.
func goTo(t *testing.T, ctx context.Context, route, page string) {
	t.Helper()
	browsertest.Eval[chromedp.Void](t, ctx, fmt.Sprintf(`location.hash = %s`, jsString(route)))
	browsertest.WaitFor(t, ctx, 15*time.Second, "page "+page, fmt.Sprintf(`document.getElementById("page").dataset.page === %s`, jsString(page)))
}

// TestOperatorUIInBrowser drives the UI in headless Chromium against combined mode and a simulated site over
// real sockets: a wrong password, sign-in, the overview's totals and charts, finding a miner by search,
// its detail page with populated charts, a miner-supplied pool URL shown as text, a bulk stop of 50 miners
// with its progress view while their rows turn stopped, and a viewer whom the UI and the API both refuse.
func TestOperatorUIInBrowser(t *testing.T) {
	const n, poll = 60, 300 * time.Millisecond
	s := startSite(t, n, poll, nil)
	evil := s.fleet.Miner("sim-11")
	added := len(evil.Snapshot().Pools)
	cgminerWrite(t, evil.Addr(), "addpool", strings.Join([]string{hostilePoolURL, hostilePoolUser, "x"}, ","))
	cgminerWrite(t, evil.Addr(), "switchpool", strconv.Itoa(added))
	waitFor(t, 20*time.Second, "all miners mining in the API", func() bool {
		ms := s.miners()
		if len(ms) != n {
			return false
		}
		for _, m := range ms {
			if m.State != "mining" {
				return false
			}
		}
		return true
	})
	if st := s.do("POST", "/api/v1/users", map[string]string{"name": "vera", "password": "vera-password-123", "role": "viewer"}, nil); st != 201 {
		t.Fatalf("create viewer: HTTP %d", st)
	}

	ctx := browsertest.Start(t)
	dialogs := browsertest.AcceptDialogs(t, ctx)
	browsertest.Do(t, ctx, "open the UI", chromedp.Navigate(s.base+"/"))

	signIn(t, ctx, "admin", "wrong-password")
	browsertest.WaitFor(t, ctx, 15*time.Second, "the wrong-password error",
		`document.getElementById("login-error").textContent === "Wrong user name or password."`)
	if v := browsertest.Eval[bool](t, ctx, `document.getElementById("nav").hidden && document.getElementById("password").value === "" &&
		sessionStorage.length === 0 && localStorage.length === 0`); !v {
		t.Fatal("after a wrong password the UI is shown, the field keeps the password or something is stored")
	}
	signIn(t, ctx, "admin", testToken)
	browsertest.WaitFor(t, ctx, 20*time.Second, "the overview with live totals",
		`document.querySelector('#totals [data-total="miners"] .big')?.textContent === "60"`)
	if v := browsertest.Eval[bool](t, ctx, `!document.cookie.includes("hashfleet_session") && !document.body.innerText.includes(`+jsString(testToken)+`)`); !v {
		t.Fatal("the session cookie is readable from script, or the token is in the page")
	}
	browsertest.WaitFor(t, ctx, 30*time.Second, "the fleet hashrate chart to have points",
		`Number(document.querySelector('#fleet-charts figure[data-metric="hashrate"] svg')?.dataset.points) > 0`)
	browsertest.Screenshot(t, ctx, "overview")

	// Find a miner by search, open it, see its charts populated.
	goTo(t, ctx, "#/miners", "miners")
	browsertest.WaitFor(t, ctx, 15*time.Second, "the first page", `document.querySelectorAll("#rows tr[data-miner]").length === 60`)
	browsertest.Do(t, ctx, "search sim-17", chromedp.SendKeys(chromedp.ID("search"), "sim-17"))
	browsertest.WaitFor(t, ctx, 15*time.Second, "one row for sim-17", `(() => {
		const rows = [...document.querySelectorAll("#rows tr[data-miner]")];
		return rows.length === 1 && rows[0].dataset.miner === "sim-17";
	})()`)
	t.Logf("search applied in %.0f ms in the page (input → rows, 120 ms debounce included)", browsertest.Eval[float64](t, ctx, `window.__hf.lastFilterMs`))
	browsertest.Screenshot(t, ctx, "search")
	browsertest.Do(t, ctx, "open sim-17", chromedp.Click(chromedp.CSS(`#rows tr[data-miner="sim-17"] a`)))
	browsertest.WaitFor(t, ctx, 15*time.Second, "sim-17's detail", `document.getElementById("miner-id")?.textContent === "sim-17"`)
	browsertest.Eval[chromedp.Void](t, ctx, `document.querySelector('button[data-range="15m"]').click()`)
	for _, m := range []string{"hashrate", "temp", "power", "fans"} {
		browsertest.WaitFor(t, ctx, 30*time.Second, "sim-17's "+m+" chart to have a line of at least 2 points",
			fmt.Sprintf(`Number(document.querySelector('#miner-charts figure[data-metric=%q] svg')?.dataset.points) >= 2`, m))
	}
	browsertest.WaitFor(t, ctx, 10*time.Second, "live values and pools", `document.querySelectorAll("#pools tbody tr").length > 0 &&
		document.querySelector("#live .state")?.textContent === "mining"`)
	browsertest.Screenshot(t, ctx, "miner-detail")

	// The hostile pool URL is text in the table.
	goTo(t, ctx, "#/miners?q=sim-11", "miners")
	poolCell := `document.querySelector('#rows tr[data-miner="sim-11"] td.pool')`
	browsertest.WaitFor(t, ctx, 15*time.Second, "sim-11's pool cell", fmt.Sprintf(`%s?.textContent === %s`, poolCell, jsString(hostilePoolURL)))
	if v := browsertest.Eval[bool](t, ctx, `document.images.length === 0 && document.body.dataset.pwned === undefined &&
		document.querySelectorAll("#rows b, #rows i, #rows img").length === 0`); !v {
		t.Error("markup from a miner's pool URL became elements")
	}

	// Bulk stop of 50 miners: a page of 50, select the page, stop, watch the progress and the rows.
	goTo(t, ctx, "#/miners", "miners")
	browsertest.WaitFor(t, ctx, 15*time.Second, "60 rows", `document.querySelectorAll("#rows tr[data-miner]").length === 60`)
	browsertest.Eval[chromedp.Void](t, ctx, `(() => { const s = document.getElementById("page-size"); s.value = "50"; s.dispatchEvent(new Event("change")); })()`)
	browsertest.WaitFor(t, ctx, 15*time.Second, "a page of 50", `document.querySelectorAll("#rows tr[data-miner]").length === 50`)
	picked := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll("#rows tr[data-miner]")].map((r) => r.dataset.miner)`)
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("select-page").click()`)
	browsertest.WaitFor(t, ctx, 5*time.Second, "50 selected", `document.getElementById("selected-count").textContent === "50 selected"`)
	issued := time.Now()
	browsertest.Eval[chromedp.Void](t, ctx, `document.querySelector('#bulk button[data-bulk="stop"]').click()`)
	select {
	case msg := <-dialogs:
		if msg != "stop 50 miners?" {
			t.Fatalf("dialog %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bulk stop opened no confirmation")
	}
	browsertest.WaitFor(t, ctx, 15*time.Second, "the progress view", `document.querySelector("#progress .progress") !== null`)
	browsertest.Screenshot(t, ctx, "bulk-progress")
	browsertest.WaitFor(t, ctx, 60*time.Second, "the bulk stop to succeed", `document.querySelector("#progress .progress")?.dataset.status === "succeeded"`)
	t.Logf("bulk stop of 50: succeeded %s after the click; progress: %q", time.Since(issued).Round(time.Millisecond),
		browsertest.Eval[string](t, ctx, `document.querySelector("#progress .progress").innerText`))
	pickedJS, _ := json.Marshal(picked)
	browsertest.WaitFor(t, ctx, 30*time.Second, "the 50 rows to show stopped", fmt.Sprintf(`(() => {
		const want = new Set(%s);
		const rows = [...document.querySelectorAll("#rows tr[data-miner]")].filter((r) => want.has(r.dataset.miner));
		return rows.length === 50 && rows.every((r) => r.querySelector("span.state")?.textContent === "stopped");
	})()`, pickedJS))
	browsertest.Screenshot(t, ctx, "bulk-stopped")
	// The stopped miner's page lists the stop in its command history (the node's gate audit).
	goTo(t, ctx, "#/miner/"+picked[0], "miner")
	browsertest.WaitFor(t, ctx, 20*time.Second, picked[0]+"'s command history", `[...document.querySelectorAll("#command-history tbody tr")]
		.some((r) => r.innerText.includes("user:admin"))`)
	for _, m := range s.fleet.Miners() {
		stops := 0
		for _, w := range m.WriteLog() {
			if w.Accepted && w.Command != "addpool" && w.Command != "switchpool" {
				stops++
			}
		}
		if want := slices.Contains(picked, m.ID()); (stops == 1) != want {
			t.Errorf("%s: %d writes, picked %v", m.ID(), stops, want)
		}
	}

	// Every other page renders (what combined mode serves; the rest says it is not served).
	for _, pg := range []struct{ route, page, marker string }{
		{"#/nodes", "nodes", "#nodes-table tbody tr"}, {"#/pairs", "pairs", "#pairs"}, {"#/conflicts", "conflicts", "#conflicts"},
		{"#/discovery", "discovery", "#scans"}, {"#/curtail", "curtail", "#curtail"}, {"#/audit", "audit", "#audit-node"},
		{"#/admin", "admin", "#users tbody tr"},
	} {
		goTo(t, ctx, pg.route, pg.page)
		browsertest.WaitFor(t, ctx, 10*time.Second, pg.page+" content", fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(pg.marker)))
	}
	// An API key: shown once at creation, never in the list.
	browsertest.Do(t, ctx, "create an API key",
		chromedp.SendKeys(chromedp.ID("key-name"), "grafana"),
		chromedp.Click(chromedp.CSS(`#key-form button[type=submit]`)))
	browsertest.WaitFor(t, ctx, 10*time.Second, "the new key", `/^hfk_[0-9a-f]+_/.test(document.querySelector("#new-key code")?.textContent ?? "")`)
	key := browsertest.Eval[string](t, ctx, `document.querySelector("#new-key code").textContent`)
	browsertest.WaitFor(t, ctx, 10*time.Second, "the key listed", `document.querySelectorAll("#api-keys tbody tr").length === 1`)
	if secret := key[strings.LastIndex(key, "_")+1:]; browsertest.Eval[bool](t, ctx, fmt.Sprintf(`document.getElementById("api-keys").innerText.includes(%s)`, jsString(secret))) {
		t.Error("the key's secret is in the key list")
	}
	var page struct {
		Total int `json:"total"`
	}
	if st := s.doAs(key, "GET", "/api/v1/miners?limit=1", &page); st != 200 || page.Total != n {
		t.Fatalf("the new viewer key: HTTP %d, %d miners", st, page.Total)
	}
	if st := s.doAs(key, "POST", "/api/v1/commands", nil); st != 403 {
		t.Fatalf("the viewer key's command: HTTP %d, want 403", st)
	}
	browsertest.Screenshot(t, ctx, "admin")

	// A viewer: no bulk bar, no actions; the API refuses a command sent from the page with the session.
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("logout").click()`)
	signIn(t, ctx, "vera", "vera-password-123")
	browsertest.WaitFor(t, ctx, 15*time.Second, "the viewer signed in", `document.body.dataset.role === "viewer"`)
	goTo(t, ctx, "#/miners", "miners")
	browsertest.WaitFor(t, ctx, 15*time.Second, "rows for the viewer", `document.querySelectorAll("#rows tr[data-miner]").length > 0`)
	if v := browsertest.Eval[bool](t, ctx, `getComputedStyle(document.getElementById("bulk")).display === "none" &&
		document.querySelector('#bulk button[data-bulk]') === null &&
		getComputedStyle(document.querySelector('#nav a[data-page="admin"]')).display === "none"`); !v {
		t.Error("the viewer sees bulk actions or the admin page")
	}
	goTo(t, ctx, "#/miner/sim-3", "miner")
	browsertest.WaitFor(t, ctx, 15*time.Second, "sim-3 for the viewer", `document.getElementById("miner-id")?.textContent === "sim-3"`)
	if v := browsertest.Eval[bool](t, ctx, `document.getElementById("actions").hidden && document.querySelector("#actions button") === null`); !v {
		t.Error("the viewer sees miner actions")
	}
	browsertest.Screenshot(t, ctx, "viewer")
	browsertest.Eval[chromedp.Void](t, ctx, `(async () => {
		const s = await (await fetch("/api/v1/session")).json();
		const r = await fetch("/api/v1/commands", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token},
			body: JSON.stringify({action: "reboot", miner_ids: ["sim-3"]})});
		window.__hf.viewerPost = r.status;
	})()`)
	browsertest.WaitFor(t, ctx, 10*time.Second, "the viewer's command reply", `window.__hf.viewerPost > 0`)
	if status := browsertest.Eval[float64](t, ctx, `window.__hf.viewerPost`); status != 403 {
		t.Fatalf("a viewer's command from the page: HTTP %v, want 403", status)
	}
	if w := s.fleet.Miner("sim-3").WriteLog(); slices.ContainsFunc(w, func(e sim.Write) bool { return e.Command == "restart" }) {
		t.Fatal("the viewer's reboot reached sim-3")
	}
	if ex := browsertest.Exceptions(t, ctx); len(ex) != 0 {
		t.Errorf("uncaught exceptions in the page: %v", ex)
	}
}

// cgminerWrite sends one CGMiner API write command straight to a simulated miner and requires success.
func cgminerWrite(t *testing.T, addr, command, param string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("%s to %s: %v", command, addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := json.Marshal(map[string]string{"command": command, "parameter": param})
	if _, err := conn.Write(req); err != nil {
		t.Fatalf("%s to %s: %v", command, addr, err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("%s to %s: %v", command, addr, err)
	}
	var reply struct {
		Status []struct {
			Status string `json:"STATUS"`
			Msg    string `json:"Msg"`
		} `json:"STATUS"`
	}
	if err := json.Unmarshal([]byte(strings.TrimRight(string(raw), "\x00")), &reply); err != nil {
		t.Fatalf("%s to %s: reply %q: %v", command, addr, raw, err)
	}
	if len(reply.Status) != 1 || reply.Status[0].Status != "S" {
		t.Fatalf("%s to %s refused: %q", command, addr, raw)
	}
}

// jsString quotes s as a JavaScript string literal (JSON is one).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// doAs calls the API with bearer (an API key), decoding a 2xx JSON reply into out.
func (s *site) doAs(bearer, method, path string, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode < 300 {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			s.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
}
