package bootstrap

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/bootstrap/browsertest"
	"github.com/hashfleet/hashfleet/miners/sim"
)

// startFastSite is combined mode on a business clock run at 10× real time, so a curtailment event's ramp
// and its verification (60 s settle time by default) pass in seconds while the browser watches.
func startFastSite(t *testing.T, count int) *site {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC())
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				clk.Advance(100 * time.Millisecond)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done }) // last: timers of the stopping process still fire
	cfg := sim.DefaultConfig()
	cfg.Count, cfg.Seed = count, 7
	fleet, err := sim.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	c, err := StartCombined(context.Background(), CombinedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AdminToken: testToken,
		Devices: fleet.Devices(), PollInterval: 2 * time.Second, Clock: clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop combined: %v", err)
		}
	})
	return &site{t: t, fleet: fleet, c: c, base: "http://" + c.HTTPAddr}
}

// TestCurtailmentPageInBrowser drives the cloud UI's curtailment page in headless Chromium against combined
// mode (the local node is every site's node) and a simulated site over real sockets: the site's policy is
// shown read-only; an operator starts a full curtailment event from the page and sees its state and the
// curtailed miners appear while the miners really sleep, then stops it; a viewer sees the state without the
// controls and the API refuses the viewer's event sent from the page.
func TestCurtailmentPageInBrowser(t *testing.T) {
	const n = 6
	s := startFastSite(t, n)
	waitFor(t, 20*time.Second, "all miners mining", func() bool {
		ms := s.miners()
		for _, m := range ms {
			if m.State != "mining" {
				return false
			}
		}
		return len(ms) == n
	})
	pol := map[string]any{"rules": map[string]any{}, "trusted_pools": []string{"stratum+tcp://*.trusted-pool.example:3333"}}
	if st := s.do("PUT", "/api/v1/sites/main/policy", pol, nil); st != 200 {
		t.Fatalf("PUT policy: HTTP %d", st)
	}
	if st := s.do("POST", "/api/v1/users", map[string]string{"name": "vic", "password": "vic-password-1234", "role": "viewer"}, nil); st != 201 {
		t.Fatalf("create viewer: HTTP %d", st)
	}

	ctx := browsertest.Start(t)
	dialogs := browsertest.AcceptDialogs(t, ctx)
	browsertest.Do(t, ctx, "open the UI", chromedp.Navigate(s.base+"/"))
	signIn(t, ctx, "admin", testToken)
	browsertest.WaitFor(t, ctx, 15*time.Second, "signed in", `document.body.dataset.role === "admin"`)
	goTo(t, ctx, "#/curtail/main", "curtail")
	browsertest.WaitFor(t, ctx, 15*time.Second, "the policy and the idle node",
		`(document.getElementById("curtail-policy-json")?.textContent ?? "").includes("trusted-pool.example") &&
		 document.querySelectorAll("#curtail-table tbody tr").length === 1 && document.getElementById("curtail-stop").hidden`)

	// A bad target is refused in the page, nothing sent.
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("curtail-start-btn").click()`)
	browsertest.WaitFor(t, ctx, 5*time.Second, "the missing-target message", `document.getElementById("toast").textContent.includes("kW to shed")`)

	browsertest.Eval[chromedp.Void](t, ctx, `(() => { const f = document.getElementById("curtail-full"); f.checked = true; f.dispatchEvent(new Event("change")); })()`)
	// An end time in the past is refused in the page, nothing sent.
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("toast").textContent = ""; document.getElementById("curtail-end").value = "2001-01-01T00:00"`)
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("curtail-start-btn").click()`)
	browsertest.WaitFor(t, ctx, 5*time.Second, "the past end time refused", `document.getElementById("toast").textContent.includes("in the future")`)
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("curtail-end").value = ""`)
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("curtail-start-btn").click()`)
	select {
	case d := <-dialogs:
		t.Logf("dialog: %s", d)
	case <-time.After(10 * time.Second):
		t.Fatal("no confirmation asked before starting the event")
	}
	if err := browsertest.Poll(ctx, 30*time.Second, fmt.Sprintf(`(() => {
		const r = document.querySelector("#curtail-table tbody tr");
		if (!r) return false;
		const c = [...r.cells].map((x) => x.textContent);
		return r.querySelector("[data-state]").dataset.state === "holding" && c[4] === "full" && c[6] === "%d" && c[7] === "none";
	})()`, n)); err != nil {
		var cv siteCurtailView
		s.do("GET", "/api/v1/sites/main/curtail", nil, &cv)
		t.Fatalf("the event holding with every miner curtailed: %v\npage: %s\nAPI: %+v", err,
			browsertest.Eval[string](t, ctx, `document.getElementById("curtail").innerText`), cv)
	}
	for _, m := range s.fleet.Miners() {
		if !m.Snapshot().Sleeping {
			t.Errorf("%s is not asleep while the page shows the site curtailed", m.ID())
		}
	}
	if v := browsertest.Eval[bool](t, ctx, `!document.getElementById("curtail-stop").hidden &&
		document.getElementById("curtail-summary").textContent.includes("miners curtailed")`); !v {
		t.Error("no stop control or summary while the event runs")
	}
	browsertest.Screenshot(t, ctx, "curtail-holding")

	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("curtail-stop").click()`)
	<-dialogs
	browsertest.WaitFor(t, ctx, 30*time.Second, "the event releasing or done",
		`["releasing", "done"].includes(document.querySelector("#curtail-table [data-state]")?.dataset.state)`)
	browsertest.Screenshot(t, ctx, "curtail-stopped")

	// The viewer: the state, no controls; the API refuses an event sent from the page.
	browsertest.Eval[chromedp.Void](t, ctx, `document.getElementById("logout").click()`)
	signIn(t, ctx, "vic", "vic-password-1234")
	browsertest.WaitFor(t, ctx, 15*time.Second, "the viewer signed in", `document.body.dataset.role === "viewer"`)
	goTo(t, ctx, "#/curtail/main", "curtail")
	browsertest.WaitFor(t, ctx, 15*time.Second, "the node's state for the viewer", `document.querySelector("#curtail-table [data-state]") !== null`)
	if v := browsertest.Eval[bool](t, ctx, `document.getElementById("curtail-start").hidden &&
		getComputedStyle(document.getElementById("curtail-start")).display === "none" && document.getElementById("curtail-stop") === null`); !v {
		t.Error("the viewer sees curtailment controls")
	}
	browsertest.Screenshot(t, ctx, "curtail-viewer")
	browsertest.Eval[chromedp.Void](t, ctx, `(async () => {
		const s = await (await fetch("/api/v1/session")).json();
		const r = await fetch("/api/v1/sites/main/curtail", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token},
			body: JSON.stringify({full: true})});
		window.__hf.viewerCurtail = r.status;
	})()`)
	browsertest.WaitFor(t, ctx, 10*time.Second, "the viewer's curtail reply", `window.__hf.viewerCurtail > 0`)
	if st := browsertest.Eval[float64](t, ctx, `window.__hf.viewerCurtail`); st != 403 {
		t.Fatalf("a viewer's curtailment from the page: HTTP %v, want 403", st)
	}
	if ex := browsertest.Exceptions(t, ctx); len(ex) != 0 {
		t.Errorf("uncaught exceptions in the page: %v", ex)
	}
}
