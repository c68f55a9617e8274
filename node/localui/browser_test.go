package localui_test

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

// TestBrowserBulkStop drives the local UI in headless Chromium over HTTPS: log in, select miners (select all,
// then three by hand), stop them, see their state change; then the live refresh shows a change made on the
// node and the link going down. Screenshots go to $HASHFLEET_ARTIFACTS or <repo>/artifacts/screenshots.
func TestBrowserBulkStop(t *testing.T) {
	h := newHarness(t, 12, func(c *localui.Config) { c.RefreshInterval = 200 * time.Millisecond })
	ctx := browsertest.Start(t) // after the server: the browser closes before the server stops

	// The certificate is self-signed; the HTTP tests pin it, the browser is told to accept it.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err := chromedp.Call(cctx, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true})
	cancel()
	if err != nil {
		t.Fatalf("accept the self-signed certificate: %v", err)
	}

	browsertest.Do(t, ctx, "open the local UI", chromedp.Navigate(h.base+"/"))
	browsertest.WaitFor(t, ctx, 15*time.Second, "the login form", `!!document.querySelector('[data-testid="login-form"]')`)
	browsertest.Screenshot(t, ctx, "login")
	browsertest.Do(t, ctx, "log in",
		chromedp.SendKeys(chromedp.ID("user"), adminUser),
		chromedp.SendKeys(chromedp.ID("password"), adminPass),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="miner-table"]`)))
	browsertest.WaitFor(t, ctx, 15*time.Second, "the miner table with 12 rows",
		`document.querySelectorAll('[data-testid="miner-row"]').length === 12`)
	if s := browsertest.Eval[string](t, ctx, `document.querySelector('[data-testid="link-banner"]').dataset.link`); s != "up" {
		t.Fatalf("banner says %q, want up", s)
	}

	// Select all, then none, then three.
	browsertest.Do(t, ctx, "select all", chromedp.Click(chromedp.CSS(`[data-testid="select-all"]`)))
	browsertest.WaitFor(t, ctx, 5*time.Second, "all 12 selected",
		`document.querySelector('[data-testid="selected-count"]').textContent === "12" &&
		 [...document.querySelectorAll('[data-testid="miner-select"]')].every(b => b.checked)`)
	browsertest.Do(t, ctx, "select none", chromedp.Click(chromedp.CSS(`[data-testid="select-all"]`)))
	browsertest.WaitFor(t, ctx, 5*time.Second, "none selected",
		`document.querySelector('[data-testid="selected-count"]').textContent === "0"`)
	for _, id := range []string{"sim-2", "sim-5", "sim-7"} {
		browsertest.Do(t, ctx, "select "+id, chromedp.Click(chromedp.CSS(`tr[data-miner-id="`+id+`"] [data-testid="miner-select"]`)))
	}
	browsertest.WaitFor(t, ctx, 5*time.Second, "3 selected",
		`document.querySelector('[data-testid="selected-count"]').textContent === "3" &&
		 document.querySelector('[data-testid="select-all"]').indeterminate`)
	browsertest.Screenshot(t, ctx, "selected")

	browsertest.Do(t, ctx, "stop the selected miners", chromedp.Click(chromedp.CSS(`[data-testid="bulk-stop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))
	stopped := `(() => {
		const st = id => document.querySelector('tr[data-miner-id="' + id + '"] [data-field="state"]')?.textContent;
		return ["sim-2","sim-5","sim-7"].every(id => st(id) === "stopped") &&
			["sim-1","sim-3","sim-12"].every(id => st(id) === "mining") &&
			!!document.querySelector('[data-testid="flash"]');
	})()`
	browsertest.WaitFor(t, ctx, 15*time.Second, "sim-2, sim-5, sim-7 stopped and the others mining", stopped)
	sub := h.site.Submitted()
	if len(sub) != 1 || strings.Join(sub[0].MinerIDs, ",") != "sim-2,sim-5,sim-7" {
		t.Fatalf("submitted %+v", sub)
	}
	browsertest.Screenshot(t, ctx, "stopped")

	// Live refresh: a change on the node and the link going down show without a reload.
	browsertest.Eval[bool](t, ctx, `(window.__marker = true)`)
	v, _ := h.site.Miner(t.Context(), "sim-1")
	v.HashrateTHs, v.PowerW, v.TempMaxC = 0, 0, 0
	v.State, v.Error = "unreachable", `<img src=x onerror="document.body.dataset.pwned=1">timeout`
	h.site.SetMiner(v)
	h.site.SetLink(localui.LinkView{Configured: true, Up: false, Since: h.clock.Now(), LastError: "stream reset"})
	browsertest.WaitFor(t, ctx, 15*time.Second, "sim-1 unreachable and the banner down, without a reload", `window.__marker === true &&
		document.querySelector('tr[data-miner-id="sim-1"] [data-field="state"]').textContent === "unreachable" &&
		document.querySelector('[data-testid="link-banner"]').dataset.link === "down"`)
	if v := browsertest.Eval[bool](t, ctx, `document.body.dataset.pwned === undefined && document.images.length === 0 &&
		document.querySelector('tr[data-miner-id="sim-1"] [data-field="error"]').textContent.startsWith("<img")`); !v {
		t.Fatal("a miner's error string became markup")
	}
	browsertest.Screenshot(t, ctx, "link-down")
	if ex := browsertest.Exceptions(t, ctx); len(ex) != 0 {
		t.Fatalf("page exceptions: %v", ex)
	}
	for _, m := range browsertest.Console(t, ctx) {
		if strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Refused to") {
			t.Errorf("CSP violation: %s", m.Text)
		}
	}
}
