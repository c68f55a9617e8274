package browsertest

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

const testPage = `<!doctype html><title>t</title>
<button id="ask" onclick="document.title = String(confirm('sure?'))">ask</button>
<script>console.log("hello from the page")</script>`

// TestBrowserLifecycle drives a page (one confirm dialog, one console message), takes a screenshot, and checks
// that the cleanups leave no goroutine and no browser behind.
func TestBrowserLifecycle(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvArtifacts, dir)
	var shot string
	t.Run("page", func(t *testing.T) {
		ctx := Start(t)
		dialogs := AcceptDialogs(t, ctx)
		Do(t, ctx, "open the test page", chromedp.Navigate("data:text/html,"+url.PathEscape(testPage)))
		WaitFor(t, ctx, 10*time.Second, "the page to load", `document.readyState === "complete"`)
		Do(t, ctx, "click ask", chromedp.Click(chromedp.ID("ask")))
		select {
		case msg := <-dialogs:
			if msg != "sure?" {
				t.Fatalf("dialog message %q, want %q", msg, "sure?")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no dialog after the click")
		}
		WaitFor(t, ctx, 10*time.Second, "the accepted confirm", `document.title === "true"`)
		shot = Screenshot(t, ctx, "page")
		// The console goroutine may lag the page a little.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			msgs := Console(t, ctx)
			if slices.ContainsFunc(msgs, func(m chromedp.ConsoleMessage) bool { return m.Text == "hello from the page" }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("console messages %v lack the page's console.log", msgs)
			}
		}
		if ex := Exceptions(t, ctx); len(ex) != 0 {
			t.Errorf("page exceptions: %v", ex)
		}
	})
	if shot == "" {
		if !t.Failed() {
			t.Skip("no browser")
		}
		return
	}
	if filepath.Dir(shot) != dir {
		t.Errorf("screenshot saved at %s, want it in %s", shot, dir)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot %s is not a PNG (err %v)", shot, err)
	}
	if !strings.HasPrefix(filepath.Base(shot), "TestBrowserLifecycle_page-page") {
		t.Errorf("screenshot name %s does not start with the test name", filepath.Base(shot))
	}
	goleak.VerifyNone(t)
}

func TestFindChromiumOverride(t *testing.T) {
	t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-browser"))
	if _, explicit, err := FindChromium(); err == nil || !explicit {
		t.Fatalf("FindChromium with a missing override: explicit %v, err %v; want an error", explicit, err)
	}
}

// TestMissingBrowserSkips: with no browser, Start skips the test (HASHFLEET_CI unset) and says why.
func TestMissingBrowserSkips(t *testing.T) {
	t.Setenv(EnvChromium, "")
	t.Setenv(EnvCI, "")
	saved := candidates
	candidates = []string{filepath.Join(t.TempDir(), "no-chromium")}
	t.Cleanup(func() { candidates = saved })
	reached := false
	var inner *testing.T
	ok := t.Run("start", func(t *testing.T) {
		inner = t
		Start(t)
		reached = true
	})
	if !ok || reached || !inner.Skipped() {
		t.Fatalf("Start without a browser: passed %v, went on %v, skipped %v; want a skip", ok, reached, inner.Skipped())
	}
}
