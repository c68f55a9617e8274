package antweb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners/internal/simtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sign answers a challenge the way a client would.
func sign(chal, user, pass, method, uri string, nc int) string {
	p, err := parseParams(strings.TrimPrefix(chal, "Digest "))
	if err != nil {
		panic(err)
	}
	h := hashFor(p["algorithm"])
	ha1 := hexHash(h, user, p["realm"], pass)
	if strings.HasSuffix(p["algorithm"], "-sess") {
		ha1 = hexHash(h, ha1, p["nonce"], "cn")
	}
	ncs := fmt.Sprintf("%08x", nc)
	resp := hexHash(h, ha1, p["nonce"], ncs, "cn", "auth", hexHash(h, method, uri))
	return fmt.Sprintf(`Digest username=%q, realm=%q, nonce=%q, uri=%q, algorithm=%s, response=%q, qop=auth, nc=%s, cnonce="cn", opaque=%q`,
		user, p["realm"], p["nonce"], uri, p["algorithm"], resp, ncs, p["opaque"])
}

type harness struct{ *simtest.Harness[*Fleet] }

func newHarness(t *testing.T, mod func(*Config)) *harness {
	return &harness{simtest.Start(t, Start, DefaultConfig(), func(c *Config, clk *clock.Fake) {
		c.Count, c.Clock, c.Seed, c.RebootDuration = 2, clk, 3, time.Minute
	}, mod)}
}

// raw sends one request with the given Authorization and returns status, headers and body.
func (h *harness) raw(m *Miner, method, path, authz string, body any) (int, http.Header, []byte) {
	h.T.Helper()
	return h.Do(method, "http://"+m.Addr()+path, authz, body)
}

// challenge gets a fresh challenge from m.
func (h *harness) challenge(m *Miner, path string) []string {
	h.T.Helper()
	code, hdr, _ := h.raw(m, "GET", path, "", nil)
	if code != http.StatusUnauthorized || len(hdr.Values("WWW-Authenticate")) == 0 {
		h.T.Fatalf("no challenge: %d %v", code, hdr)
	}
	return hdr.Values("WWW-Authenticate")
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"count":   func(c *Config) { c.Count = -2 },
		"alg":     func(c *Config) { c.DigestAlgorithms = []string{"SHA-1"} },
		"apiport": func(c *Config) { c.APIPort = 4028 },
		"baseip":  func(c *Config) { c.PerMinerIP, c.BaseIP = true, "192.168.0.1" },
		"ttl":     func(c *Config) { c.NonceTTL = -time.Second },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDigestVerified(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.NonceTTL = time.Minute })
	m := h.Fleet.Miners()[0]
	const uri = "/cgi-bin/get_system_info.cgi"
	ch := h.challenge(m, uri)[0]
	if !strings.Contains(ch, `realm="antMiner Configuration"`) || !strings.Contains(ch, "algorithm=MD5") || !strings.Contains(ch, `qop="auth"`) {
		t.Fatalf("challenge %q", ch)
	}
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "root", "wrong", "GET", uri, 1), nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "admin", "root", "GET", uri, 1), nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong user: %d", code)
	}
	code, _, body := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", uri, 1), nil)
	if code != 200 || !strings.Contains(string(body), m.API().Snapshot().Serial) {
		t.Fatalf("right password: %d %s", code, body)
	}
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", uri, 1), nil); code != http.StatusUnauthorized {
		t.Fatalf("replayed nc: %d", code)
	}
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", "/cgi-bin/reboot.cgi", 2), nil); code != http.StatusUnauthorized {
		t.Fatalf("uri mismatch: %d", code)
	}
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", uri, 3), nil); code != 200 {
		t.Fatalf("next nc: %d", code)
	}
	h.Clock.Advance(time.Minute)
	code, hdr, _ := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", uri, 4), nil)
	if code != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), "stale=true") {
		t.Fatalf("expired nonce: %d %v, want 401 stale=true", code, hdr)
	}
	m.SetCredentials("admin", "s3cret")
	ch = h.challenge(m, uri)[0]
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", uri, 1), nil); code != http.StatusUnauthorized {
		t.Fatalf("old credentials: %d", code)
	}
	if code, _, _ := h.raw(m, "GET", uri, sign(ch, "admin", "s3cret", "GET", uri, 2), nil); code != 200 {
		t.Fatalf("new credentials: %d", code)
	}
	st := m.AuthStats()
	if st.Stale != 1 || st.Failed < 4 || st.Accepted != 3 || st.LastAlgorithm != "MD5" {
		t.Fatalf("auth stats %+v", st)
	}
}

func TestDigestSHA256(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DigestAlgorithms = []string{"SHA-256", "MD5-sess"} })
	m := h.Fleet.Miners()[1]
	const uri = "/cgi-bin/get_miner_conf.cgi"
	chs := h.challenge(m, uri)
	if len(chs) != 2 || !strings.Contains(chs[0], "algorithm=SHA-256") || !strings.Contains(chs[1], "algorithm=MD5-sess") {
		t.Fatalf("challenges %q", chs)
	}
	for i, ch := range chs {
		if code, _, b := h.raw(m, "GET", uri, sign(ch, "root", "root", "GET", uri, 1), nil); code != 200 || !json.Valid(b) {
			t.Fatalf("challenge %d: %d %s", i, code, b)
		}
	}
}

func TestWebWritesReachTheAPI(t *testing.T) {
	h := newHarness(t, nil)
	m := h.Fleet.Miners()[0]
	// A tiny client: sign every request with a fresh challenge.
	do := func(method, uri string, body any) (int, []byte) {
		ch := h.challenge(m, "/cgi-bin/get_system_info.cgi")[0] // a nonce is good for any URI
		code, _, b := h.raw(m, method, uri, sign(ch, "root", "root", method, uri, 1), body)
		return code, b
	}
	code, b := do("POST", "/cgi-bin/set_miner_conf.cgi", map[string]any{
		"bitmain-work-mode": "1",
		"pools": []map[string]string{
			{"url": "stratum+tcp://new-a.example:3333", "user": "w.a", "pass": "pa"},
			{"url": "stratum+tcp://new-b.example:3333", "user": "w.b", "pass": "pb"},
			{"url": "", "user": "", "pass": ""},
		},
	})
	if code != 200 || !strings.Contains(string(b), `"success"`) {
		t.Fatalf("set conf: %d %s", code, b)
	}
	s := m.Snapshot()
	if !s.API.Sleeping || s.WorkMode != "1" || s.API.Mining {
		t.Fatalf("after sleep: %+v", s)
	}
	if len(s.Pools) != 2 || s.Pools[0].URL != "stratum+tcp://new-a.example:3333" || s.Pools[0].Pass != "pa" || s.Pools[1].User != "w.b" {
		t.Fatalf("pools: %+v", s.Pools)
	}
	if !s.API.Pools[0].Active && !s.API.Pools[1].Active {
		t.Fatalf("api pools: %+v", s.API.Pools)
	}
	if code, b := do("POST", "/cgi-bin/set_miner_conf.cgi", map[string]any{"miner-mode": 3}); code != 200 {
		t.Fatalf("low power: %d %s", code, b)
	}
	if s := m.Snapshot(); s.API.Sleeping || s.WorkMode != "3" {
		t.Fatalf("after low power: %+v", s)
	}
	if code, _ := do("POST", "/cgi-bin/set_miner_conf.cgi", map[string]any{"bitmain-work-mode": "7"}); code != http.StatusBadRequest {
		t.Fatalf("bad mode: %d", code)
	}
	if code, _ := do("POST", "/cgi-bin/blink.cgi", map[string]bool{"blink": true}); code != 200 || !m.Snapshot().Blinking {
		t.Fatalf("blink: %d", code)
	}
	if _, b := do("GET", "/cgi-bin/get_blink_status.cgi", nil); string(bytes.TrimSpace(b)) != `{"blink":true}` {
		t.Fatalf("blink status %s", b)
	}
	// Sleep persists across a reboot; both sides are down meanwhile.
	if code, _ := do("POST", "/cgi-bin/set_miner_conf.cgi", map[string]any{"bitmain-work-mode": "1"}); code != 200 {
		t.Fatal(code)
	}
	if code, _ := do("GET", "/cgi-bin/reboot.cgi", nil); code != 200 {
		t.Fatalf("reboot: %d", code)
	}
	if m.Reachable() {
		t.Fatal("web side up during reboot")
	}
	if _, err := net.DialTimeout("tcp", m.API().Addr(), time.Second); err == nil {
		t.Fatal("API side up during reboot")
	}
	h.Clock.Advance(time.Minute)
	s = m.Snapshot()
	if !m.Reachable() || s.Rebooting || s.Blinking || !s.API.Sleeping || s.WorkMode != "1" || s.Reboots != 1 {
		t.Fatalf("after reboot: reachable=%v %+v", m.Reachable(), s)
	}

	log := m.WriteLog()
	var paths []string
	for _, r := range log {
		paths = append(paths, fmt.Sprintf("%s %s %v", r.Method, r.Path, r.Accepted))
	}
	want := []string{
		"POST /cgi-bin/set_miner_conf.cgi true", "POST /cgi-bin/set_miner_conf.cgi true",
		"POST /cgi-bin/set_miner_conf.cgi false", "POST /cgi-bin/blink.cgi true",
		"POST /cgi-bin/set_miner_conf.cgi true", "GET /cgi-bin/reboot.cgi true",
	}
	if strings.Join(paths, "|") != strings.Join(want, "|") {
		t.Fatalf("write log:\n got %q\nwant %q", paths, want)
	}
	if r := log[0]; r.User != "root" || r.Params["pools.0.url"] != "stratum+tcp://new-a.example:3333" || r.Params["pools.0.pass"] != "***" || r.Params["bitmain-work-mode"] != "1" || r.Remote == "" {
		t.Fatalf("record 0: %+v", r)
	}
	// The API side logged the write-through commands.
	var cmds []string
	for _, w := range m.API().WriteLog() {
		cmds = append(cmds, w.Command)
	}
	if !strings.Contains(strings.Join(cmds, ","), "addpool") || !strings.Contains(strings.Join(cmds, ","), "curtail") || cmds[len(cmds)-2] != "restart" {
		t.Fatalf("api writes %q", cmds)
	}
}

func TestUnauthenticatedWritesAreLoggedAndRefused(t *testing.T) {
	h := newHarness(t, nil)
	m := h.Fleet.Miners()[0]
	code, _, _ := h.raw(m, "POST", "/cgi-bin/set_miner_conf.cgi", `Digest username="root", realm="x"`, map[string]string{"bitmain-work-mode": "1"})
	if code != http.StatusUnauthorized || m.Snapshot().API.Sleeping {
		t.Fatalf("forged write: %d", code)
	}
	log := m.WriteLog()
	if len(log) != 1 || log[0].Accepted || log[0].User != "" || log[0].AuthFailure == "" {
		t.Fatalf("write log %+v", log)
	}
}

func TestDevicesAndFaults(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PerMinerIP, c.BaseIP, c.Count = true, "127.31.0.1", 3 })
	for i, d := range h.Fleet.Devices() {
		api, _, _ := net.SplitHostPort(d.Address)
		web, _, _ := net.SplitHostPort(d.WebAddress)
		if d.Protocol != pb.Protocol_PROTOCOL_ANTMINER || api != web || api != fmt.Sprintf("127.31.0.%d", i+1) || d.MinerId != fmt.Sprintf("ant-%d", i) {
			t.Errorf("device %d: %v", i, d)
		}
	}
	m := h.Fleet.Miners()[1]
	if err := h.Fleet.SetFault(m.ID(), FaultDown); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
		t.Fatal("web side up while down")
	}
	if c, err := net.DialTimeout("tcp", m.API().Addr(), time.Second); err != nil {
		t.Fatalf("API side should stay up: %v", err)
	} else {
		c.Close()
	}
	if err := h.Fleet.SetFault(m.ID(), FaultNone); err != nil || !m.Reachable() {
		t.Fatalf("back up: %v", err)
	}
	if err := h.Fleet.SetFault("nope", FaultHang); !errors.Is(err, ErrUnknownMiner) {
		t.Fatal(err)
	}
}

func TestManyMiners(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1000 listeners")
	}
	h := newHarness(t, func(c *Config) { c.Count, c.PerMinerIP, c.BaseIP = 500, true, "127.32.0.1" })
	ms := h.Fleet.Miners()
	for _, i := range []int{0, 250, 499} {
		m := ms[i]
		ch := h.challenge(m, "/cgi-bin/get_miner_conf.cgi")[0]
		if code, _, _ := h.raw(m, "GET", "/cgi-bin/get_miner_conf.cgi", sign(ch, "root", "root", "GET", "/cgi-bin/get_miner_conf.cgi", 1), nil); code != 200 {
			t.Fatalf("miner %d: %d", i, code)
		}
	}
}
