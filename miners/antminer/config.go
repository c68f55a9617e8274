package antminer

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/internal/httpx"
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
	// SourceIP, when set, is the local address the driver's own transport dials the miner from. Default:
	// any.
	SourceIP string
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
	DefaultScheme         = httpx.DefaultScheme
	DefaultRequestTimeout = httpx.DefaultRequestTimeout
	DefaultDialTimeout    = httpx.DefaultDialTimeout
	DefaultMaxBodyBytes   = 256 << 10
	DefaultInfoTTL        = httpx.DefaultInfoTTL

	maxPools = 3
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config {
	return Config{CGMiner: cgminer.DefaultConfig()}.withDefaults()
}

// Validate reports settings the driver cannot work with.
func (c Config) Validate() error {
	errs := []error{c.CGMiner.Validate()}
	errs = append(errs, c.web().Validate("antminer")...)
	for _, p := range c.PowerModes {
		if (p.WorkMode != "0" && p.WorkMode != "1" && p.WorkMode != "3") || p.PowerW <= 0 {
			errs = append(errs, fmt.Errorf("antminer: PowerModes entry %+v: WorkMode must be 0, 1 or 3 and PowerW positive", p))
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	w := c.web().WithDefaults(DefaultMaxBodyBytes)
	c.Scheme, c.RequestTimeout, c.DialTimeout, c.MaxBodyBytes, c.InfoTTL = w.Scheme, w.RequestTimeout, w.DialTimeout, w.MaxBodyBytes, w.InfoTTL
	c.Username, c.Password = cmp.Or(c.Username, DefaultUsername), cmp.Or(c.Password, DefaultPassword)
	c.Clock = cmp.Or(c.Clock, clock.Real())
	c.CGMiner.Clock = cmp.Or(c.CGMiner.Clock, c.Clock)
	return c
}

// web is the part of the configuration the HTTP client works from.
func (c Config) web() httpx.Config {
	return httpx.Config{Scheme: c.Scheme, TLS: c.TLS, RequestTimeout: c.RequestTimeout, DialTimeout: c.DialTimeout,
		MaxBodyBytes: c.MaxBodyBytes, InfoTTL: c.InfoTTL, Transport: c.Transport, SourceIP: c.SourceIP}
}
