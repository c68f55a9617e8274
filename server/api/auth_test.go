package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/server/users"
	"golang.org/x/crypto/bcrypt"
)

// authHarness is the API over real HTTP with a real users service.
type authHarness struct {
	t     *testing.T
	srv   *httptest.Server
	users *users.Service
	b     *fakeBackend
	clk   *clock.Fake
}

func newAuthHarness(t *testing.T) *authHarness {
	t.Helper()
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	uc := users.DefaultConfig()
	uc.BcryptCost, uc.Clock = bcrypt.MinCost, clk
	svc, err := users.Open(nil, uc)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name string
		role users.Role
	}{{"vera", users.Viewer}, {"olga", users.Operator}, {"ada", users.Admin}} {
		if err := svc.CreateUser(u.name, u.name+"-password-123", u.role); err != nil {
			t.Fatal(err)
		}
	}
	b := &fakeBackend{}
	cfg := DefaultConfig()
	cfg.AdminToken, cfg.Users, cfg.Clock = token, svc, clk
	a, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &authHarness{t: t, srv: srv, users: svc, b: b, clk: clk}
}

// client is a browser: a cookie jar and the CSRF token of its session.
type client struct {
	h    *authHarness
	http *http.Client
	csrf string
}

func (h *authHarness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, http: &http.Client{Jar: jar}}
}

func (c *client) do(method, path, body string, hdr map[string]string) (int, map[string]any, http.Header) {
	c.h.t.Helper()
	req, err := http.NewRequest(method, c.h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.h.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out, res.Header
}

func (c *client) login(user, pw string) int {
	c.h.t.Helper()
	st, out, hdr := c.do("POST", "/api/v1/session", `{"user":"`+user+`","password":"`+pw+`"}`, nil)
	if st == http.StatusOK {
		c.csrf, _ = out["csrf_token"].(string)
		ck := hdr.Get("Set-Cookie")
		if !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") || strings.Contains(ck, pw) {
			c.h.t.Errorf("session cookie %q: want HttpOnly, SameSite=Strict and no password", ck)
		}
	}
	return st
}

const cmdBody = `{"action":"stop","miner_ids":["m1"]}`

func TestViewerCannotCommandOperatorNeedsCSRF(t *testing.T) {
	h := newAuthHarness(t)

	viewer := h.client()
	if st := viewer.login("vera", "vera-password-123"); st != 200 {
		t.Fatalf("viewer login: %d", st)
	}
	if st, _, _ := viewer.do("GET", "/api/v1/miners", "", nil); st != 200 {
		t.Fatalf("viewer list: %d", st)
	}
	if st, out, _ := viewer.do("POST", "/api/v1/commands", cmdBody, map[string]string{CSRFHeader: viewer.csrf}); st != 403 {
		t.Fatalf("viewer command: %d %v", st, out)
	}
	for _, p := range []string{"/api/v1/users", "/api/v1/api-keys"} {
		if st, _, _ := viewer.do("GET", p, "", nil); st != 403 {
			t.Errorf("viewer GET %s: %d", p, st)
		}
	}
	if st, _, _ := viewer.do("GET", "/api/v1/session", "", nil); st != 200 {
		t.Errorf("viewer whoami: %d", st)
	}

	op := h.client()
	if st := op.login("olga", "olga-password-123"); st != 200 {
		t.Fatalf("operator login: %d", st)
	}
	if st, out, _ := op.do("POST", "/api/v1/commands", cmdBody, nil); st != 403 || out["error"].(map[string]any)["code"] != "csrf" {
		t.Fatalf("operator command without CSRF: %d %v", st, out)
	}
	if st, _, _ := op.do("POST", "/api/v1/commands", cmdBody, map[string]string{CSRFHeader: "wrong"}); st != 403 {
		t.Fatalf("operator command with a wrong CSRF token: %d", st)
	}
	if st, _, _ := op.do("POST", "/api/v1/commands", cmdBody, map[string]string{CSRFHeader: op.csrf, "Origin": "https://evil.example"}); st != 403 {
		t.Fatalf("cross-origin write: %d", st)
	}
	if st, _, _ := op.do("POST", "/api/v1/commands", cmdBody, map[string]string{CSRFHeader: viewer.csrf}); st != 403 {
		t.Fatalf("another session's CSRF token accepted: %d", st)
	}
	if len(h.b.issued) != 0 {
		t.Fatalf("refused commands reached the backend: %v", h.b.issued)
	}
	if st, _, _ := op.do("POST", "/api/v1/commands", cmdBody, map[string]string{CSRFHeader: op.csrf, "Origin": h.srv.URL}); st != 202 {
		t.Fatalf("operator command: %d", st)
	}
	if got := h.b.issued[0].Actor; got != "user:olga" {
		t.Fatalf("command actor %q, want user:olga", got)
	}
	if st, _, _ := op.do("POST", "/api/v1/enrollment-codes", `{}`, map[string]string{CSRFHeader: op.csrf}); st != 403 {
		t.Fatalf("operator minting an enrollment code: %d", st)
	}
	// Logout ends the session (the write needs CSRF too).
	if st, _, _ := op.do("DELETE", "/api/v1/session", "", map[string]string{CSRFHeader: op.csrf}); st != 204 {
		t.Fatalf("logout: %d", st)
	}
	if st, _, _ := op.do("GET", "/api/v1/miners", "", nil); st != 401 {
		t.Fatalf("after logout: %d", st)
	}
}

func TestLoginFailuresAndHostileCredentials(t *testing.T) {
	h := newAuthHarness(t)
	c := h.client()
	if st := c.login("vera", "nope"); st != 401 {
		t.Fatalf("wrong password: %d", st)
	}
	if st := c.login("nobody", "nope"); st != 401 {
		t.Fatalf("unknown user: %d", st)
	}
	for _, body := range []string{``, `{`, `{"user":"vera"}x`, `{"user":1}`, `{"user":"vera","password":"x","extra":1}`, strings.Repeat(" ", 2<<20)} {
		if st, _, _ := c.do("POST", "/api/v1/session", body, nil); st != 400 {
			t.Errorf("login body %.30q: %d, want 400", body, st)
		}
	}
	for range 4 {
		c.login("vera", "nope")
	}
	st, _, hdr := c.do("POST", "/api/v1/session", `{"user":"vera","password":"vera-password-123"}`, nil)
	if st != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures: %d Retry-After %q", st, hdr.Get("Retry-After"))
	}
	h.clk.Advance(61 * time.Second)
	if st := c.login("vera", "vera-password-123"); st != 200 {
		t.Fatalf("after the lockout: %d", st)
	}
	if st, _, _ := c.do("POST", "/api/v1/session", `{"user":"vera","password":"vera-password-123"}`, map[string]string{"Origin": "http://evil.example"}); st != 403 {
		t.Fatalf("cross-origin login: %d", st)
	}
	anon := h.client()
	for _, hdr := range []map[string]string{nil, {"Authorization": "Basic dmVyYTp4"}, {"Authorization": "Bearer"},
		{"Authorization": "Bearer hfk_x_y"}, {"Cookie": SessionCookie + "=garbage"}, {"Cookie": SessionCookie + "="}} {
		if st, _, _ := anon.do("GET", "/api/v1/miners", "", hdr); st != 401 {
			t.Errorf("GET with %v: %d, want 401", hdr, st)
		}
	}
}

func TestAPIKeysAndAdminToken(t *testing.T) {
	h := newAuthHarness(t)
	adm := h.client()
	bearer := map[string]string{"Authorization": "Bearer " + token}
	st, out, _ := adm.do("POST", "/api/v1/api-keys", `{"name":"grafana","role":"viewer"}`, bearer)
	if st != 201 {
		t.Fatalf("create key with the admin token: %d %v", st, out)
	}
	key := out["key"].(string)
	id := out["id"].(string)
	st, list, _ := adm.do("GET", "/api/v1/api-keys", "", bearer)
	if st != 200 || strings.Contains(mustJSON(list), key[len(key)-20:]) {
		t.Fatalf("list keys: %d, or the secret is listed", st)
	}
	kh := map[string]string{"Authorization": "Bearer " + key}
	if st, _, _ := adm.do("GET", "/api/v1/miners", "", kh); st != 200 {
		t.Fatalf("viewer key read: %d", st)
	}
	if st, _, _ := adm.do("POST", "/api/v1/commands", cmdBody, kh); st != 403 {
		t.Fatalf("viewer key command: %d", st)
	}
	// An operator key writes without CSRF (no cookie, nothing a browser sends by itself).
	_, out, _ = adm.do("POST", "/api/v1/api-keys", `{"name":"ci","role":"operator"}`, bearer)
	opKey := map[string]string{"Authorization": "Bearer " + out["key"].(string)}
	if st, _, _ := adm.do("POST", "/api/v1/commands", cmdBody, opKey); st != 202 {
		t.Fatalf("operator key command: %d", st)
	}
	if h.b.issued[0].Actor != "key:"+out["id"].(string) {
		t.Fatalf("actor %q", h.b.issued[0].Actor)
	}
	if st, _, _ := adm.do("POST", "/api/v1/api-keys", `{"name":"x","role":"admin"}`, opKey); st != 403 {
		t.Fatalf("operator key creating keys: %d", st)
	}
	if st, _, _ := adm.do("DELETE", "/api/v1/api-keys/"+id, "", bearer); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	if st, _, _ := adm.do("GET", "/api/v1/miners", "", kh); st != 401 {
		t.Fatalf("revoked key: %d", st)
	}
	if st, _, _ := adm.do("POST", "/api/v1/api-keys", `{"name":"x","role":"root"}`, bearer); st != 400 {
		t.Fatalf("bad role: %d", st)
	}
	// Users through the API.
	if st, _, _ := adm.do("POST", "/api/v1/users", `{"name":"neo","password":"short","role":"viewer"}`, bearer); st != 400 {
		t.Fatalf("short password: %d", st)
	}
	if st, _, _ := adm.do("POST", "/api/v1/users", `{"name":"neo","password":"neo-password-123","role":"viewer"}`, bearer); st != 201 {
		t.Fatalf("create user: %d", st)
	}
	if st, _, _ := adm.do("POST", "/api/v1/users", `{"name":"neo","password":"neo-password-123","role":"viewer"}`, bearer); st != 409 {
		t.Fatalf("duplicate user: %d", st)
	}
	if st, _, _ := adm.do("PUT", "/api/v1/users/neo", `{"role":"operator"}`, bearer); st != 204 {
		t.Fatalf("promote: %d", st)
	}
	if st, _, _ := adm.do("DELETE", "/api/v1/users/ada", "", bearer); st != 409 {
		t.Fatalf("delete the last admin: %d", st)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestEveryRouteHasARole: reads need a viewer, writes an operator, and user, key, enrollment and
// command-key management an admin, for every route the API serves (routes added later included).
func TestEveryRouteHasARole(t *testing.T) {
	a := newAPI(t, &fakeBackend{})
	for _, r := range a.Routes() {
		need := requiredRole(r.Pattern())
		switch {
		case strings.HasPrefix(r.Path, "/api/v1/users") || strings.HasPrefix(r.Path, "/api/v1/api-keys"):
			if need != users.Admin {
				t.Errorf("%s needs %s, want admin", r.Pattern(), need)
			}
		case r.Pattern() == "DELETE /api/v1/session" || r.Method == "GET":
			if need != users.Viewer {
				t.Errorf("%s needs %s, want viewer", r.Pattern(), need)
			}
		default:
			if need < users.Operator {
				t.Errorf("%s needs %s, want at least operator", r.Pattern(), need)
			}
		}
	}
	if requiredRole("/api/") != users.Viewer || requiredRole("") != users.Viewer {
		t.Error("unknown routes must answer 404/405 to any caller, not 403")
	}
	for _, p := range []string{"POST /api/v1/enrollment-codes", "POST /api/v1/nodes/{id}/confirm", "POST /api/v1/keys/rotate"} {
		if requiredRole(p) != users.Admin {
			t.Errorf("%s is not admin-only", p)
		}
	}
}
