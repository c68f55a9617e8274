package localui_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node/localui"
	"github.com/hashfleet/hashfleet/node/localui/localuitest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	adminUser = "admin"
	adminPass = "correct horse battery staple"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// harness runs the real server over HTTPS on 127.0.0.1:0 with its self-signed certificate, in front of an
// in-memory Site, on a fake clock.
type harness struct {
	t     *testing.T
	clock *clock.Fake
	site  *localuitest.Site
	srv   *localui.Server
	dir   string
	base  string // https://127.0.0.1:PORT (no trailing slash)
}

func newHarness(t *testing.T, miners int, tweak ...func(*localui.Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: clock.NewFake(t0), dir: filepath.Join(t.TempDir(), "localui")}
	h.site = localuitest.New("node-1", miners, h.clock)
	if err := localui.SetLocalAdminForTest(h.dir, adminUser, adminPass); err != nil {
		t.Fatal(err)
	}
	cfg := localui.DefaultConfig(h.dir)
	cfg.Addr = "127.0.0.1:0"
	cfg.NodeID = "node-1"
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := localui.New(cfg, localui.Env{Site: h.site, Clock: h.clock,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	h.srv = srv
	h.base = "https://" + srv.Addr().String()
	return h
}

// client is one browser or script: its own cookie jar, the server's certificate pinned (no other root),
// redirects not followed, optionally dialing from a given loopback address.
type client struct {
	h   *harness
	c   *http.Client
	tr  *http.Transport
	jar *cookiejar.Jar
}

func (h *harness) client(fromIP string, tlsTweak ...func(*tls.Config)) *client {
	pool := x509.NewCertPool()
	pool.AddCert(h.srv.Certificate().Leaf)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, f := range tlsTweak {
		f(tc)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if fromIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(fromIP)}
	}
	tr := &http.Transport{TLSClientConfig: tc, DialContext: d.DialContext, ForceAttemptHTTP2: true}
	jar, _ := cookiejar.New(nil)
	c := &client{h: h, tr: tr, jar: jar, c: &http.Client{
		Transport: tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	h.t.Cleanup(tr.CloseIdleConnections)
	return c
}

type resp struct {
	status int
	body   string
	header http.Header
	tls    *tls.ConnectionState
}

func (r resp) location() string { return r.header.Get("Location") }

func (c *client) do(req *http.Request) resp {
	c.h.t.Helper()
	res, err := c.c.Do(req)
	if err != nil {
		c.h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.h.t.Fatal(err)
	}
	return resp{status: res.StatusCode, body: string(b), header: res.Header, tls: res.TLS}
}

func (c *client) request(method, path string, body io.Reader, hdr map[string]string) resp {
	c.h.t.Helper()
	req, err := http.NewRequest(method, c.h.base+path, body)
	if err != nil {
		c.h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return c.do(req)
}

func (c *client) get(path string, hdr ...map[string]string) resp {
	c.h.t.Helper()
	var h map[string]string
	if len(hdr) > 0 {
		h = hdr[0]
	}
	return c.request(http.MethodGet, path, nil, h)
}

func (c *client) postForm(path string, form url.Values, hdr ...map[string]string) resp {
	c.h.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if len(hdr) > 0 {
		for k, v := range hdr[0] {
			h[k] = v
		}
	}
	return c.request(http.MethodPost, path, strings.NewReader(form.Encode()), h)
}

func (c *client) postJSON(path string, body any, csrf string, hdr ...map[string]string) resp {
	c.h.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		c.h.t.Fatal(err)
	}
	h := map[string]string{"Content-Type": "application/json"}
	if csrf != "" {
		h[localui.CSRFHeader] = csrf
	}
	if len(hdr) > 0 {
		for k, v := range hdr[0] {
			h[k] = v
		}
	}
	return c.request(http.MethodPost, path, bytes.NewReader(b), h)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns the first value of each hidden input in a page.
func hidden(page string) map[string]string {
	out := map[string]string{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		if _, ok := out[m[1]]; !ok {
			out[m[1]] = html.UnescapeString(m[2])
		}
	}
	return out
}

// tryLogin posts the login form (after fetching it for its CSRF token).
func (c *client) tryLogin(user, pass string) resp {
	c.h.t.Helper()
	page := c.get("/login")
	if page.status != http.StatusOK {
		c.h.t.Fatalf("GET /login: %d", page.status)
	}
	f := hidden(page.body)
	return c.postForm("/login", url.Values{"csrf_token": {f["csrf_token"]}, "next": {f["next"]}, "user": {user}, "password": {pass}})
}

func (c *client) login() {
	c.h.t.Helper()
	r := c.tryLogin(adminUser, adminPass)
	if r.status != http.StatusSeeOther || r.location() != "/" {
		c.h.t.Fatalf("login: %d %q %s", r.status, r.location(), r.body)
	}
}

// form fetches a page and returns its hidden fields (csrf_token, idempotency_key, return_to, ...).
func (c *client) form(path string) map[string]string {
	c.h.t.Helper()
	r := c.get(path)
	if r.status != http.StatusOK {
		c.h.t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	return hidden(r.body)
}

// apiLogin logs in through the JSON API and returns the CSRF token.
func (c *client) apiLogin() string {
	c.h.t.Helper()
	r := c.postJSON("/api/local/login", map[string]string{"user": adminUser, "password": adminPass}, "")
	if r.status != http.StatusOK {
		c.h.t.Fatalf("api login: %d %s", r.status, r.body)
	}
	var s struct {
		CSRFToken string `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &s); err != nil || s.CSRFToken == "" {
		c.h.t.Fatalf("api login body %s: %v", r.body, err)
	}
	return s.CSRFToken
}

func (c *client) sessionCookie() *http.Cookie {
	u, _ := url.Parse(c.h.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == localui.SessionCookie {
			return ck
		}
	}
	return nil
}

func removeCredential(dir string) error { return os.Remove(filepath.Join(dir, localui.CredentialFile)) }
