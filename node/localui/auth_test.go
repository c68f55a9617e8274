package localui_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/localui"
)

func TestWrongPasswordRefused(t *testing.T) {
	h := newHarness(t, 3)
	c := h.client("")
	for _, tc := range []struct{ user, pass string }{
		{adminUser, "wrong password here"},
		{"root", adminPass},
		{adminUser, ""},
		{strings.Repeat("a", 500), adminPass},
	} {
		r := c.tryLogin(tc.user, tc.pass)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Wrong user name or password") {
			t.Fatalf("login %q: %d %s", tc.user, r.status, r.body)
		}
		if c.sessionCookie() != nil {
			t.Fatal("a failed login set a session cookie")
		}
	}
	if r := c.get("/"); r.status != http.StatusSeeOther || r.location() != "/login" {
		t.Fatalf("GET / after failed logins: %d %q", r.status, r.location())
	}
	if r := c.get("/api/local/miners"); r.status != http.StatusUnauthorized {
		t.Fatalf("API after failed logins: %d", r.status)
	}
}

func TestLoginSessionCookie(t *testing.T) {
	h := newHarness(t, 3)
	c := h.client("")
	page := c.get("/login")
	f := hidden(page.body)
	r := c.postForm("/login", url.Values{"csrf_token": {f["csrf_token"]}, "user": {adminUser}, "password": {adminPass}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	var sc *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == localui.SessionCookie {
			sc = ck
		}
	}
	if sc == nil {
		t.Fatal("no session cookie")
	}
	if !sc.HttpOnly || !sc.Secure || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Domain != "" ||
		!strings.HasPrefix(sc.Name, "__Host-") || len(sc.Value) < 43 {
		t.Fatalf("session cookie %+v", sc)
	}
	if r.tls == nil || r.tls.Version != tls.VersionTLS13 {
		t.Fatalf("negotiated %v, want TLS 1.3", r.tls)
	}
	home := c.get("/")
	if home.status != http.StatusOK || !strings.Contains(home.body, `data-testid="miner-table"`) {
		t.Fatalf("home: %d", home.status)
	}
	for _, hdr := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if home.header.Get(hdr) == "" {
			t.Errorf("missing %s", hdr)
		}
	}
	if cc := home.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	// Logout ends the session server-side: replaying the old cookie does not work.
	old := c.sessionCookie()
	lo := c.postForm("/logout", url.Values{"csrf_token": {hidden(home.body)["csrf_token"]}})
	if lo.status != http.StatusSeeOther || lo.location() != "/login" {
		t.Fatalf("logout: %d %q", lo.status, lo.location())
	}
	replay := h.client("")
	u, _ := url.Parse(h.base)
	replay.jar.SetCookies(u, []*http.Cookie{old})
	if r := replay.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("old session cookie after logout: %d", r.status)
	}
}

func TestTLSVersions(t *testing.T) {
	h := newHarness(t, 1)
	old := h.client("", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 })
	if _, err := old.c.Get(h.base + "/login"); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	tls12 := h.client("", func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	if r := tls12.get("/login"); r.status != http.StatusOK || r.tls.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 client: %d", r.status)
	}
	// A client that does not pin this certificate (system roots only) refuses the connection.
	unpinned := &http.Client{Timeout: 5 * time.Second}
	defer unpinned.CloseIdleConnections()
	if _, err := unpinned.Get(h.base + "/login"); err == nil {
		t.Fatal("the self-signed certificate verified against the system roots")
	}
}

// TestLockoutBackoff: 4 failures are free, the 5th locks for 30s, the next failure after it for 1m; while
// locked even the right password is refused without being checked; a success clears the count.
func TestLockoutBackoff(t *testing.T) {
	h := newHarness(t, 1)
	c := h.client("")
	for i := 1; i <= 4; i++ {
		if r := c.tryLogin(adminUser, "wrong password "+string(rune('a'+i))); r.status != http.StatusUnauthorized || r.header.Get("Retry-After") != "" {
			t.Fatalf("failure %d: %d retry %q", i, r.status, r.header.Get("Retry-After"))
		}
	}
	r := c.tryLogin(adminUser, "wrong password e")
	if r.status != http.StatusUnauthorized || r.header.Get("Retry-After") != "30" || !strings.Contains(r.body, "try again in 30s") {
		t.Fatalf("5th failure: %d retry %q", r.status, r.header.Get("Retry-After"))
	}
	locked := func(wantRetry string) {
		t.Helper()
		r := c.tryLogin(adminUser, adminPass)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != wantRetry || c.sessionCookie() != nil {
			t.Fatalf("right password while locked: %d retry %q (want 429, %s)", r.status, r.header.Get("Retry-After"), wantRetry)
		}
	}
	locked("30")
	h.clock.Advance(29 * time.Second)
	locked("1")
	h.clock.Advance(time.Second)
	// Unlocked, but the count goes on: the next failure locks for twice as long.
	r = c.tryLogin(adminUser, "wrong again")
	if r.status != http.StatusUnauthorized || r.header.Get("Retry-After") != "60" {
		t.Fatalf("6th failure: %d retry %q", r.status, r.header.Get("Retry-After"))
	}
	locked("60")
	h.clock.Advance(59 * time.Second)
	locked("1")
	h.clock.Advance(time.Second)
	c.login()
	// The success cleared the count: a new failure is free again.
	other := h.client("")
	if r := other.tryLogin(adminUser, "wrong once more"); r.status != http.StatusUnauthorized || r.header.Get("Retry-After") != "" {
		t.Fatalf("failure after a success: %d retry %q", r.status, r.header.Get("Retry-After"))
	}
}

// TestLockoutPerUserAndPerAddress: failures lock the user out from every address, and an address out for
// every user name.
func TestLockoutPerUserAndPerAddress(t *testing.T) {
	h := newHarness(t, 1)
	attacker := h.client("127.0.0.2")
	for i := range 5 {
		attacker.tryLogin(adminUser, "guess number "+string(rune('a'+i)))
	}
	legit := h.client("127.0.0.3")
	if r := legit.tryLogin(adminUser, adminPass); r.status != http.StatusTooManyRequests {
		t.Fatalf("locked user from another address: %d", r.status)
	}
	h.clock.Advance(31 * time.Second)
	legit.login()

	sprayer := h.client("127.0.0.4")
	for i := range 5 {
		sprayer.tryLogin("user"+string(rune('a'+i)), "guess number one")
	}
	if r := sprayer.tryLogin(adminUser, adminPass); r.status != http.StatusTooManyRequests {
		t.Fatalf("locked address, right credentials: %d", r.status)
	}
	h.client("127.0.0.5").login() // the admin is not locked by someone spraying other names
}

func TestCSRF(t *testing.T) {
	h := newHarness(t, 5)
	c := h.client("")
	c.login()
	f := c.form("/")
	good := url.Values{"csrf_token": {f["csrf_token"]}, "idempotency_key": {f["idempotency_key"]},
		"action": {"stop"}, "scope": {"selected"}, "miner_id": {"sim-1"}}
	for name, csrf := range map[string][]string{
		"missing": nil,
		"wrong":   {"AAAA" + f["csrf_token"][4:]},
		"empty":   {""},
		"other session's": {func() string {
			o := h.client("")
			o.login()
			return o.form("/")["csrf_token"]
		}()},
	} {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		if csrf == nil {
			v.Del("csrf_token")
		} else {
			v["csrf_token"] = csrf
		}
		if r := c.postForm("/commands", v); r.status != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
			t.Errorf("form with %s CSRF token: %d", name, r.status)
		}
		if r := c.postForm("/curtailment", url.Values{"csrf_token": csrf, "op": {"start"}, "idempotency_key": {"k1"}}); r.status != http.StatusForbidden {
			t.Errorf("curtailment with %s CSRF token: %d", name, r.status)
		}
	}
	// The API takes the token only in its header, never from the body or a cookie.
	body := map[string]any{"miner_ids": []string{"sim-1"}, "action": "stop", "idempotency_key": "api-1"}
	if r := c.postJSON("/api/local/commands", body, ""); r.status != http.StatusForbidden {
		t.Errorf("API without CSRF header: %d", r.status)
	}
	if r := c.postJSON("/api/local/commands", body, "wrong"); r.status != http.StatusForbidden {
		t.Errorf("API with a wrong CSRF header: %d", r.status)
	}
	// Logout is a write too.
	if r := c.postForm("/logout", url.Values{}); r.status != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d", r.status)
	}
	// A cross-site origin is refused even with the right token.
	if r := c.postForm("/commands", good, map[string]string{"Origin": "https://evil.example"}); r.status != http.StatusForbidden {
		t.Errorf("cross-origin form: %d", r.status)
	}
	if r := c.postForm("/commands", good, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.status != http.StatusForbidden {
		t.Errorf("Sec-Fetch-Site cross-site: %d", r.status)
	}
	if n := h.site.SubmitCalls(); n != 0 {
		t.Fatalf("%d submissions reached the node through refused requests", n)
	}
	// The login form has its own token.
	lc := h.client("")
	if r := lc.postForm("/login", url.Values{"user": {adminUser}, "password": {adminPass}}); r.status != http.StatusForbidden || lc.sessionCookie() != nil {
		t.Fatalf("login without its CSRF token: %d", r.status)
	}
	// And with everything right, it goes through.
	if r := c.postForm("/commands", good, map[string]string{"Origin": h.base}); r.status != http.StatusSeeOther {
		t.Fatalf("good form: %d %s", r.status, r.body)
	}
	if n := h.site.SubmitCalls(); n != 1 {
		t.Fatalf("%d submissions, want 1", n)
	}
}

func TestExpiredSession(t *testing.T) {
	h := newHarness(t, 2)
	c := h.client("")
	c.login()
	csrf := c.apiLoginFromPage()
	h.clock.Advance(30 * time.Minute) // the idle timeout
	if r := c.get("/"); r.status != http.StatusSeeOther || r.location() != "/login" {
		t.Fatalf("idle session: %d %q", r.status, r.location())
	}
	if r := c.get("/miners/sim-2"); r.status != http.StatusSeeOther || r.location() != "/login?next="+url.QueryEscape("/miners/sim-2") {
		t.Fatalf("idle session, detail page: %d %q", r.status, r.location())
	}
	if r := c.postJSON("/api/local/commands", map[string]any{"all": true, "action": "stop", "idempotency_key": "x"}, csrf); r.status != http.StatusUnauthorized {
		t.Fatalf("API with an idle session: %d", r.status)
	}
	// Logging in again goes back to where the operator was.
	r := c.get("/login?next=" + url.QueryEscape("/miners/sim-2"))
	f := hidden(r.body)
	r = c.postForm("/login", url.Values{"csrf_token": {f["csrf_token"]}, "next": {f["next"]}, "user": {adminUser}, "password": {adminPass}})
	if r.status != http.StatusSeeOther || r.location() != "/miners/sim-2" {
		t.Fatalf("login with next: %d %q", r.status, r.location())
	}
	// An active session still ends at its absolute lifetime (12h).
	for range 35 {
		h.clock.Advance(20 * time.Minute)
		if r := c.get("/api/local/session"); r.status != http.StatusOK {
			t.Fatalf("active session ended early: %d", r.status)
		}
	}
	h.clock.Advance(20 * time.Minute)
	if r := c.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("session past its lifetime: %d", r.status)
	}
	if h.site.SubmitCalls() != 0 {
		t.Fatal("an expired session submitted a command")
	}
}

// apiLoginFromPage reads the session's CSRF token through the API (the session made by the form login).
func (c *client) apiLoginFromPage() string {
	c.h.t.Helper()
	r := c.get("/api/local/session")
	if r.status != http.StatusOK {
		c.h.t.Fatalf("session: %d", r.status)
	}
	return between(r.body, `"csrf_token":"`, `"`)
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

func TestCloudCredentialsRefused(t *testing.T) {
	h := newHarness(t, 2)
	anon := h.client("")
	cloudKey := "hfk_live_0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
	}{
		{"GET", "/api/local/miners", map[string]string{"Authorization": "Bearer " + cloudKey}},
		{"GET", "/", map[string]string{"Authorization": "Bearer " + cloudKey}},
		{"GET", "/api/local/miners", map[string]string{"Authorization": "Basic YWRtaW46Y29ycmVjdA=="}},
		{"GET", "/api/local/miners", map[string]string{"X-Api-Key": cloudKey}},
		{"GET", "/api/local/miners?api_key=" + cloudKey, nil},
		{"GET", "/?access_token=" + cloudKey, nil},
		{"POST", "/api/local/commands", map[string]string{"Authorization": "Bearer " + cloudKey, "Content-Type": "application/json"}},
	} {
		r := anon.request(tc.method, tc.path, strings.NewReader(`{"all":true,"action":"stop","idempotency_key":"k"}`), tc.hdr)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Cloud credentials") {
			t.Errorf("%s %s %v: %d %s", tc.method, tc.path, tc.hdr, r.status, r.body)
		}
	}
	// A bearer token is refused even next to a valid session: it is never an alternative credential.
	c := h.client("")
	csrf := c.apiLogin()
	r := c.postJSON("/api/local/commands", map[string]any{"all": true, "action": "stop", "idempotency_key": "k"}, csrf,
		map[string]string{"Authorization": "Bearer " + cloudKey})
	if r.status != http.StatusUnauthorized {
		t.Fatalf("bearer next to a session: %d", r.status)
	}
	// Nor can a bearer log in.
	if r := anon.postJSON("/api/local/login", map[string]string{"user": adminUser, "password": adminPass}, "",
		map[string]string{"Authorization": "Bearer " + cloudKey}); r.status != http.StatusUnauthorized {
		t.Fatalf("login bearing a bearer: %d", r.status)
	}
	if h.site.SubmitCalls() != 0 {
		t.Fatal("a request bearing a cloud credential reached the node")
	}
}

// TestCredentialChangeEndsSessions: replacing the local admin logs every old session out.
func TestCredentialChangeEndsSessions(t *testing.T) {
	h := newHarness(t, 1)
	c := h.client("")
	c.login()
	if err := localui.SetLocalAdminForTest(h.dir, adminUser, "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if r := c.get("/"); r.status != http.StatusSeeOther {
		t.Fatalf("old session after a credential change: %d", r.status)
	}
	if r := c.tryLogin(adminUser, adminPass); r.status != http.StatusUnauthorized {
		t.Fatalf("old password: %d", r.status)
	}
	if r := c.tryLogin(adminUser, "a brand new passphrase"); r.status != http.StatusSeeOther {
		t.Fatalf("new password: %d", r.status)
	}
}

func TestNoLocalAdmin(t *testing.T) {
	h := newHarness(t, 1)
	if err := removeCredential(h.dir); err != nil {
		t.Fatal(err)
	}
	c := h.client("")
	page := c.get("/login")
	if !strings.Contains(page.body, `data-testid="no-admin"`) || !strings.Contains(page.body, "hashfleet node set-local-admin") {
		t.Fatalf("login page without an admin: %s", page.body)
	}
	if r := c.tryLogin(adminUser, adminPass); r.status != http.StatusServiceUnavailable {
		t.Fatalf("login without an admin: %d", r.status)
	}
}

func TestOpenRedirectRefused(t *testing.T) {
	h := newHarness(t, 1)
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		c := h.client("")
		r := c.get("/login?next=" + url.QueryEscape(next))
		f := hidden(r.body)
		r = c.postForm("/login", url.Values{"csrf_token": {f["csrf_token"]}, "next": {next}, "user": {adminUser}, "password": {adminPass}})
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("next=%q: %d %q", next, r.status, r.location())
		}
	}
}

// TestConcurrentGuessesBounded: a burst of parallel guesses gets at most Threshold + MaxConcurrentHashes - 1
// passwords verified; the rest are refused unchecked.
func TestConcurrentGuessesBounded(t *testing.T) {
	h := newHarness(t, 1)
	const n = 30
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		c := h.client("")
		wg.Go(func() {
			r := c.postJSON("/api/local/login", map[string]string{"user": adminUser, "password": fmt.Sprintf("guess number %d", i)}, "")
			statuses <- r.status
		})
	}
	wg.Wait()
	close(statuses)
	checked, refused := 0, 0
	for s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("status %d", s)
		}
	}
	if limit := 5 + 2 - 1; checked > limit || checked < 5 {
		t.Fatalf("%d guesses verified (limit %d), %d refused", checked, limit, refused)
	}
}
