package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// noLeaks checks, after every other cleanup of t has run, that t left no goroutine behind.
func noLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// metricsClient is a client without keep-alives, so no idle connection outlives a test (goleak).
func metricsClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

type metricsReply struct {
	code   int
	header http.Header
	body   string
}

func metricsGet(t *testing.T, c *http.Client, url, user, pass string) metricsReply {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return metricsReply{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func startMetrics(t *testing.T, cfg MetricsConfig, h Health) *MetricsServer {
	t.Helper()
	m, err := StartMetrics(context.Background(), cfg, nil, h, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return m
}

func loopbackConfig() MetricsConfig {
	c := DefaultMetricsConfig()
	c.Listen = "127.0.0.1:0"
	return c
}

func TestMetricsDefaultIsLoopback(t *testing.T) {
	c := DefaultMetricsConfig()
	if c.Listen != "127.0.0.1:9464" {
		t.Fatalf("default listen %q", c.Listen)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the default config must be valid: %v", err)
	}
}

func TestMetricsLoopbackWithoutAuthServes(t *testing.T) {
	noLeaks(t)
	m := startMetrics(t, loopbackConfig(), nil)
	c := metricsClient()
	base := "http://" + m.Addr()

	r := metricsGet(t, c, base+"/metrics", "", "")
	if r.code != 200 {
		t.Fatalf("/metrics: HTTP %d %s", r.code, r.body)
	}
	for _, want := range []string{"go_goroutines ", "process_resident_memory_bytes ", `hashfleet_build_info{goversion="`, "promhttp_metric_handler_requests_total"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics content type %q: want the classic text format", ct)
	}
	if r := metricsGet(t, c, base+"/healthz", "", ""); r.code != 200 || !strings.Contains(r.body, `"alive"`) {
		t.Fatalf("/healthz: HTTP %d %s", r.code, r.body)
	}
	r = metricsGet(t, c, base+"/readyz", "", "")
	var rep ReadinessReport
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil || r.code != 200 || rep.Status != "ready" || rep.Checks == nil {
		t.Fatalf("/readyz without checks: HTTP %d %s (%v)", r.code, r.body, err)
	}
	if r := metricsGet(t, c, base+"/status/ha", "", ""); r.code != 200 || strings.TrimSpace(r.body) != `{"pair":null}` {
		t.Fatalf("/status/ha outside a pair: HTTP %d %q", r.code, r.body)
	}
	if r := metricsGet(t, c, base+"/status/ha?active=1", "", ""); r.code != 503 {
		t.Fatalf("/status/ha?active=1 outside a pair: HTTP %d, want 503", r.code)
	}
	if r := metricsGet(t, c, base+"/nope", "", ""); r.code != 404 {
		t.Fatalf("/nope: HTTP %d", r.code)
	}
}

func TestMetricsNonLoopbackWithoutAuthRefused(t *testing.T) {
	resolve := func(addrs ...string) func(context.Context, string) ([]netip.Addr, error) {
		return func(context.Context, string) ([]netip.Addr, error) {
			var out []netip.Addr
			for _, a := range addrs {
				out = append(out, netip.MustParseAddr(a))
			}
			return out, nil
		}
	}
	for _, tc := range []struct {
		listen  string
		lookup  func(context.Context, string) ([]netip.Addr, error)
		refused bool
	}{
		{listen: "127.0.0.1:9464"},
		{listen: "127.3.4.5:9464"},
		{listen: "[::1]:9464"},
		{listen: "localhost:9464", lookup: resolve("127.0.0.1", "::1")},
		{listen: "0.0.0.0:9464", refused: true},
		{listen: "[::]:9464", refused: true},
		{listen: ":9464", refused: true},
		{listen: "192.0.2.10:9464", refused: true},
		{listen: "[2001:db8::1]:9464", refused: true},
		{listen: "metrics.example:9464", lookup: resolve("127.0.0.1", "192.0.2.10"), refused: true},
		{listen: "metrics.example:9464", lookup: resolve("::ffff:192.0.2.10"), refused: true},
		{listen: "unresolvable.example:9464", lookup: func(context.Context, string) ([]netip.Addr, error) {
			return nil, errors.New("no such host")
		}, refused: true},
	} {
		c := DefaultMetricsConfig()
		c.Listen, c.lookup = tc.listen, tc.lookup
		err := c.Validate()
		if !tc.refused {
			if err != nil {
				t.Errorf("%s: %v", tc.listen, err)
			}
			continue
		}
		if !errors.Is(err, ErrMetricsUnprotected) {
			t.Errorf("%s: err %v, want ErrMetricsUnprotected", tc.listen, err)
			continue
		}
		for _, want := range []string{"--metrics-listen " + tc.listen, "not a loopback address", "--metrics-basic-auth-user",
			"--metrics-basic-auth-password-file", "--metrics-client-ca", "--metrics-tls-cert", "127.0.0.1:9464"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: message %q lacks %q", tc.listen, err, want)
			}
		}
	}

	// StartMetrics refuses before it binds anything.
	c := DefaultMetricsConfig()
	c.Listen = "0.0.0.0:0"
	m, err := StartMetrics(context.Background(), c, nil, nil, quietLogger())
	if !errors.Is(err, ErrMetricsUnprotected) || m != nil {
		t.Fatalf("StartMetrics on 0.0.0.0 without auth: %v", err)
	}
	t.Logf("operator sees: %v", err)

	// With basic auth or client-cert auth configured, the same address is accepted.
	c.BasicAuthUser, c.BasicAuthPasswordHash = "prom", mustHash(t, "pw-0123456789")
	if err := c.Validate(); err != nil {
		t.Fatalf("0.0.0.0 with basic auth: %v", err)
	}
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := hashPassword(pw, MinPasswordIterations) // the cheapest accepted work factor keeps tests fast
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMetricsConfigMistakes(t *testing.T) {
	dir := t.TempDir()
	world := filepath.Join(dir, "world-readable")
	if err := os.WriteFile(world, []byte(mustHash(t, "x-0123456789")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*MetricsConfig)
		want string
	}{
		{"bad listen", func(c *MetricsConfig) { c.Listen = "127.0.0.1" }, "want host:port"},
		{"bad port", func(c *MetricsConfig) { c.Listen = "127.0.0.1:99999" }, "port"},
		{"user without password", func(c *MetricsConfig) { c.BasicAuthUser = "prom" }, "has no password"},
		{"password without user", func(c *MetricsConfig) { c.BasicAuthPasswordHash = mustHash(t, "x-0123456789") }, "no user"},
		{"plaintext password", func(c *MetricsConfig) { c.BasicAuthUser, c.BasicAuthPasswordHash = "prom", "hunter2" }, "is it the password itself?"},
		{"bcrypt", func(c *MetricsConfig) {
			c.BasicAuthUser, c.BasicAuthPasswordHash = "prom", "$2y$10$abcdefghijklmnopqrstuu5Lx4Q0bq1ZrV4b2cQJ8Y3v9m0n1o2p3q"
		}, "bcrypt hashes are not supported"},
		{"weak hash", func(c *MetricsConfig) {
			c.BasicAuthUser, c.BasicAuthPasswordHash = "prom", "$pbkdf2-sha256$i=1000$aGFzaGZsZWV0LXNhbHQxNg$FX9/cmQ0NC4wpiHnYuPrUiWAHmnEg+fnCo4c1dWqE2g"
		}, "iterations"},
		{"world-readable hash file", func(c *MetricsConfig) { c.BasicAuthUser, c.BasicAuthPasswordFile = "prom", world }, "chmod 600"},
		{"missing hash file", func(c *MetricsConfig) { c.BasicAuthUser, c.BasicAuthPasswordFile = "prom", filepath.Join(dir, "nope") }, "nope"},
		{"client CA without TLS", func(c *MetricsConfig) { c.ClientCAFile = world }, "needs HTTPS"},
		{"cert without key", func(c *MetricsConfig) { c.TLSCertFile = world }, "needs both"},
	} {
		c := loopbackConfig()
		tc.mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrMetricsConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrMetricsConfig mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestMetricsPasswordHashInterop(t *testing.T) {
	// Made by the python3 one-liner in docs/prometheus-scrape.yml (fixed salt), password "correct horse".
	const fromPython = "$pbkdf2-sha256$i=100000$aGFzaGZsZWV0LXNhbHQxNg$FX9/cmQ0NC4wpiHnYuPrUiWAHmnEg+fnCo4c1dWqE2g"
	h, err := parsePasswordHash(fromPython)
	if err != nil {
		t.Fatal(err)
	}
	if !h.verify("correct horse") || h.verify("correct horse ") || h.verify("") {
		t.Fatal("python-made hash does not verify exactly its password")
	}
	made, err := HashMetricsPassword("s3cret-password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(made, "$pbkdf2-sha256$i=600000$") {
		t.Fatalf("HashMetricsPassword: %q", made)
	}
	if _, err := parsePasswordHash(made); err != nil {
		t.Fatalf("HashMetricsPassword made %q: %v", made, err)
	}
	// Round trip at the cheapest accepted work factor (600000 iterations cost seconds under -race).
	a, b := mustHash(t, "s3cret-password"), mustHash(t, "s3cret-password")
	if h, err := parsePasswordHash(a); err != nil || !h.verify("s3cret-password") || h.verify("s3cret-passworD") {
		t.Fatalf("round trip: %v", err)
	}
	if a == b {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

func TestMetricsBasicAuth(t *testing.T) {
	noLeaks(t)
	const user, pass = "prometheus", "scrape-me-0123456789"
	file := filepath.Join(t.TempDir(), "metrics-password")
	if err := os.WriteFile(file, []byte(mustHash(t, pass)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := loopbackConfig()
	cfg.BasicAuthUser, cfg.BasicAuthPasswordFile = user, file
	m := startMetrics(t, cfg, nil)
	c := metricsClient()
	base := "http://" + m.Addr()

	for _, tc := range []struct{ user, pass string }{{"", ""}, {user, "wrong"}, {user, ""}, {"root", pass}, {user, pass + "x"}} {
		r := metricsGet(t, c, base+"/metrics", tc.user, tc.pass)
		if r.code != http.StatusUnauthorized {
			t.Fatalf("%q:%q: HTTP %d, want 401", tc.user, tc.pass, r.code)
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("401 without a Basic challenge: %v", r.header)
		}
		if strings.Contains(r.body, "go_goroutines") {
			t.Fatal("a refused request got metrics")
		}
	}
	for _, path := range []string{"/readyz", "/status/ha"} {
		if r := metricsGet(t, c, base+path, "", ""); r.code != http.StatusUnauthorized {
			t.Fatalf("%s without credentials: HTTP %d, want 401", path, r.code)
		}
	}
	// Liveness says only "alive", so probes need no credential.
	if r := metricsGet(t, c, base+"/healthz", "", ""); r.code != 200 {
		t.Fatalf("/healthz: HTTP %d", r.code)
	}
	r := metricsGet(t, c, base+"/metrics", user, pass)
	if r.code != 200 || !strings.Contains(r.body, "go_goroutines") {
		t.Fatalf("right credentials: HTTP %d", r.code)
	}
	// Later scrapes hit the verified-credential cache, not the slow hash.
	start := time.Now()
	for range 20 {
		if r := metricsGet(t, c, base+"/readyz", user, pass); r.code != 200 {
			t.Fatalf("/readyz with credentials: HTTP %d", r.code)
		}
	}
	t.Logf("20 authenticated requests after the first: %s", time.Since(start))
	// The cache holds only the verified pair.
	if r := metricsGet(t, c, base+"/metrics", user, "wrong"); r.code != http.StatusUnauthorized {
		t.Fatalf("wrong password after a right one: HTTP %d", r.code)
	}
}

func TestMetricsReadinessFlips(t *testing.T) {
	noLeaks(t)
	h := NewHealthChecks()
	var storeErr atomic.Pointer[error]
	h.Register("node_store", func(context.Context) error {
		if p := storeErr.Load(); p != nil {
			return *p
		}
		return nil
	})
	h.Register("actors", func(context.Context) error { return nil })
	cfg := loopbackConfig()
	cfg.ReadinessTimeout = 200 * time.Millisecond
	m := startMetrics(t, cfg, h)
	c := metricsClient()
	url := "http://" + m.Addr() + "/readyz"

	ready := func() (int, ReadinessReport) {
		t.Helper()
		r := metricsGet(t, c, url, "", "")
		var rep ReadinessReport
		if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
			t.Fatalf("/readyz body %q: %v", r.body, err)
		}
		return r.code, rep
	}
	code, rep := ready()
	if code != 200 || rep.Status != "ready" || len(rep.Checks) != 2 || rep.Checks[0].Name != "actors" || rep.Checks[1].Name != "node_store" {
		t.Fatalf("all passing: HTTP %d %+v", code, rep)
	}

	err := errors.New("badger: directory locked")
	storeErr.Store(&err)
	code, rep = ready()
	if code != 503 || rep.Status != "not_ready" || rep.Checks[1].OK || rep.Checks[1].Error != "badger: directory locked" || !rep.Checks[0].OK {
		t.Fatalf("store failing: HTTP %d %+v", code, rep)
	}
	storeErr.Store(nil)
	if code, _ := ready(); code != 200 {
		t.Fatalf("store back: HTTP %d", code)
	}

	// A check that does not answer in time, and one that panics, fail on their own.
	unhang := h.Register("cloud_link", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	unpanic := h.Register("buggy", func(context.Context) error { panic("oops") })
	code, rep = ready()
	if code != 503 {
		t.Fatalf("hanging and panicking checks: HTTP %d %+v", code, rep)
	}
	for _, r := range rep.Checks {
		switch r.Name {
		case "cloud_link":
			if r.OK || !strings.Contains(r.Error, "no answer within 200ms") {
				t.Errorf("hanging check: %+v", r)
			}
		case "buggy":
			if r.OK || !strings.Contains(r.Error, "panicked: oops") {
				t.Errorf("panicking check: %+v", r)
			}
		}
	}
	unhang()
	unpanic()
	if code, rep := ready(); code != 200 || len(rep.Checks) != 2 {
		t.Fatalf("after unregistering: HTTP %d %+v", code, rep)
	}
	// An unregister func of a replaced check does not remove its replacement.
	old := h.Register("x", func(context.Context) error { return nil })
	h.Register("x", func(context.Context) error { return errors.New("replacement") })
	old()
	if code, _ := ready(); code != 503 {
		t.Fatalf("replacement check removed by the old unregister: HTTP %d", code)
	}
}

func TestMetricsHAStatus(t *testing.T) {
	noLeaks(t)
	m := startMetrics(t, loopbackConfig(), nil)
	c := metricsClient()
	base := "http://" + m.Addr() + "/status/ha"
	role := atomic.Value{}
	role.Store("standby")
	m.SetHAStatus(func(context.Context) (*HAStatus, error) {
		return &HAStatus{PairID: "site-a", Self: "node-b", Peer: "node-a", Role: role.Load().(string), Active: "node-a", Epoch: 7}, nil
	})
	r := metricsGet(t, c, base, "", "")
	var body struct {
		Pair *HAStatus `json:"pair"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.code != 200 || body.Pair == nil ||
		body.Pair.Active != "node-a" || body.Pair.Epoch != 7 || body.Pair.Role != "standby" {
		t.Fatalf("standby: HTTP %d %s", r.code, r.body)
	}
	if strings.Contains(r.body, "lease_expiry") {
		t.Errorf("zero lease expiry is shown: %s", r.body)
	}
	if r := metricsGet(t, c, base+"?active=1", "", ""); r.code != 503 {
		t.Fatalf("standby ?active=1: HTTP %d", r.code)
	}
	role.Store("active")
	if r := metricsGet(t, c, base+"?active=1", "", ""); r.code != 200 {
		t.Fatalf("active ?active=1: HTTP %d", r.code)
	}
	m.SetHAStatus(func(context.Context) (*HAStatus, error) { return nil, errors.New("lease holder not started") })
	if r := metricsGet(t, c, base, "", ""); r.code != 503 || !strings.Contains(r.body, "lease holder not started") {
		t.Fatalf("provider error: HTTP %d %s", r.code, r.body)
	}
	m.SetHAStatus(nil)
	if r := metricsGet(t, c, base, "", ""); strings.TrimSpace(r.body) != `{"pair":null}` {
		t.Fatalf("provider removed: %s", r.body)
	}
}

// testPKI writes a CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
type testPKI struct {
	caFile, certFile, keyFile string
	client                    tls.Certificate
	pool                      *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ip bool) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		if ip {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth, true)
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth, false)
	p := testPKI{
		caFile:   write("ca.pem", "CERTIFICATE", caDER),
		certFile: write("server.pem", "CERTIFICATE", srvDER),
		keyFile:  write("server-key.pem", "EC PRIVATE KEY", keyDER(srvKey)),
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

func TestMetricsClientCertificateAuth(t *testing.T) {
	noLeaks(t)
	pki := newTestPKI(t)
	cfg := loopbackConfig()
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.ClientCAFile = pki.certFile, pki.keyFile, pki.caFile
	m := startMetrics(t, cfg, nil)
	url := "https://" + m.Addr() + "/metrics"
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pki.pool, Certificates: certs}}}
	}
	if resp, err := client().Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate: HTTP %d, want a refused handshake", resp.StatusCode)
	}
	if r := metricsGet(t, client(pki.client), url, "", ""); r.code != 200 || !strings.Contains(r.body, "go_goroutines") {
		t.Fatalf("with a client certificate: HTTP %d", r.code)
	}
	// Client-cert auth on its own is enough off loopback.
	cfg.Listen = "0.0.0.0:9464"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("0.0.0.0 with client-cert auth: %v", err)
	}
}
