package bootstrap

// The metrics and health HTTP server every mode runs (server, node, combined, demo):
//
//	GET /metrics     Prometheus exposition of the process registry (golden signals + hashfleet_* series)
//	GET /healthz     liveness: the process answers HTTP. Always 200 while it runs; says nothing else.
//	GET /readyz      readiness: every check components registered (store open, actors running, gateway
//	                 accepting streams, ...) run with a timeout; 200 when all pass, 503 otherwise; JSON lists
//	                 each check. Informational checks (a node's cloud_link) are listed but never fail it.
//	GET /status/ha   warm-standby pairs: which node is active ({"pair": null} outside a pair);
//	                 ?active=1 answers 503 unless this node holds the lease (for keepalived/HAProxy checks).
//
// Security: it binds to loopback by default (127.0.0.1:9464). Any other address, including a hostname that
// resolves to anything but loopback, is refused unless basic auth or client-certificate auth is configured.
// With auth configured every endpoint but /healthz needs it; /healthz reveals only what a TCP connect does.
//
// Basic auth passwords are stored hashed, never in plaintext: PBKDF2-HMAC-SHA256 from the standard library
// (crypto/pbkdf2), in the PHC-style string "$pbkdf2-sha256$i=600000$<salt b64>$<key b64>" (HashMetricsPassword
// makes one; docs/prometheus-scrape.yml shows a python3 one-liner). bcrypt would match Prometheus's own
// web-config, but needs golang.org/x/crypto, which this module does not require yet; the hash string is
// self-describing, so adding "$2y$" hashes later changes no existing configuration. Like Prometheus's
// exporter-toolkit, a verified password is remembered as a SHA-256 digest of user and password, so each scrape
// does not pay the deliberately slow hash; unverified attempts run the slow hash one at a time, so a password
// guesser cannot take more than one core.
//
// Exposition format: the classic Prometheus text format, OpenMetrics negotiation off. Every scraper reads the
// text format (Prometheus, VictoriaMetrics, Grafana Agent, promtool check metrics), and hashfleet uses nothing
// only OpenMetrics carries (exemplars, _created series, units metadata); one format means one thing to test.
// Turn it on when exemplars (command ids on the command latency histogram) are worth it.

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMetricsListen is where /metrics listens unless told otherwise: loopback only, port 9464 (server,
// combined, demo; `node run` defaults to DefaultNodeMetricsListen, 9465). Other hashfleet processes on one
// host need distinct --metrics-listen ports.
const DefaultMetricsListen = "127.0.0.1:9464"

// Metrics server defaults.
const (
	// DefaultReadinessTimeout bounds each readiness check.
	DefaultReadinessTimeout = 2 * time.Second
	// DefaultPasswordIterations is the PBKDF2-HMAC-SHA256 work factor HashMetricsPassword uses (OWASP 2023).
	DefaultPasswordIterations = 600_000
	// MinPasswordIterations is the least work factor a configured hash may have.
	MinPasswordIterations = 100_000
	maxPasswordIterations = 10_000_000
	passwordHashPrefix    = "$pbkdf2-sha256$"
)

// Metrics server errors.
var (
	// ErrMetricsUnprotected: a non-loopback listen address without basic auth or client-certificate auth.
	ErrMetricsUnprotected = errors.New("metrics endpoint would be open to the network without authentication")
	// ErrMetricsConfig: a metrics server setting an operator must fix.
	ErrMetricsConfig = errors.New("metrics config")
)

// MetricsConfig configures the metrics and health server. The zero value is not valid; start from
// DefaultMetricsConfig.
type MetricsConfig struct {
	// Listen is host:port. Default DefaultMetricsListen (127.0.0.1:9464). ":0" picks a free port. A host
	// that is not loopback (another IP, 0.0.0.0, ::, "", or a name resolving to anything but loopback)
	// needs BasicAuthUser or ClientCAFile.
	Listen string
	// BasicAuthUser turns on HTTP basic auth; it needs BasicAuthPasswordHash or BasicAuthPasswordFile.
	BasicAuthUser string
	// BasicAuthPasswordHash is the password's hash ("$pbkdf2-sha256$i=...$salt$key", see
	// HashMetricsPassword), never the password itself.
	BasicAuthPasswordHash string
	// BasicAuthPasswordFile is a file holding that hash (one line), mode 0600. Set this or
	// BasicAuthPasswordHash, not both.
	BasicAuthPasswordFile string
	// TLSCertFile and TLSKeyFile serve HTTPS. Required with ClientCAFile; recommended with basic auth
	// off loopback (otherwise the password crosses the network in clear).
	TLSCertFile, TLSKeyFile string
	// ClientCAFile turns on client-certificate auth: only clients with a certificate signed by a CA in this
	// PEM file are served.
	ClientCAFile string
	// ReadinessTimeout bounds each readiness check (and the /status/ha provider). Default 2s; <= 0 is the
	// default.
	ReadinessTimeout time.Duration

	// lookup resolves Listen's host (tests); nil is the system resolver.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// DefaultMetricsConfig returns the defaults: loopback, no auth.
func DefaultMetricsConfig() MetricsConfig {
	return MetricsConfig{Listen: DefaultMetricsListen, ReadinessTimeout: DefaultReadinessTimeout}
}

// Flag names RegisterFlags defines; messages name them so an operator knows what to set.
const (
	FlagMetricsListen        = "metrics-listen"
	FlagMetricsBasicAuthUser = "metrics-basic-auth-user"
	FlagMetricsPasswordFile  = "metrics-basic-auth-password-file"
	FlagMetricsTLSCert       = "metrics-tls-cert"
	FlagMetricsTLSKey        = "metrics-tls-key"
	FlagMetricsClientCA      = "metrics-client-ca"
)

// RegisterFlags defines the --metrics-* flags on fs, with c's current values as defaults.
func (c *MetricsConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, FlagMetricsListen, c.Listen,
		"`host:port` of /metrics, /healthz, /readyz and /status/ha; a non-loopback address needs basic auth or client-certificate auth; \"off\" serves none")
	fs.StringVar(&c.BasicAuthUser, FlagMetricsBasicAuthUser, c.BasicAuthUser, "basic auth `user` for the metrics endpoints")
	fs.StringVar(&c.BasicAuthPasswordFile, FlagMetricsPasswordFile, c.BasicAuthPasswordFile,
		"`file` (mode 0600) holding the basic auth password's PBKDF2 hash ($pbkdf2-sha256$...)")
	fs.StringVar(&c.TLSCertFile, FlagMetricsTLSCert, c.TLSCertFile, "serve the metrics endpoints over HTTPS with this certificate `file` (PEM)")
	fs.StringVar(&c.TLSKeyFile, FlagMetricsTLSKey, c.TLSKeyFile, "private key `file` (PEM) of --"+FlagMetricsTLSCert)
	fs.StringVar(&c.ClientCAFile, FlagMetricsClientCA, c.ClientCAFile,
		"require client certificates signed by a CA in this PEM `file` (needs --"+FlagMetricsTLSCert+" and --"+FlagMetricsTLSKey+")")
}

func (c MetricsConfig) withDefaults() MetricsConfig {
	if c.Listen == "" {
		c.Listen = DefaultMetricsListen
	}
	if c.ReadinessTimeout <= 0 {
		c.ReadinessTimeout = DefaultReadinessTimeout
	}
	return c
}

func (c MetricsConfig) basicAuth() bool  { return c.BasicAuthUser != "" }
func (c MetricsConfig) clientCert() bool { return c.ClientCAFile != "" }
func (c MetricsConfig) tls() bool        { return c.TLSCertFile != "" }

// Validate reports every setting an operator must fix, including a non-loopback Listen without auth
// (wrapping ErrMetricsUnprotected). It resolves Listen's host when it is a name, and reads the password and CA
// files.
func (c MetricsConfig) Validate() error {
	_, err := c.withDefaults().prepare()
	return err
}

// metricsSetup is a validated configuration with its files read.
type metricsSetup struct {
	cfg      MetricsConfig
	loopback bool
	auth     *basicAuth
	tls      *tls.Config
}

func (c MetricsConfig) prepare() (*metricsSetup, error) {
	s := &metricsSetup{cfg: c}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrMetricsConfig}, args...)...))
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("--%s %q: want host:port, e.g. %s: %v", FlagMetricsListen, c.Listen, DefaultMetricsListen, err)
	} else if p, perr := strconv.ParseUint(port, 10, 16); perr != nil || (p == 0 && port != "0") {
		bad("--%s %q: port %q is not a number from 0 to 65535", FlagMetricsListen, c.Listen, port)
	}

	switch {
	case c.BasicAuthUser == "" && (c.BasicAuthPasswordHash != "" || c.BasicAuthPasswordFile != ""):
		bad("a basic auth password is set but no user: set --%s", FlagMetricsBasicAuthUser)
	case c.BasicAuthUser != "" && c.BasicAuthPasswordHash == "" && c.BasicAuthPasswordFile == "":
		bad("basic auth user %q has no password: set --%s to a file holding its hash (see HashMetricsPassword)", c.BasicAuthUser, FlagMetricsPasswordFile)
	case c.BasicAuthPasswordHash != "" && c.BasicAuthPasswordFile != "":
		bad("set the basic auth password hash or --%s, not both", FlagMetricsPasswordFile)
	case strings.ContainsAny(c.BasicAuthUser, ":\r\n"):
		bad("basic auth user %q: a user name cannot contain ':' or a line break", c.BasicAuthUser)
	case c.BasicAuthUser != "":
		encoded := c.BasicAuthPasswordHash
		what := "the basic auth password hash"
		if c.BasicAuthPasswordFile != "" {
			what = "--" + FlagMetricsPasswordFile + " " + c.BasicAuthPasswordFile
			raw, rerr := secretfile.Read(c.BasicAuthPasswordFile)
			if rerr != nil {
				bad("%s: %v", what, rerr)
				break
			}
			encoded = strings.TrimSpace(string(raw))
		}
		h, herr := parsePasswordHash(encoded)
		if herr != nil {
			bad("%s: %v", what, herr)
			break
		}
		s.auth = newBasicAuth(c.BasicAuthUser, h)
	}

	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("HTTPS needs both --%s and --%s", FlagMetricsTLSCert, FlagMetricsTLSKey)
	}
	if c.clientCert() && !c.tls() {
		bad("client-certificate auth (--%s) needs HTTPS: set --%s and --%s", FlagMetricsClientCA, FlagMetricsTLSCert, FlagMetricsTLSKey)
	}
	if c.TLSCertFile != "" && c.TLSKeyFile != "" {
		cert, terr := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if terr != nil {
			bad("--%s/--%s: %v", FlagMetricsTLSCert, FlagMetricsTLSKey, terr)
		} else {
			s.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
			if c.clientCert() {
				pem, rerr := os.ReadFile(c.ClientCAFile)
				pool := x509.NewCertPool()
				switch {
				case rerr != nil:
					bad("--%s: %v", FlagMetricsClientCA, rerr)
				case !pool.AppendCertsFromPEM(pem):
					bad("--%s %s: no PEM certificate in it", FlagMetricsClientCA, c.ClientCAFile)
				default:
					s.tls.ClientAuth, s.tls.ClientCAs = tls.RequireAndVerifyClientCert, pool
				}
			}
		}
	}
	if err == nil {
		loopback, lerr := c.loopbackHost(host)
		s.loopback = loopback
		if !loopback && !c.basicAuth() && !c.clientCert() {
			why := ""
			if lerr != nil {
				why = fmt.Sprintf(" (%v)", lerr)
			}
			errs = append(errs, fmt.Errorf("%w: --%s %s is not a loopback address%s, so anyone who can reach it would read this "+
				"host's metrics and health: set --%s with --%s (basic auth; add --%s/--%s so the password is not sent in clear), "+
				"or --%s with --%s and --%s (client certificates); or listen on loopback (the default, %s) and scrape through a proxy",
				ErrMetricsUnprotected, FlagMetricsListen, c.Listen, why, FlagMetricsBasicAuthUser, FlagMetricsPasswordFile,
				FlagMetricsTLSCert, FlagMetricsTLSKey, FlagMetricsClientCA, FlagMetricsTLSCert, FlagMetricsTLSKey, DefaultMetricsListen))
		}
	}
	return s, errors.Join(errs...)
}

// loopbackHost reports whether every address host stands for is a loopback address. "" (all interfaces) and
// the unspecified addresses are not; a name that does not resolve is not (with the resolver's error).
func (c MetricsConfig) loopbackHost(host string) (bool, error) {
	if host == "" {
		return false, errors.New("an empty host listens on every interface")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.IsLoopback(), nil
	}
	lookup := c.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return false, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return false, fmt.Errorf("%q resolves to no address", host)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return false, fmt.Errorf("%q resolves to %s", host, a)
		}
	}
	return true, nil
}

// HashMetricsPassword returns the PBKDF2-HMAC-SHA256 hash of password (DefaultPasswordIterations, 16-byte
// random salt) in the form BasicAuthPasswordHash and the password file take.
func HashMetricsPassword(password string) (string, error) {
	return hashPassword(password, DefaultPasswordIterations)
}

func hashPassword(password string, iter int) (string, error) {
	if password == "" {
		return "", fmt.Errorf("%w: empty password", ErrMetricsConfig)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%si=%d$%s$%s", passwordHashPrefix, iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

type passwordHash struct {
	iter      int
	salt, key []byte
}

func parsePasswordHash(s string) (passwordHash, error) {
	const want = `want "$pbkdf2-sha256$i=<iterations>$<salt base64>$<key base64>" (HashMetricsPassword makes one)`
	if strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$") {
		return passwordHash{}, fmt.Errorf("bcrypt hashes are not supported yet; %s", want)
	}
	if s == "" {
		return passwordHash{}, fmt.Errorf("empty; %s", want)
	}
	rest, ok := strings.CutPrefix(s, passwordHashPrefix)
	if !ok {
		return passwordHash{}, fmt.Errorf("not a PBKDF2 hash (is it the password itself?); %s", want)
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "i=") {
		return passwordHash{}, fmt.Errorf("malformed; %s", want)
	}
	iter, err := strconv.Atoi(strings.TrimPrefix(parts[0], "i="))
	if err != nil || iter < MinPasswordIterations || iter > maxPasswordIterations {
		return passwordHash{}, fmt.Errorf("iterations %q: want %d to %d", parts[0], MinPasswordIterations, maxPasswordIterations)
	}
	dec := func(v string) ([]byte, error) { return base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "=")) }
	salt, err1 := dec(parts[1])
	key, err2 := dec(parts[2])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return passwordHash{}, fmt.Errorf("salt (at least 8 bytes) or key (16 to 64 bytes) is not valid base64; %s", want)
	}
	return passwordHash{iter: iter, salt: salt, key: key}, nil
}

func (h passwordHash) verify(password string) bool {
	got, err := pbkdf2.Key(sha256.New, password, h.salt, h.iter, len(h.key))
	return err == nil && subtle.ConstantTimeCompare(got, h.key) == 1
}

// basicAuth checks one user. A verified user:password is remembered as a SHA-256 digest so scrapes do not pay
// the slow hash; unverified attempts run it one at a time.
type basicAuth struct {
	userDigest [sha256.Size]byte
	hash       passwordHash
	good       atomic.Pointer[[sha256.Size]byte]
	slow       chan struct{}
}

func newBasicAuth(user string, h passwordHash) *basicAuth {
	return &basicAuth{userDigest: sha256.Sum256([]byte(user)), hash: h, slow: make(chan struct{}, 1)}
}

func credentialDigest(user, pass string) [sha256.Size]byte {
	return sha256.Sum256([]byte(user + "\x00" + pass))
}

// check reports whether r carries the right credentials (false when ctx ends while waiting for the slow path).
func (a *basicAuth) check(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	d := credentialDigest(user, pass)
	if g := a.good.Load(); g != nil && subtle.ConstantTimeCompare(g[:], d[:]) == 1 {
		return true
	}
	select {
	case a.slow <- struct{}{}:
		defer func() { <-a.slow }()
	case <-r.Context().Done():
		return false
	}
	ud := sha256.Sum256([]byte(user))
	userOK := subtle.ConstantTimeCompare(ud[:], a.userDigest[:]) == 1
	passOK := a.hash.verify(pass) // always run, so a wrong user costs what a wrong password does
	if userOK && passOK {
		a.good.Store(&d)
		return true
	}
	return false
}

// CheckFunc is one readiness check: nil when its part is ready, else why not. It must return when ctx ends.
type CheckFunc func(ctx context.Context) error

// Check is a named readiness check. Names are short and stable ("node_store", "cloud_link").
type Check struct {
	Name string
	Fn   CheckFunc
	// Informational checks are run and reported on /readyz but do not make the process not ready (a node's
	// cloud link: a node without its cloud still runs its site).
	Informational bool
}

// Health is what /readyz asks: the readiness checks in force now. HealthChecks is the implementation
// components register with; a nil Health has no checks (always ready).
type Health interface {
	ReadyChecks() []Check
}

// HealthChecks is a registry of named readiness checks, safe for concurrent use.
type HealthChecks struct {
	mu     sync.Mutex
	seq    uint64
	checks map[string]registeredCheck
}

type registeredCheck struct {
	id            uint64
	fn            CheckFunc
	informational bool
}

// NewHealthChecks returns an empty registry.
func NewHealthChecks() *HealthChecks { return &HealthChecks{checks: map[string]registeredCheck{}} }

// Register adds (or replaces) the check called name; the returned func removes it, unless a later Register
// replaced it since.
func (h *HealthChecks) Register(name string, fn CheckFunc) (unregister func()) {
	return h.register(name, fn, false)
}

// RegisterInformational adds (or replaces) a check that /readyz runs and reports (with "informational":
// true) but that does not fail readiness.
func (h *HealthChecks) RegisterInformational(name string, fn CheckFunc) (unregister func()) {
	return h.register(name, fn, true)
}

func (h *HealthChecks) register(name string, fn CheckFunc, informational bool) (unregister func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	id := h.seq
	h.checks[name] = registeredCheck{id: id, fn: fn, informational: informational}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if c, ok := h.checks[name]; ok && c.id == id {
			delete(h.checks, name)
		}
	}
}

// ReadyChecks returns the checks sorted by name.
func (h *HealthChecks) ReadyChecks() []Check {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Check, 0, len(h.checks))
	for name, c := range h.checks {
		out = append(out, Check{Name: name, Fn: c.fn, Informational: c.informational})
	}
	slices.SortFunc(out, func(a, b Check) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// ReadinessReport is /readyz's body.
type ReadinessReport struct {
	// Status is "ready" or "not_ready" (a check that is not informational failed).
	Status string        `json:"status"`
	Checks []CheckResult `json:"checks"`
}

// CheckResult is one check's outcome.
type CheckResult struct {
	Name       string  `json:"name"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// Informational: reported, but its failure does not make the process not ready.
	Informational bool `json:"informational,omitempty"`
}

// runChecks runs every check concurrently, each bounded by timeout.
func runChecks(ctx context.Context, h Health, timeout time.Duration) ReadinessReport {
	rep := ReadinessReport{Status: "ready", Checks: []CheckResult{}}
	if h == nil {
		return rep
	}
	checks := h.ReadyChecks()
	rep.Checks = make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			rep.Checks[i] = runCheck(ctx, c, timeout)
		})
	}
	wg.Wait()
	for _, r := range rep.Checks {
		if !r.OK && !r.Informational {
			rep.Status = "not_ready"
		}
	}
	return rep
}

func runCheck(ctx context.Context, c Check, timeout time.Duration) (res CheckResult) {
	res.Name, res.Informational = c.Name, c.Informational
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		done <- c.Fn(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// A check that ignores ctx leaks its goroutine until it returns; CheckFunc's contract forbids that.
		err = fmt.Errorf("no answer within %s", timeout)
	}
	res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// HAStatus is one node's view of its warm-standby pair.
type HAStatus struct {
	// PairID names the pair.
	PairID string `json:"pair_id"`
	// Self is this node's id; Peer the other member's.
	Self string `json:"self"`
	Peer string `json:"peer,omitempty"`
	// Role is this node's: "active" (holds the lease), "standby", "fenced" (lease near expiry, writes
	// stopped) or "unknown".
	Role string `json:"role"`
	// Active is the node id holding the lease as far as this node knows ("" when unknown).
	Active string `json:"active"`
	// Epoch is the lease epoch (fencing token) this node knows; LeaseExpiry when that lease ends.
	Epoch       uint64    `json:"epoch"`
	LeaseExpiry time.Time `json:"lease_expiry,omitzero"`
	// PeerSeen is when gossip last heard the peer.
	PeerSeen time.Time `json:"peer_seen,omitzero"`
}

// HAStatusFunc reports the pair's status; nil status (and nil error) means this node is not in a pair.
type HAStatusFunc func(ctx context.Context) (*HAStatus, error)

type haBody struct {
	Pair  *HAStatus `json:"pair"`
	Error string    `json:"error,omitempty"`
}

// MetricsServer serves /metrics, /healthz, /readyz and /status/ha.
type MetricsServer struct {
	setup   *metricsSetup
	log     *slog.Logger
	health  Health
	started time.Time
	ha      atomic.Pointer[HAStatusFunc]
	ready   chan struct{} // one readiness run at a time

	hs   *http.Server
	addr string
	done chan struct{}

	stopOnce sync.Once
	stopErr  error

	authLogMu   sync.Mutex
	authLogAt   time.Time
	authDropped int
}

// StartMetrics validates cfg, binds its listener and serves until Stop (or ctx, which bounds only the start:
// binding happens before it returns). reg is served on /metrics (nil: NewRegistry()); health answers /readyz
// (nil: always ready).
func StartMetrics(ctx context.Context, cfg MetricsConfig, reg *prometheus.Registry, health Health, log *slog.Logger) (*MetricsServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	setup, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if reg == nil {
		reg = NewRegistry()
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on --%s %s: %w", FlagMetricsListen, cfg.Listen, err)
	}
	// The name may have resolved differently since Validate: check what was bound.
	if ap, perr := netip.ParseAddrPort(lis.Addr().String()); perr == nil && !ap.Addr().Unmap().IsLoopback() &&
		setup.auth == nil && !cfg.clientCert() {
		_ = lis.Close()
		return nil, fmt.Errorf("%w: bound %s, which is not loopback; set --%s/--%s or --%s",
			ErrMetricsUnprotected, lis.Addr(), FlagMetricsBasicAuthUser, FlagMetricsPasswordFile, FlagMetricsClientCA)
	}
	if setup.tls != nil {
		lis = tls.NewListener(lis, setup.tls)
	}
	m := &MetricsServer{setup: setup, log: log.With(slog.String("component", "metrics")), health: health,
		started: time.Now(), ready: make(chan struct{}, 1), addr: lis.Addr().String(), done: make(chan struct{})}
	registerBuildInfo(reg, m.log)
	m.hs = &http.Server{
		Handler:           m.handler(reg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(m.done)
		if err := m.hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics server stopped", slog.Any("err", err))
		}
	}()
	scheme := "http"
	if setup.tls != nil {
		scheme = "https"
	}
	authMode := "none (loopback)"
	switch {
	case setup.auth != nil && cfg.clientCert():
		authMode = "basic+client-cert"
	case setup.auth != nil:
		authMode = "basic"
	case cfg.clientCert():
		authMode = "client-cert"
	}
	m.log.Info("metrics listening", slog.String("url", scheme+"://"+m.addr+"/metrics"), slog.String("auth", authMode))
	if setup.auth != nil && setup.tls == nil && !setup.loopback {
		m.log.Warn("metrics basic auth without HTTPS: the password crosses the network in clear; set --" +
			FlagMetricsTLSCert + " and --" + FlagMetricsTLSKey)
	}
	return m, nil
}

// Addr is the bound address (the real port when Listen asked for :0).
func (m *MetricsServer) Addr() string { return m.addr }

// SetHAStatus installs the provider /status/ha reports (the node's lease holder calls it when it joins a
// pair; nil removes it).
func (m *MetricsServer) SetHAStatus(fn HAStatusFunc) {
	if fn == nil {
		m.ha.Store(nil)
		return
	}
	m.ha.Store(&fn)
}

// Stop shuts the server down gracefully, or closes it when ctx ends first. It is safe to call twice.
func (m *MetricsServer) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() {
		if err := m.hs.Shutdown(ctx); err != nil {
			_ = m.hs.Close()
			m.stopErr = fmt.Errorf("metrics: stop: %w", err)
		}
		<-m.done
	})
	return m.stopErr
}

func (m *MetricsServer) handler(reg *prometheus.Registry) http.Handler {
	metrics := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError, // a failing collector costs its series, not the scrape
		Registry:            reg,                      // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
		EnableOpenMetrics:   false, // see the file comment
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.authed(metrics))
	mux.HandleFunc("GET /healthz", m.onHealthz)
	mux.Handle("GET /readyz", m.authed(http.HandlerFunc(m.onReadyz)))
	mux.Handle("GET /status/ha", m.authed(http.HandlerFunc(m.onHA)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = fmt.Fprint(w, "hashfleet: /metrics /healthz /readyz /status/ha\n")
			return
		}
		http.NotFound(w, r)
	})
	return mux
}

func (m *MetricsServer) authed(next http.Handler) http.Handler {
	a := m.setup.auth
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.check(r) {
			m.logAuthFailure(r)
			w.Header().Set("WWW-Authenticate", `Basic realm="hashfleet metrics", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logAuthFailure logs at most one failed login per 10 s, with the count of those it skipped.
func (m *MetricsServer) logAuthFailure(r *http.Request) {
	m.authLogMu.Lock()
	now := time.Now()
	if now.Sub(m.authLogAt) < 10*time.Second {
		m.authDropped++
		m.authLogMu.Unlock()
		return
	}
	dropped := m.authDropped
	m.authLogAt, m.authDropped = now, 0
	m.authLogMu.Unlock()
	m.log.Warn("metrics: refused a request without valid basic auth", slog.String("remote", r.RemoteAddr),
		slog.String("path", r.URL.Path), slog.Int("also_refused_since_last_log", dropped))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (m *MetricsServer) onHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

func (m *MetricsServer) onReadyz(w http.ResponseWriter, r *http.Request) {
	select {
	case m.ready <- struct{}{}:
		defer func() { <-m.ready }()
	case <-r.Context().Done():
		return
	}
	rep := runChecks(r.Context(), m.health, m.setup.cfg.ReadinessTimeout)
	code := http.StatusOK
	if rep.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

func (m *MetricsServer) onHA(w http.ResponseWriter, r *http.Request) {
	wantActive := r.URL.Query().Get("active") != ""
	var body haBody
	if p := m.ha.Load(); p != nil {
		ctx, cancel := context.WithTimeout(r.Context(), m.setup.cfg.ReadinessTimeout)
		st, err := (*p)(ctx)
		cancel()
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, haBody{Error: err.Error()})
			return
		}
		body.Pair = st
	}
	code := http.StatusOK
	if wantActive && (body.Pair == nil || body.Pair.Role != "active") {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

// registerBuildInfo adds hashfleet_build_info once per registry.
func registerBuildInfo(reg *prometheus.Registry, log *slog.Logger) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hashfleet_build_info",
		Help: "Always 1; labels name the running hashfleet version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	g.WithLabelValues(Version, runtime.Version()).Set(1)
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			log.Warn("metrics: hashfleet_build_info not registered", slog.Any("err", err))
		}
	}
}
