// Package httpx is the HTTP client plumbing the web drivers (miners/antminer, miners/proto) share: the
// settings every one of them has and their validation, a transport of its own, bounded replies, deadlines
// covering the body, redirects only to the same scheme and host:port, TLS/plain mix-ups named as such, and
// failures classified as miners.ErrUnreachable, ErrMalformed or ErrRefused.
package httpx

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Config is the HTTP part of a driver's Config; the drivers document each field under the same name.
type Config struct {
	Scheme         string // "http" or "https"
	TLS            *tls.Config
	RequestTimeout time.Duration // one exchange, body included
	DialTimeout    time.Duration
	MaxBodyBytes   int64 // one reply body; more is miners.ErrMalformed
	InfoTTL        time.Duration
	Transport      http.RoundTripper // replaces the client's own transport (tests)
	// SourceIP, when set, is the local address the client's own transport dials from (a host with
	// several addresses on the miners' LAN; the simulations tell nodes apart by it). Default: any.
	SourceIP string
}

// Defaults and limits shared by the drivers; the default MaxBodyBytes is each driver's own.
const (
	DefaultScheme         = "http"
	DefaultRequestTimeout = 5 * time.Second
	DefaultDialTimeout    = 2 * time.Second
	DefaultInfoTTL        = 10 * time.Minute

	MinMaxBodyBytes = 4 << 10
	MaxMaxBodyBytes = 64 << 20
	MaxRedirects    = 3
)

// Validate reports the settings a client cannot work with, each error prefixed with pkg. Zero fields are
// valid (they take defaults).
func (c Config) Validate(pkg string) []error {
	var errs []error
	if c.Scheme != "" && c.Scheme != "http" && c.Scheme != "https" {
		errs = append(errs, fmt.Errorf("%s: Scheme must be http or https, got %q", pkg, c.Scheme))
	}
	if c.RequestTimeout < 0 || c.DialTimeout < 0 || c.InfoTTL < 0 {
		errs = append(errs, errors.New(pkg+": RequestTimeout, DialTimeout and InfoTTL must not be negative"))
	}
	if c.MaxBodyBytes != 0 && (c.MaxBodyBytes < MinMaxBodyBytes || c.MaxBodyBytes > MaxMaxBodyBytes) {
		errs = append(errs, fmt.Errorf("%s: MaxBodyBytes must be between %d and %d, got %d", pkg, MinMaxBodyBytes, MaxMaxBodyBytes, c.MaxBodyBytes))
	}
	return errs
}

// WithDefaults returns c with its zero fields set to the defaults, maxBody being the driver's MaxBodyBytes.
func (c Config) WithDefaults(maxBody int64) Config {
	c.Scheme, c.MaxBodyBytes = cmp.Or(c.Scheme, DefaultScheme), cmp.Or(c.MaxBodyBytes, maxBody)
	c.RequestTimeout, c.DialTimeout = cmp.Or(c.RequestTimeout, DefaultRequestTimeout), cmp.Or(c.DialTimeout, DefaultDialTimeout)
	c.InfoTTL = cmp.Or(c.InfoTTL, DefaultInfoTTL)
	return c
}
