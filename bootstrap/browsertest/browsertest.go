package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Environment variables read here.
const (
	// EnvChromium names the browser to use: a path, or a name looked up in PATH.
	EnvChromium = "HASHFLEET_CHROMIUM"
	// EnvArtifacts is the directory screenshots are saved in.
	EnvArtifacts = "HASHFLEET_ARTIFACTS"
	// EnvCI set to 1 makes a missing browser a failure instead of a skip.
	EnvCI = "HASHFLEET_CI"
)

// Timeouts. They are generous: CI machines have 2 cores and the tests run under -race.
const (
	startTimeout      = 90 * time.Second
	closeTimeout      = 20 * time.Second
	actionTimeout     = 30 * time.Second
	pollInterval      = 50 * time.Millisecond
	maxBrowserOutput  = 32 << 10
	defaultWindowSize = "1440,1000"
)

// candidates are tried in order when HASHFLEET_CHROMIUM is not set.
var candidates = []string{"/usr/bin/chromium", "chromium", "chromium-browser"}

// ErrNoChromium is returned by FindChromium when no browser is installed.
var ErrNoChromium = errors.New("no Chromium found")

// FindChromium returns the browser to run: $HASHFLEET_CHROMIUM when set (a path or a name in PATH), else
// /usr/bin/chromium, else chromium or chromium-browser in PATH. With HASHFLEET_CHROMIUM set, explicit is
// true and err tells why it cannot be used.
func FindChromium() (path string, explicit bool, err error) {
	if v := os.Getenv(EnvChromium); v != "" {
		p, err := exec.LookPath(v)
		if err != nil {
			return "", true, fmt.Errorf("%s=%q: %w", EnvChromium, v, err)
		}
		return p, true, nil
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, false, nil
		}
	}
	return "", false, fmt.Errorf("%w (tried %s; names without a slash in PATH)", ErrNoChromium, strings.Join(candidates, ", "))
}

// stateKey carries the browser's *state in the context Start returns.
type stateKey struct{}

// state is what Start keeps for a browser: the test's log (closed at cleanup, so no goroutine logs after
// the test) and the page's console.
type state struct {
	t  testing.TB
	mu sync.Mutex
	// closed is set in cleanup; after it nothing is logged through t.
	closed  bool
	console []chromedp.ConsoleMessage
	output  tail
}

func (s *state) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.t.Logf("chromedp: "+format, args...)
	}
}

func (s *state) addConsole(m chromedp.ConsoleMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.console = append(s.console, m)
	if !s.closed {
		s.t.Logf("browser console %s", m)
	}
}

// tail keeps the last maxBrowserOutput bytes of the browser's stderr/stdout, for a failing test's log.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - maxBrowserOutput; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

// Start launches headless Chromium with a fresh profile, opens a blank tab and returns its chromedp
// context. Run actions on it with chromedp.Do/Run or the helpers here; derive per-action timeouts from it
// (context.WithTimeout), never cancel it: t.Cleanup closes the browser and waits for it to exit.
//
// Without a browser the test is skipped, or fails when HASHFLEET_CI=1 or HASHFLEET_CHROMIUM names one that
// cannot be found.
func Start(t testing.TB) context.Context {
	t.Helper()
	exe, explicit, err := FindChromium()
	switch {
	case err != nil && (explicit || os.Getenv(EnvCI) == "1"):
		t.Fatalf("browser test: %v (install the Debian package chromium: .ci/install-deps)", err)
	case err != nil:
		t.Skipf("browser test skipped: %v; install the Debian package chromium (.ci/install-deps) or set %s",
			err, EnvChromium)
	}
	// The profile directory is registered for removal before the browser's cleanup, so it is removed after
	// the browser has exited (cleanups run last-in first-out).
	profile := filepath.Join(t.TempDir(), "profile")

	st := &state{t: t}
	base, baseCancel := context.WithCancel(context.Background())
	allocCtx, allocCancel := chromedp.NewExecAllocator(base,
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"), // no desktop keyring lookups
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("window-size", defaultWindowSize),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(&st.output),
	)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(st.logf), chromedp.WithErrorf(st.logf))
	ctx = context.WithValue(ctx, stateKey{}, st)

	started := false
	var consoleDone chan struct{}
	consoleCtx, consoleCancel := context.WithCancel(ctx)
	t.Cleanup(func() {
		consoleCancel()
		if consoleDone != nil {
			<-consoleDone
		}
		if started {
			closeCtx, closeCancel := context.WithTimeout(ctx, closeTimeout)
			if err := chromedp.Cancel(closeCtx); err != nil && !errors.Is(err, context.Canceled) {
				st.logf("closing the browser: %v", err)
			}
			closeCancel()
		}
		cancel()      // ends the tab's goroutines; waits for the browser process
		allocCancel() // waits for the allocator's goroutines (output copier)
		baseCancel()
		// Chromium's helpers (zygote, crashpad) can outlive the browser for a moment and write into the
		// profile while t.TempDir removes it. chromedp kills them only for profiles it made itself.
		if n := killLeftovers(profile); n > 0 {
			st.logf("killed %d leftover browser processes", n)
		}
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
		if t.Failed() {
			if out := strings.TrimSpace(st.output.String()); out != "" {
				t.Logf("chromium output (last %d bytes):\n%s", maxBrowserOutput, out)
			}
		}
	})

	// The first Do starts the browser and binds it to ctx, so it cannot take a timeout context; a watchdog
	// cancels the whole tree instead if Chromium does not come up.
	begin := time.Now()
	watchdog := time.AfterFunc(startTimeout, baseCancel)
	err = chromedp.Do(ctx)
	stoppedInTime := watchdog.Stop()
	if err != nil {
		if !stoppedInTime {
			t.Fatalf("browser test: %s did not start within %s: %v", exe, startTimeout, err)
		}
		t.Fatalf("browser test: start %s: %v", exe, err)
	}
	started = true

	// Log the page's console (and keep it for Console/Exceptions) until cleanup.
	messages := chromedp.Console(consoleCtx)
	consoleDone = make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			st.addConsole(m)
		}
	}()
	st.logf("started %s in %s", exe, time.Since(begin).Round(time.Millisecond))
	return ctx
}

func stateOf(t testing.TB, ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	if st == nil {
		t.Fatal("browsertest: the context does not come from browsertest.Start")
	}
	return st
}

// Console returns the page's console messages so far (console API calls, uncaught exceptions, browser log
// entries such as failed requests), oldest first.
func Console(t testing.TB, ctx context.Context) []chromedp.ConsoleMessage {
	t.Helper()
	st := stateOf(t, ctx)
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), st.console...)
}

// Exceptions returns the uncaught exceptions and unhandled promise rejections of the page so far.
func Exceptions(t testing.TB, ctx context.Context) []chromedp.ConsoleMessage {
	t.Helper()
	var out []chromedp.ConsoleMessage
	for _, m := range Console(t, ctx) {
		if m.IsException() {
			out = append(out, m)
		}
	}
	return out
}

// Do runs actions with a timeout and fails the test, naming what, when one fails.
func Do(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(actx, actions...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value decoded into T.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(actx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript expression in the page every 50 ms until it is truthy, and fails the test,
// naming what, if it is not within timeout.
func WaitFor(t testing.TB, ctx context.Context, timeout time.Duration, what, expr string) {
	t.Helper()
	if err := Poll(ctx, timeout, expr); err != nil {
		t.Fatalf("browser: timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

// Poll is WaitFor returning the error, for a caller that adds its own diagnostics.
func Poll(ctx context.Context, timeout time.Duration, expr string) error {
	// The page polls; the context only guards against a browser that stops answering.
	actx, cancel := context.WithTimeout(ctx, timeout+actionTimeout)
	defer cancel()
	_, err := chromedp.Run(actx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(pollInterval), chromedp.WithPollingTimeout(timeout)))
	return err
}

// AcceptDialogs accepts every JavaScript dialog (alert, confirm, prompt) the page opens from now on, and
// sends its message on the returned channel (buffered; messages beyond its capacity are dropped). A
// confirm() blocks the click that opened it until it is answered, so the answer comes from this goroutine.
// It stops at cleanup.
func AcceptDialogs(t testing.TB, ctx context.Context) <-chan string {
	t.Helper()
	dctx, cancel := context.WithCancel(ctx)
	dialogs := chromedp.Events(dctx, page.JavascriptDialogOpening)
	msgs := make(chan string, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			_, err := chromedp.Call(dctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			if err != nil && dctx.Err() == nil {
				stateOf(t, ctx).logf("accepting dialog %q: %v", ev.Message, err)
			}
			select {
			case msgs <- ev.Message:
			default:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return msgs
}

// Screenshot scrolls the tab to the top and saves a full-page PNG of it as <dir>/<test name>-<name>.png, where dir is
// $HASHFLEET_ARTIFACTS or <repo>/artifacts/screenshots, logs the path and returns it. A failure to take or
// save it fails the test but lets it go on.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	dir, err := artifactsDir()
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Errorf("screenshot %s: artifacts directory: %v", name, err)
		return ""
	}
	actx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	// A full-page capture of a scrolled page (a click scrolls its target into view) draws sticky elements
	// at the scroll offset, so scroll to the top first.
	if err := chromedp.Do(actx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	png, err := chromedp.Run(actx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, fileName(t.Name())+"-"+fileName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	t.Logf("screenshot %s: %s", name, path)
	return path
}

// artifactsDir is $HASHFLEET_ARTIFACTS, else artifacts/screenshots in the module root above the working
// directory (a test runs in its package directory).
func artifactsDir() (string, error) {
	if d := os.Getenv(EnvArtifacts); d != "" {
		return filepath.Abs(d)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "artifacts", "screenshots"), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s; set %s", dir, EnvArtifacts)
		}
		d = parent
	}
}

// fileName makes s safe as a file name: subtest slashes and anything unusual become '_'.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
}

// killLeftovers kills, by pid, the processes still running with --user-data-dir=profile (that profile is
// this test's own) and looks again until none shows up for a few passes, as a child can fork while its
// parent exits. It returns how many it killed. Without /proc it does nothing.
func killLeftovers(profile string) int {
	want := []byte("--user-data-dir=" + profile)
	killed := 0
	deadline := time.Now().Add(5 * time.Second)
	for quiet := 0; quiet < 3 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return killed
		}
		found := 0
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err != nil {
				continue
			}
			for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
				if bytes.Equal(arg, want) {
					if p, err := os.FindProcess(pid); err == nil && p.Kill() == nil {
						found++
					}
					break
				}
			}
		}
		killed += found
		if found == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return killed
}
