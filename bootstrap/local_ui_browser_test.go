package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"
	"github.com/hashfleet/hashfleet/bootstrap/browsertest"
	"github.com/hashfleet/hashfleet/node/localui"
)

// TestLocalUIBrowserOnRealNode drives the node's own local UI (not the twin) in headless Chromium with the
// cloud down: log in, select three miners, stop them; the real simulators stop, the node's miner actors see
// it on their next poll and the page shows the change without a reload; the command log lists the command.
// Screenshots go to $HASHFLEET_ARTIFACTS or <repo>/artifacts/screenshots.
func TestLocalUIBrowserOnRealNode(t *testing.T) {
	s := startSplit(t, splitOpts{miners: 12, localUI: true,
		localUITune: func(c *localui.Config) { c.RefreshInterval = 300 * time.Millisecond }})
	if _, err := SetLocalAdmin(s.nodeDir, "admin", localPass); err != nil {
		t.Fatal(err)
	}
	s.stopServer()
	s.waitLink(false)
	base := strings.TrimSuffix("https://"+s.node.LocalUI.Addr().String(), "/")

	ctx := browsertest.Start(t)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := chromedp.Call(cctx, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true})
	cancel()
	if err != nil {
		t.Fatalf("accept the self-signed certificate: %v", err)
	}
	browsertest.Do(t, ctx, "open the node's local UI", chromedp.Navigate(base+"/"))
	browsertest.WaitFor(t, ctx, 15*time.Second, "the login form", `!!document.querySelector('[data-testid="login-form"]')`)
	browsertest.Do(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("user"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), localPass),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="miner-table"]`)))
	browsertest.WaitFor(t, ctx, 15*time.Second, "12 miners, all mining, and the link banner down",
		`document.querySelectorAll('[data-testid="miner-row"]').length === 12 &&
		 [...document.querySelectorAll('[data-field="state"]')].every(e => e.textContent === "mining") &&
		 document.querySelector('[data-testid="link-banner"]').dataset.link === "down"`)
	browsertest.Screenshot(t, ctx, "real-node-link-down")

	ms := s.fleet.Miners()
	pick := []string{ms[1].ID(), ms[4].ID(), ms[7].ID()}
	for _, id := range pick {
		browsertest.Do(t, ctx, "select "+id, chromedp.Click(chromedp.CSS(`tr[data-miner-id="`+id+`"] [data-testid="miner-select"]`)))
	}
	browsertest.WaitFor(t, ctx, 5*time.Second, "3 selected", `document.querySelector('[data-testid="selected-count"]').textContent === "3"`)
	browsertest.Screenshot(t, ctx, "real-node-selected")
	browsertest.Do(t, ctx, "stop the selected miners", chromedp.Click(chromedp.CSS(`[data-testid="bulk-stop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))
	stopped := `(() => {
		const st = id => document.querySelector('tr[data-miner-id="' + id + '"] [data-field="state"]')?.textContent;
		const picked = ` + jsList(pick) + `;
		const rows = [...document.querySelectorAll('[data-testid="miner-row"]')].map(r => r.dataset.minerId);
		return picked.every(id => st(id) === "stopped") && rows.filter(id => !picked.includes(id)).every(id => st(id) === "mining");
	})()`
	browsertest.WaitFor(t, ctx, 20*time.Second, "the three stopped and the others mining, without a reload", stopped)
	browsertest.Screenshot(t, ctx, "real-node-stopped")
	for i, m := range ms {
		want := !(i == 1 || i == 4 || i == 7)
		if m.Snapshot().Mining != want {
			t.Fatalf("simulator %s mining=%v, want %v", m.ID(), m.Snapshot().Mining, want)
		}
	}

	browsertest.Do(t, ctx, "open the command log", chromedp.Navigate(base+"/commands"))
	browsertest.WaitFor(t, ctx, 10*time.Second, "the stop in the command log", `document.body.textContent.includes("stop") &&
		document.body.textContent.includes("local:admin")`)
	browsertest.Screenshot(t, ctx, "real-node-command-log")

	// A curtailment event from the curtailment page's form, with the cloud still down: started, shown under
	// way with its stop control, stopped.
	const eventState = `document.querySelector('[data-testid="curtail-event"]')?.dataset.state`
	browsertest.Do(t, ctx, "open the curtailment page", chromedp.Navigate(base+"/curtailment"))
	browsertest.WaitFor(t, ctx, 10*time.Second, "the idle event and its start form",
		eventState+` === "idle" && !!document.querySelector('[data-testid="curtail-event-start-form"]')`)
	browsertest.Do(t, ctx, "start an event shedding 2 kW",
		chromedp.SendKeys(chromedp.CSS(`[data-testid="curtail-event-kw"]`), "2"),
		chromedp.Click(chromedp.CSS(`[data-testid="curtail-event-start"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))
	browsertest.WaitFor(t, ctx, 10*time.Second, "the event under way with its stop form",
		`["ramping", "holding"].includes(`+eventState+`) && !!document.querySelector('[data-testid="curtail-event-stop"]') &&
		 document.querySelector('[data-testid="curtail-event-target"]').textContent === "shed 2.0 kW"`)
	browsertest.Screenshot(t, ctx, "real-node-curtail-event")
	browsertest.Eval[chromedp.Void](t, ctx, `document.body.dataset.before = "stop"`)
	browsertest.Do(t, ctx, "stop the event", chromedp.Click(chromedp.CSS(`[data-testid="curtail-event-stop"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`body[data-before]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))
	browsertest.WaitFor(t, ctx, 10*time.Second, "the event releasing or done", `["releasing", "done"].includes(`+eventState+`)`)
	if ex := browsertest.Exceptions(t, ctx); len(ex) != 0 {
		t.Fatalf("page exceptions: %v", ex)
	}
}

func jsList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = `"` + id + `"`
	}
	return "[" + strings.Join(q, ",") + "]"
}
