package antminer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/cgminer"
)

// Config tunes one driver. Zero fields take the defaults below.
type Config struct {
	// CGMiner tunes the API side (reads). Its Clock defaults to Clock.
	CGMiner cgminer.Config
	// Username and Password are the web CGI's digest credentials. Default "root"/"root", the stock
	// firmware's; sites change them.
	Username string
	Password string
	// Scheme is "http" (default) or "https".
	Scheme string
	// TLS is the client TLS configuration for Scheme "https". nil: the system roots.
	TLS *tls.Config
	// RequestTimeout bounds one HTTP exchange, body included; an earlier ctx deadline wins. Default 5s.
	RequestTimeout time.Duration
	// DialTimeout bounds the TCP connect to the web CGI. Default 2s.
	DialTimeout time.Duration
	// MaxBodyBytes bounds one CGI reply; a larger one is ErrMalformed. Default 256 KiB (a real
	// get_miner_conf.cgi is under 2 KiB).
	MaxBodyBytes int64
	// InfoTTL is how long get_system_info.cgi is cached between polls. Default 10 min.
	InfoTTL time.Duration
	// PowerModes maps SET_POWER_TARGET (and CURTAIL with a power target) onto work modes: the mode with the
	// highest PowerW at or below the target wins. Empty (the default): SET_POWER_TARGET is ErrUnsupported.
	// Example for an S19j Pro: {{"3", 2200}, {"0", 3100}}.
	PowerModes []PowerMode
	// Clock stamps samples and times the info cache. Default clock.Real().
	Clock clock.Clock
	// Transport replaces the driver's own HTTP transport (tests). Default: a transport owned by the driver.
	Transport http.RoundTripper
}

// PowerMode is one work mode and the power it draws.
type PowerMode struct {
	WorkMode string  // "0" normal, "1" sleep, "3" low power
	PowerW   float64 // watts drawn in this mode
}

// Defaults; see Config.
const (
	DefaultUsername       = "root"
	DefaultPassword       = "root"
	DefaultScheme         = "http"
	DefaultRequestTimeout = 5 * time.Second
	DefaultDialTimeout    = 2 * time.Second
	DefaultMaxBodyBytes   = 256 << 10
	DefaultInfoTTL        = 10 * time.Minute

	minMaxBodyBytes = 4 << 10
	maxMaxBodyBytes = 64 << 20
	maxRedirects    = 3
	maxPools        = 3
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config {
	return Config{
		CGMiner:        cgminer.DefaultConfig(),
		Username:       DefaultUsername,
		Password:       DefaultPassword,
		Scheme:         DefaultScheme,
		RequestTimeout: DefaultRequestTimeout,
		DialTimeout:    DefaultDialTimeout,
		MaxBodyBytes:   DefaultMaxBodyBytes,
		InfoTTL:        DefaultInfoTTL,
		Clock:          clock.Real(),
	}
}

// Validate reports settings the driver cannot work with.
func (c Config) Validate() error {
	errs := []error{c.CGMiner.Validate()}
	if c.Scheme != "" && c.Scheme != "http" && c.Scheme != "https" {
		errs = append(errs, fmt.Errorf("antminer: Scheme must be http or https, got %q", c.Scheme))
	}
	if c.RequestTimeout < 0 || c.DialTimeout < 0 || c.InfoTTL < 0 {
		errs = append(errs, errors.New("antminer: RequestTimeout, DialTimeout and InfoTTL must not be negative"))
	}
	if c.MaxBodyBytes != 0 && (c.MaxBodyBytes < minMaxBodyBytes || c.MaxBodyBytes > maxMaxBodyBytes) {
		errs = append(errs, fmt.Errorf("antminer: MaxBodyBytes must be between %d and %d, got %d", minMaxBodyBytes, maxMaxBodyBytes, c.MaxBodyBytes))
	}
	for _, p := range c.PowerModes {
		if (p.WorkMode != "0" && p.WorkMode != "1" && p.WorkMode != "3") || p.PowerW <= 0 {
			errs = append(errs, fmt.Errorf("antminer: PowerModes entry %+v: WorkMode must be 0, 1 or 3 and PowerW positive", p))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Username == "" {
		c.Username = d.Username
	}
	if c.Password == "" {
		c.Password = d.Password
	}
	if c.Scheme == "" {
		c.Scheme = d.Scheme
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.InfoTTL == 0 {
		c.InfoTTL = d.InfoTTL
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.CGMiner.Clock == nil {
		c.CGMiner.Clock = c.Clock
	}
	return c
}
