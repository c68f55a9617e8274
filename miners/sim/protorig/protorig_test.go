package protorig

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/internal/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eddsaJWT signs a token the way a node would.
func eddsaJWT(key ed25519.PrivateKey, aud string, iat time.Time, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	c, _ := json.Marshal(map[string]any{"iss": "node-test", "aud": aud, "iat": iat.Unix(), "exp": iat.Add(ttl).Unix()})
	s := h + "." + enc.EncodeToString(c)
	return s + "." + enc.EncodeToString(ed25519.Sign(key, []byte(s)))
}

func spki(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return base64.StdEncoding.EncodeToString(der)
}

// harness is one fleet on a fake clock and a plain HTTP client.
type harness struct{ *simtest.Harness[*Fleet] }

func newHarness(t *testing.T, mod func(*Config)) *harness {
	return &harness{simtest.Start(t, Start, DefaultConfig(), func(c *Config, clk *clock.Fake) {
		c.Count, c.Clock, c.Seed = 3, clk, 7
	}, mod)}
}

// do sends one request with the bearer token (none when empty) and returns status and body.
func (h *harness) do(m *Miner, method, path, token string, body any) (int, []byte) {
	h.T.Helper()
	if token != "" {
		token = "Bearer " + token
	}
	code, _, b := h.Do(method, "http://"+m.Addr()+path, token, body)
	return code, b
}

func (h *harness) login(m *Miner, pw string) (int, string) {
	h.T.Helper()
	code, b := h.do(m, "POST", "/api/v1/auth/login", "", map[string]string{"password": pw})
	var tok struct {
		Access string `json:"access_token"`
	}
	_ = json.Unmarshal(b, &tok)
	return code, tok.Access
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"count":    func(c *Config) { c.Count = -1 },
		"port":     func(c *Config) { c.Port = 70000 },
		"ports":    func(c *Config) { c.Port, c.Count = 65530, 10 },
		"baseip":   func(c *Config) { c.PerMinerIP, c.BaseIP = true, "10.0.0.1" },
		"overflow": func(c *Config) { c.PerMinerIP, c.BaseIP, c.Count = true, "127.255.255.250", 10 },
		"password": func(c *Config) { c.Password = "short" },
		"host":     func(c *Config) { c.Host = "not an ip" },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}

func TestDevicesAndPerMinerIP(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PerMinerIP, c.BaseIP, c.Count = true, "127.21.0.254", 3 })
	devs := h.Fleet.Devices()
	want := []string{"127.21.0.254", "127.21.1.1", "127.21.1.2"} // .255 and .0 skipped
	for i, d := range devs {
		host, _, _ := net.SplitHostPort(d.Address)
		if host != want[i] || d.Protocol != pb.Protocol_PROTOCOL_PROTO || d.WebAddress != d.Address || d.Serial == "" || d.Mac == "" {
			t.Errorf("device %d = %v, want host %s", i, d, want[i])
		}
		if h.Fleet.Miner(d.MinerId) == nil {
			t.Errorf("Miner(%q) = nil", d.MinerId)
		}
	}
	code, b := h.do(h.Fleet.Miners()[1], "GET", "/api/v1/pairing/info", "", nil)
	if code != 200 || !strings.Contains(string(b), devs[1].Serial) {
		t.Fatalf("pairing info = %d %s", code, b)
	}
}

func TestLoginAndBearer(t *testing.T) {
	h := newHarness(t, nil)
	m := h.Fleet.Miners()[0]
	if code, _ := h.login(m, "wrong-password"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: status %d, want 401", code)
	}
	if code, _ := h.do(m, "GET", "/api/v1/pools", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: status %d, want 401", code)
	}
	code, tok := h.login(m, DefaultPassword)
	if code != 200 || tok == "" {
		t.Fatalf("login: %d %q", code, tok)
	}
	if code, b := h.do(m, "GET", "/api/v1/pools", tok, nil); code != 200 || !strings.Contains(string(b), "stratum+tcp://") {
		t.Fatalf("pools with token: %d %s", code, b)
	}
	// Another rig's token is refused: secrets are per rig.
	if code, _ := h.do(h.Fleet.Miners()[1], "GET", "/api/v1/pools", tok, nil); code != http.StatusUnauthorized {
		t.Fatalf("token of another rig: status %d, want 401", code)
	}
	h.Clock.Advance(DefaultAccessTokenTTL + time.Second)
	if code, _ := h.do(m, "GET", "/api/v1/pools", tok, nil); code != http.StatusUnauthorized {
		t.Fatalf("expired token: status %d, want 401", code)
	}
}

func TestPairingAndJWT(t *testing.T) {
	h := newHarness(t, nil)
	m := h.Fleet.Miners()[0]
	serial := m.Snapshot().Serial
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	now := h.Clock.Now()

	if code, _ := h.do(m, "GET", "/api/v1/mining", eddsaJWT(key, serial, now, time.Minute), nil); code != http.StatusUnauthorized {
		t.Fatalf("JWT before pairing: %d, want 401", code)
	}
	if code, b := h.do(m, "POST", "/api/v1/pairing/auth-key", "", map[string]string{"public_key": "bm90IGEga2V5"}); code != http.StatusBadRequest {
		t.Fatalf("garbage key: %d %s, want 400", code, b)
	}
	if code, b := h.do(m, "POST", "/api/v1/pairing/auth-key", "", map[string]string{"public_key": spki(pub)}); code != 200 {
		t.Fatalf("pair: %d %s", code, b)
	}
	if code, b := h.do(m, "GET", "/api/v1/mining", eddsaJWT(key, serial, now, time.Minute), nil); code != 200 {
		t.Fatalf("paired JWT: %d %s", code, b)
	}
	for name, tok := range map[string]string{
		"other key":     eddsaJWT(other, serial, now, time.Minute),
		"other rig":     eddsaJWT(key, "someone-else", now, time.Minute),
		"too long":      eddsaJWT(key, serial, now, time.Hour),
		"expired":       eddsaJWT(key, serial, now.Add(-10*time.Minute), time.Minute),
		"future":        eddsaJWT(key, serial, now.Add(10*time.Minute), time.Minute),
		"tampered":      eddsaJWT(key, serial, now, time.Minute) + "A",
		"alg none":      base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + ".e30.",
		"not a jwt":     "hello",
		"hs256 forgery": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2UiOiJhY2Nlc3MifQ.c2ln",
	} {
		if code, _ := h.do(m, "GET", "/api/v1/mining", tok, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	// Re-pairing to another key without authentication is refused; with the current key's JWT it works.
	if code, _ := h.do(m, "POST", "/api/v1/pairing/auth-key", "", map[string]string{"public_key": spki(other.Public().(ed25519.PublicKey))}); code != http.StatusUnauthorized {
		t.Fatalf("unauthenticated rotation: %d, want 401", code)
	}
	if code, _ := h.do(m, "POST", "/api/v1/pairing/auth-key", eddsaJWT(key, serial, now, time.Minute), map[string]string{"public_key": spki(other.Public().(ed25519.PublicKey))}); code != 200 {
		t.Fatalf("authenticated rotation: %d", code)
	}
	if code, _ := h.do(m, "GET", "/api/v1/mining", eddsaJWT(key, serial, now, time.Minute), nil); code != http.StatusUnauthorized {
		t.Fatalf("old key after rotation: %d, want 401", code)
	}
	log := m.WriteLog()
	if len(log) < 4 {
		t.Fatalf("write log has %d records, want the pairing attempts: %+v", len(log), log)
	}
	if log[0].Accepted || log[0].Status != http.StatusBadRequest || log[1].Principal != "pairing" || !log[1].Accepted {
		t.Errorf("write log start = %+v", log[:2])
	}
	if last := log[len(log)-1]; last.Principal != "jwt:node-test" || !last.Accepted {
		t.Errorf("rotation record = %+v", last)
	}
}

func TestRebootOnInjectedClock(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RebootDuration = time.Minute })
	m := h.Fleet.Miners()[2]
	_, tok := h.login(m, DefaultPassword)
	if code, _ := h.do(m, "POST", "/api/v1/system/reboot", tok, nil); code != http.StatusAccepted {
		t.Fatalf("reboot: %d", code)
	}
	if m.Reachable() || !m.Snapshot().Rebooting {
		t.Fatal("rig still reachable right after reboot")
	}
	if _, err := net.DialTimeout("tcp", m.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial during reboot: %v, want connection refused", err)
	}
	h.Clock.Advance(59 * time.Second)
	if m.Reachable() {
		t.Fatal("back before RebootDuration")
	}
	h.Clock.Advance(time.Second)
	if !m.Reachable() {
		t.Fatal("not back after RebootDuration")
	}
	if code, _ := h.do(m, "GET", "/api/v1/system", "", nil); code != 200 {
		t.Fatalf("after reboot: %d", code)
	}
	if s := m.Snapshot(); s.UptimeS != 0 || s.Reboots != 1 || s.Status != "Mining" {
		t.Fatalf("after reboot state = %+v", s)
	}
}

func TestFaultsAndWriteLog(t *testing.T) {
	h := newHarness(t, nil)
	m := h.Fleet.Miners()[0]
	if err := h.Fleet.SetFault("nope", FaultDown); !errors.Is(err, ErrUnknownMiner) {
		t.Fatalf("SetFault unknown: %v", err)
	}
	if err := h.Fleet.SetFault(m.ID(), FaultDown); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
		t.Fatal("dial succeeded while down")
	}
	if err := m.SetFault(FaultNone); err != nil {
		t.Fatal(err)
	}
	_ = m.SetFault(FaultMalformedJSON)
	if code, b := h.do(m, "GET", "/api/v1/system", "", nil); code != 200 || json.Valid(b) {
		t.Fatalf("malformed: %d valid=%v", code, json.Valid(b))
	}
	_ = m.SetFault(FaultWrongContentType)
	req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/api/v1/system", nil)
	resp, err := h.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !json.Valid(b) {
		t.Fatalf("wrong content type: %q %s", resp.Header.Get("Content-Type"), b)
	}
	_ = m.SetFault(FaultNone)

	_, tok := h.login(m, DefaultPassword)
	h.Clock.Advance(time.Second)
	if code, _ := h.do(m, "PUT", "/api/v1/mining/target", tok, map[string]int{"power_target_watts": 3000}); code != 200 {
		t.Fatalf("target: %d", code)
	}
	if code, _ := h.do(m, "PUT", "/api/v1/mining/target", tok, map[string]int{"power_target_watts": 1}); code != http.StatusUnprocessableEntity {
		t.Fatalf("target out of range: %d", code)
	}
	if code, _ := h.do(m, "POST", "/api/v1/pools", tok, []map[string]any{{"url": "stratum+tcp://a.example:3333", "username": "u", "password": "secret"}}); code != 200 {
		t.Fatalf("pools: %d", code)
	}
	log := h.Fleet.WriteLog()
	if len(log) != 3 {
		t.Fatalf("write log = %+v, want 3 records", log)
	}
	if r := log[0]; r.Path != "/api/v1/mining/target" || r.Params["power_target_watts"] != "3000" || !r.Accepted || r.Principal != "password" || r.Remote == "" || !r.At.Equal(h.Clock.Now()) {
		t.Errorf("record 0 = %+v", r)
	}
	if log[1].Accepted {
		t.Errorf("refused target logged as accepted: %+v", log[1])
	}
	if r := log[2]; r.Params["0.url"] != "stratum+tcp://a.example:3333" || r.Params["0.password"] != "***" {
		t.Errorf("pool record = %+v", r)
	}
	if s := m.Snapshot(); s.PowerTargetW != 3000 || len(s.Pools) != 1 || s.Pools[0].Password != "secret" {
		t.Errorf("state after writes = %+v", s)
	}
}

func TestCloseWaitsForHungHandlers(t *testing.T) {
	clk := clock.NewFake(time.Now())
	cfg := DefaultConfig()
	cfg.Count, cfg.Clock = 2, clk
	f, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Miners()[0]
	_ = m.SetFault(FaultHang)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + m.Addr() + "/api/v1/system")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the request reach the handler
	done := make(chan struct{})
	go func() { _ = f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a hung handler")
	}
	if err := <-errc; err == nil {
		t.Fatal("hung request succeeded")
	}
	if err := f.SetFault(m.ID(), FaultNone); err == nil || !errors.Is(err, ErrClosed) {
		t.Logf("SetFault after Close: %v", err)
	}
}

func TestManyRigs(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 listeners")
	}
	h := newHarness(t, func(c *Config) { c.Count, c.PerMinerIP, c.BaseIP = 1000, true, "127.22.0.1" })
	devs := h.Fleet.Devices()
	if len(devs) != 1000 {
		t.Fatalf("%d devices", len(devs))
	}
	for _, i := range []int{0, 499, 999} {
		if code, _ := h.do(h.Fleet.Miner(devs[i].MinerId), "GET", "/api/v1/system", "", nil); code != 200 {
			t.Fatalf("rig %d: %d", i, code)
		}
	}
}
