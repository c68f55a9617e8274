package localui

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultAddr is where the local UI listens unless --local-ui says otherwise: every interface, so staff on
// the site LAN reach it when the WAN is down.
const DefaultAddr = ":8443"

// Config configures the local UI. Every duration is on the injected clock except the HTTP server's own
// I/O timeouts.
type Config struct {
	// Addr is the listen address (--local-ui). Default ":8443". Tests use "127.0.0.1:0".
	Addr string
	// Dir holds the certificate and key (local-ui.crt, local-ui.key) and the local-admin credential
	// (local-admin.json); created 0700 if missing, refused if group or others can access it. Keep it apart
	// from the node's identity and cloud credentials (the node uses <data-dir>/localui). Required.
	Dir string
	// Hostnames are DNS names or IP addresses the certificate is valid for besides localhost, 127.0.0.1 and
	// ::1 (which are always there); the IP of Addr is added when Addr names one.
	Hostnames []string
	// NodeID is shown in the page header. Optional.
	NodeID string

	// SessionTTL is a session's absolute lifetime from login. Default 12h (one shift).
	SessionTTL time.Duration
	// SessionIdle ends a session unused for this long. Default 30m.
	SessionIdle time.Duration
	// MaxSessions bounds live sessions; logging in beyond it ends the oldest. Default 32.
	MaxSessions int

	// Login is the failed-login lockout policy (see LoginPolicy for defaults).
	Login LoginPolicy
	// MaxConcurrentHashes bounds password verifications running at once (each argon2id verification takes
	// 64 MiB and ~0.1 s of CPU). Default 2.
	MaxConcurrentHashes int

	// SiteTimeout bounds each call to the Site. Default 10s.
	SiteTimeout time.Duration
	// PageSize is how many miners one page of the list shows. Default 500.
	PageSize int
	// RefreshInterval is how often the pages refresh live values (telemetry, the link banner). Default 5s.
	RefreshInterval time.Duration
	// CommandLogLimit is how many local commands the command log page shows, newest first. Default 200.
	CommandLogLimit int
	// CertValidity is the self-signed certificate's lifetime; it is remade at start when within 30 days of
	// expiry or when the host names change (the fingerprint then changes: it is logged). Default 5 years.
	CertValidity time.Duration
}

// DefaultConfig returns the defaults for a UI keeping its files in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Addr:                DefaultAddr,
		Dir:                 dir,
		SessionTTL:          12 * time.Hour,
		SessionIdle:         30 * time.Minute,
		MaxSessions:         32,
		Login:               DefaultLoginPolicy(),
		MaxConcurrentHashes: 2,
		SiteTimeout:         10 * time.Second,
		PageSize:            500,
		RefreshInterval:     5 * time.Second,
		CommandLogLimit:     200,
		CertValidity:        5 * 365 * 24 * time.Hour,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = d.SessionTTL
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = d.SessionIdle
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = d.MaxSessions
	}
	c.Login = c.Login.withDefaults()
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = d.MaxConcurrentHashes
	}
	if c.SiteTimeout == 0 {
		c.SiteTimeout = d.SiteTimeout
	}
	if c.PageSize == 0 {
		c.PageSize = d.PageSize
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = d.RefreshInterval
	}
	if c.CommandLogLimit == 0 {
		c.CommandLogLimit = d.CommandLogLimit
	}
	if c.CertValidity == 0 {
		c.CertValidity = d.CertValidity
	}
	return c
}

// Validate reports every field an operator must fix, after defaults are applied to zero fields.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("local UI: "+format+": %w", append(args, ErrInvalidConfig)...))
	}
	if c.Dir == "" {
		bad("the directory for the certificate and local-admin credential is empty")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("listen address %q is not host:port (e.g. :8443 or 192.168.1.10:8443)", c.Addr)
	}
	for _, h := range c.Hostnames {
		if h == "" || (strings.ContainsAny(h, " \t/:") && net.ParseIP(h) == nil) {
			bad("host name %q is neither a DNS name nor an IP address", h)
		}
	}
	if c.SessionTTL < 0 || c.SessionIdle < 0 || c.SiteTimeout < 0 || c.RefreshInterval < 0 || c.CertValidity < 0 {
		bad("durations must be positive")
	}
	if c.SessionIdle > c.SessionTTL {
		bad("session idle timeout %s is longer than the session lifetime %s", c.SessionIdle, c.SessionTTL)
	}
	if c.MaxSessions < 0 || c.MaxConcurrentHashes < 0 || c.PageSize < 0 || c.CommandLogLimit < 0 {
		bad("counts must be positive")
	}
	if c.CertValidity > 0 && c.CertValidity <= certRenewBefore {
		bad("certificate validity %s must be longer than %s", c.CertValidity, certRenewBefore)
	}
	if err := c.Login.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Env is what the UI runs against.
type Env struct {
	// Site is the node the UI operates. Required.
	Site Site
	// Clock is business time: sessions, lockouts, "since" texts, certificate dates. Default clock.Real().
	Clock clock.Clock
	// Logger receives login, lockout and command lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the UI's metrics; nil registers none.
	Registerer prometheus.Registerer
}
