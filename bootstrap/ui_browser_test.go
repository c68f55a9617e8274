package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashfleet/hashfleet/bootstrap/browsertest"
)

// A pool URL a miner reports, full of markup: the page must show it as text and create no element from it.
const (
	hostilePoolURL  = `stratum+tcp://<img src=x onerror="document.body.dataset.pwned='1'"><b>bold</b>&amp;:3333`
	hostilePoolUser = `w<i>orker</i>`
)

// TestOperatorPageInBrowser uses the embedded operator page in headless Chromium against combined mode and
// a simulated site over real sockets: sign-in (wrong token, then the right one), the live table, a reboot
// from a row button through the confirm dialog to the miner and back, and a miner-supplied pool URL shown
// as text.
func TestOperatorPageInBrowser(t *testing.T) {
	const n, poll = 30, 300 * time.Millisecond
	s := startSite(t, n, poll, nil)
	// sim-11 reports a hostile pool URL: added and made active on the miner itself, as someone with access
	// to it could, not through hashfleet.
	evil := s.fleet.Miner("sim-11")
	added := len(evil.Snapshot().Pools) // the new pool's number
	cgminerWrite(t, evil.Addr(), "addpool", strings.Join([]string{hostilePoolURL, hostilePoolUser, "x"}, ","))
	cgminerWrite(t, evil.Addr(), "switchpool", strconv.Itoa(added))
	// The site is up before the browser comes in, so the sign-in timing below is the page's, not start-up's.
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

	ctx := browsertest.Start(t) // after startSite: the browser is closed before the site stops
	dialogs := browsertest.AcceptDialogs(t, ctx)

	browsertest.Do(t, ctx, "open the operator page", chromedp.Navigate(s.base+"/"))
	browsertest.WaitFor(t, ctx, 15*time.Second, "the sign-in form",
		`!document.getElementById("login").hidden && document.getElementById("fleet").hidden`)

	// A wrong token: an error, no table, nothing kept in sessionStorage.
	browsertest.Do(t, ctx, "sign in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-the-token"),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	browsertest.WaitFor(t, ctx, 15*time.Second, "the wrong-token error",
		`document.getElementById("login-error").textContent === "Wrong token."`)
	if v := browsertest.Eval[bool](t, ctx, `document.getElementById("fleet").hidden && document.getElementById("token").value === "" &&
		sessionStorage.getItem("hashfleet.token") === null`); !v {
		t.Fatal("after a wrong token the table is shown, the field keeps the token or sessionStorage holds it")
	}

	// The right token. The page notes when the form is submitted and when the first row is in the table,
	// and the states sim-4's row shows over time (every re-render), so no state is missed between polls.
	browsertest.Eval[chromedp.Void](t, ctx, `(() => {
		const hf = window.__hf = {submitAt: 0, firstRowsAt: 0, sim4: []};
		document.addEventListener("submit", () => { hf.submitAt = performance.now(); }, true);
		new MutationObserver(() => {
			const rows = document.querySelectorAll("#rows tr[data-miner]");
			if (rows.length && !hf.firstRowsAt) hf.firstRowsAt = performance.now();
			const st = document.querySelector('#rows tr[data-miner="sim-4"] span.state');
			if (st && hf.sim4[hf.sim4.length - 1] !== st.textContent) hf.sim4.push(st.textContent);
		}).observe(document.getElementById("rows"), {childList: true});
	})()`)
	browsertest.Do(t, ctx, "type the admin token", chromedp.SendKeys(chromedp.ID("token"), testToken))
	signIn := time.Now()
	browsertest.Do(t, ctx, "sign in", chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	browsertest.WaitFor(t, ctx, 20*time.Second, "the first table render", `window.__hf.firstRowsAt > 0`)
	wall := time.Since(signIn)
	inPage := browsertest.Eval[float64](t, ctx, `window.__hf.firstRowsAt - window.__hf.submitAt`)
	t.Logf("first table render after sign-in: %.0f ms in the page (form submit → first rows in the table), "+
		"%s seen from the test (click → rows, with the CDP round trips)", inPage, wall.Round(time.Millisecond))

	allMining := fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll("#rows tr[data-miner]")];
		return rows.length === %d && rows.every((r) => r.querySelector("span.state")?.textContent === "mining");
	})()`, n)
	browsertest.WaitFor(t, ctx, 30*time.Second, fmt.Sprintf("%d rows, all mining", n), allMining)
	t.Logf("all %d rows mining %s after sign-in", n, time.Since(signIn).Round(time.Millisecond))
	if v := browsertest.Eval[bool](t, ctx, `sessionStorage.getItem("hashfleet.token") !== null &&
		document.getElementById("login").hidden && !document.getElementById("logout").hidden &&
		/\b30\b miners/.test(document.getElementById("summary").textContent)`); !v {
		t.Fatalf("signed-in page: token not kept, sign-in still shown or summary %q lacks 30 miners",
			browsertest.Eval[string](t, ctx, `document.getElementById("summary").textContent`))
	}

	// The hostile pool URL is text: the cell and its tooltip read it verbatim and no element came of it.
	poolCell := `document.querySelector('#rows tr[data-miner="sim-11"] td.pool')`
	browsertest.WaitFor(t, ctx, 20*time.Second, "sim-11's pool cell to show the miner's pool URL",
		fmt.Sprintf(`%s?.textContent === %s`, poolCell, jsString(hostilePoolURL)))
	if got := browsertest.Eval[string](t, ctx, poolCell+`.getAttribute("title")`); got != hostilePoolURL+" ("+hostilePoolUser+")" {
		t.Errorf("sim-11 pool tooltip %q, want %q", got, hostilePoolURL+" ("+hostilePoolUser+")")
	}
	if odd := browsertest.Eval[[]string](t, ctx, `[...document.querySelectorAll("#rows *")]
		.map((e) => e.tagName).filter((t) => !["TR", "TD", "SPAN", "BUTTON"].includes(t))`); len(odd) != 0 {
		t.Errorf("the table holds elements it never creates: %v (markup from a miner was parsed)", odd)
	}
	if v := browsertest.Eval[bool](t, ctx, `document.images.length === 0 && document.body.dataset.pwned === undefined`); !v {
		t.Error("an <img> from the pool URL is in the page, or its onerror ran")
	}
	browsertest.Screenshot(t, ctx, "after-login")

	// Reboot sim-4 from its row: confirm dialog, rebooting, back to mining, the command succeeded.
	rebootButton := chromedp.CSS(`#rows tr[data-miner="sim-4"] button[data-action="reboot"]`)
	clickUntilDialog(t, ctx, dialogs, rebootButton, "reboot sim-4?")
	// Each wait shows sim-4's row, the states it went through and the command notes if it times out.
	waitSim4 := func(timeout time.Duration, what, expr string) {
		t.Helper()
		if err := browsertest.Poll(ctx, timeout, expr); err != nil {
			t.Fatalf("timed out after %s waiting for %s: %v\nrow: %s\nstates seen: %v\ncommand notes: %q", timeout, what, err,
				browsertest.Eval[string](t, ctx, `document.querySelector('#rows tr[data-miner="sim-4"]')?.outerHTML ?? "none"`),
				browsertest.Eval[[]string](t, ctx, `window.__hf.sim4`),
				browsertest.Eval[string](t, ctx, `document.getElementById("commands").innerText`))
		}
	}
	waitSim4(20*time.Second, "sim-4's row to show rebooting", `window.__hf.sim4.includes("rebooting")`)
	waitSim4(40*time.Second, "sim-4's row back to mining after rebooting",
		`window.__hf.sim4.lastIndexOf("mining") > window.__hf.sim4.indexOf("rebooting")`)
	waitSim4(30*time.Second, "sim-4's last command to read succeeded",
		`document.querySelector('#rows tr[data-miner="sim-4"] td.cmd.succeeded')?.textContent.startsWith("reboot: succeeded")`)
	waitSim4(10*time.Second, "the command note",
		`[...document.querySelectorAll("#commands div")].some((d) => d.textContent.includes("reboot sim-4: succeeded"))`)
	t.Logf("sim-4 states seen in its row: %v", browsertest.Eval[[]string](t, ctx, `window.__hf.sim4`))
	browsertest.Screenshot(t, ctx, "after-reboot")

	// Exactly one restart reached sim-4; nothing else was written to any miner but sim-11's own pool changes.
	if w := s.fleet.Miner("sim-4").WriteLog(); len(w) != 1 || w[0].Command != "restart" || !w[0].Accepted {
		t.Errorf("sim-4 write log %+v, want exactly one accepted restart", w)
	}
	for _, m := range s.fleet.Miners() {
		switch w := m.WriteLog(); m.ID() {
		case "sim-4":
		case "sim-11":
			if len(w) != 2 || w[0].Command != "addpool" || w[1].Command != "switchpool" {
				t.Errorf("sim-11 write log %+v, want only the test's addpool and switchpool", w)
			}
		default:
			if len(w) != 0 {
				t.Errorf("%s got writes %+v; only sim-4 was commanded", m.ID(), w)
			}
		}
	}
	if ex := browsertest.Exceptions(t, ctx); len(ex) != 0 {
		t.Errorf("uncaught exceptions in the page: %v", ex)
	}
}

// clickUntilDialog clicks sel until the page opens a dialog, and checks its message. The table is
// re-rendered every 2 s, so a click can land on a row being replaced; a click that opened no dialog sent
// no command, so trying again cannot send a second one.
func clickUntilDialog(t *testing.T, ctx context.Context, dialogs <-chan string, sel chromedp.CSS, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := chromedp.Do(cctx, chromedp.Click(sel))
		cancel()
		wait := time.NewTimer(5 * time.Second)
		select {
		case msg := <-dialogs:
			wait.Stop()
			if msg != want {
				t.Fatalf("dialog %q, want %q", msg, want)
			}
			return
		case <-wait.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("clicking %s opened no dialog after %d attempts (last error: %v)", sel, attempt, err)
		}
		t.Logf("click %d on %s opened no dialog (error: %v); trying again", attempt, sel, err)
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
