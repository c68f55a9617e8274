package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashfleet/hashfleet/bootstrap/browsertest"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// TestEnrollNodeInBrowser: in split mode an admin mints an enrollment code in the UI, a node enrolls with it
// over the TLS gateway and prints its fingerprint, and the admin confirms the node by typing that
// fingerprint; a wrong one is refused by the page before any request. The node's enrollment then finishes.
//
// Then the node runs with three simulated miners, paired through the API: their rows read mining, and once
// the node stops (its stream down) every row turns stale with its last-seen age, never its old state.
func TestEnrollNodeInBrowser(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Count, cfg.Seed = 3, 11
	fleet, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	s := &splitSite{t: t, nodeDir: t.TempDir(), fleet: fleet}
	s.srvOpts = ServerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", GatewayListen: "127.0.0.1:0", AdminToken: testToken,
		DrainReconnectAfter: 100 * time.Millisecond, Logger: quietLogger()}
	s.startServer()

	ctx := browsertest.Start(t)
	browsertest.Do(t, ctx, "open the UI", chromedp.Navigate(s.base+"/"))
	signIn(t, ctx, "admin", testToken)
	browsertest.WaitFor(t, ctx, 15*time.Second, "signed in", `document.body.dataset.role === "admin"`)
	goTo(t, ctx, "#/nodes", "nodes")
	browsertest.Do(t, ctx, "mint a code for site barn-1",
		chromedp.SendKeys(chromedp.ID("code-site"), "barn-1"),
		chromedp.Click(chromedp.CSS(`#mint-form button[type=submit]`)))
	browsertest.WaitFor(t, ctx, 10*time.Second, "the code", `document.getElementById("code")?.textContent.length > 0`)
	code := browsertest.Eval[string](t, ctx, `document.getElementById("code").textContent`)

	out := &safeBuffer{}
	type result struct {
		nodeID string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		e, err := Enroll(context.Background(), EnrollOptions{Server: s.srv.GatewayAddr, Code: code, DataDir: s.nodeDir,
			CAFingerprint: s.srv.CA.Fingerprint(), Name: "barn-node", PollInterval: 20 * time.Millisecond, Logger: quietLogger()}, out)
		done <- result{e.NodeID, err}
	}()
	var printed string
	waitFor(t, 15*time.Second, "the node to print its fingerprint", func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if f, ok := strings.CutPrefix(l, "node identity fingerprint: "); ok {
				printed = strings.TrimSpace(f)
				return true
			}
		}
		return false
	})
	browsertest.WaitFor(t, ctx, 15*time.Second, "the pending node", `document.querySelector("#pending-table form.confirm") !== null`)
	if v := browsertest.Eval[string](t, ctx, `document.querySelector("#pending-table code").textContent`); v != printed {
		t.Fatalf("the UI shows fingerprint %q, the node printed %q", v, printed)
	}
	browsertest.Screenshot(t, ctx, "pending")

	// A wrong fingerprint: the page refuses and the node stays pending.
	browsertest.Do(t, ctx, "type a wrong fingerprint",
		chromedp.SendKeys(chromedp.CSS(`#pending-table input.fingerprint`), "SHA256:not-the-node"),
		chromedp.Click(chromedp.CSS(`#pending-table form.confirm button`)))
	browsertest.WaitFor(t, ctx, 5*time.Second, "the mismatch warning", `document.getElementById("toast").textContent.includes("does not match")`)
	select {
	case r := <-done:
		t.Fatalf("enrollment finished after a wrong fingerprint: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	browsertest.Eval[chromedp.Void](t, ctx, `document.querySelector("#pending-table input.fingerprint").value = ""`)
	browsertest.Do(t, ctx, "type the printed fingerprint and confirm",
		chromedp.SendKeys(chromedp.CSS(`#pending-table input.fingerprint`), printed),
		chromedp.Click(chromedp.CSS(`#pending-table form.confirm button`)))
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("enroll: %v\n%s", r.err, out.String())
		}
		t.Logf("node %s enrolled after confirmation in the UI", r.nodeID)
		s.nodeID = r.nodeID
	case <-time.After(20 * time.Second):
		t.Fatalf("enroll did not finish after confirmation:\n%s", out.String())
	}
	browsertest.WaitFor(t, ctx, 10*time.Second, "no node pending", `document.querySelector("#pending-table") === null`)
	browsertest.Screenshot(t, ctx, "confirmed")

	s.startNode()
	s.pairAll()
	goTo(t, ctx, "#/miners", "miners")
	rowsAre := func(what, test string) {
		t.Helper()
		browsertest.WaitFor(t, ctx, 20*time.Second, what, `(() => {
			const st = [...document.querySelectorAll("#rows tr[data-miner] span.state")];
			return st.length === 3 && st.every((s) => `+test+`);
		})()`)
	}
	rowsAre("three rows mining", `s.textContent === "mining"`)
	s.stopNode()
	rowsAre("three rows stale with their age after the node's stream went down",
		`s.classList.contains("stale") && /^stale · \d+s ago$/.test(s.textContent)`)
	if v := browsertest.Eval[bool](t, ctx, `[...document.querySelectorAll("#rows tr[data-miner]")].every((r) => r.children[3].textContent === "–")`); !v {
		t.Error("a stale row still shows a hashrate")
	}
	browsertest.Screenshot(t, ctx, "stale")
	if ex := browsertest.Exceptions(t, ctx); len(ex) != 0 {
		t.Errorf("uncaught exceptions in the page: %v", ex)
	}
}
