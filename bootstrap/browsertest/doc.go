// Package browsertest drives a real headless Chromium from Go tests, through the Chrome DevTools Protocol
// (github.com/chromedp/chromedp), so a test can use the operator page as a person does: type, click, wait
// for the table, accept a confirm dialog, take a screenshot.
//
//	ctx := browsertest.Start(t)                 // skips when there is no Chromium (fails under HASHFLEET_CI=1)
//	browsertest.Do(t, ctx, "open the page", chromedp.Navigate(base+"/"))
//	browsertest.WaitFor(t, ctx, 10*time.Second, "the login form", `!document.getElementById("login").hidden`)
//	browsertest.Screenshot(t, ctx, "login")     // <repo>/artifacts/screenshots/<Test>-login.png
//
// Finding the browser: $HASHFLEET_CHROMIUM (a path or a name in PATH; set but not found is a test failure),
// else /usr/bin/chromium, else chromium or chromium-browser in PATH. With none of them the test is skipped
// with a message, unless HASHFLEET_CI=1 (set by .ci/run), where it fails: CI installs the Debian package
// chromium through .ci/install-deps.
//
// The browser runs with --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
// --disable-background-networking --disable-component-update --disable-sync and a fresh profile under
// t.TempDir(): on a machine without network, Chromium otherwise stalls on its own background requests.
// It talks to the test over a pipe (no debugging port). Everything Start creates — the process, its
// profile, the goroutines that log the page's console — is ended by t.Cleanup, before the test's earlier
// cleanups (servers the page talks to) run.
//
// Screenshots are full-page PNGs saved under $HASHFLEET_ARTIFACTS, or <repo>/artifacts/screenshots (the
// repo's artifacts/ is git-ignored); each saved path is logged with t.Log.
package browsertest
