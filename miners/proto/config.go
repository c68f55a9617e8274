package proto

import (
	"cmp"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/internal/httpx"
)

// Config tunes one driver. Zero fields take the defaults below.
type Config struct {
	// Password is the rig's login password for /api/v1/auth/login. Empty: no password login.
	Password string
	// SigningKey is the node's miner-signing key (an ed25519.PrivateKey, or any crypto.Signer whose public
	// key is ed25519, such as a key held elsewhere). nil: no JWT authentication.
	SigningKey crypto.Signer
	// Issuer is the iss claim of the driver's JWTs, normally the node id. Default "hashfleet".
	Issuer string
	// TokenTTL is the lifetime of one JWT (exp - iat). Default 60s; at most 5 min, the simulator's and a
	// careful rig's limit.
	TokenTTL time.Duration
	// Scheme is "http" (default) or "https".
	Scheme string
	// TLS is the client TLS configuration for Scheme "https". nil: the system roots.
	TLS *tls.Config
	// RequestTimeout bounds one HTTP exchange, body included; an earlier ctx deadline wins. Default 5s.
	RequestTimeout time.Duration
	// DialTimeout bounds the TCP connect. Default 2s.
	DialTimeout time.Duration
	// MaxBodyBytes bounds one reply body; a larger one is ErrMalformed. Default 1 MiB.
	MaxBodyBytes int64
	// InfoTTL is how long the rarely changing system, network and hashboard information is cached between
	// polls. Default 10 min.
	InfoTTL time.Duration
	// LocateSeconds is how long BLINK lights the LED when the command has no "seconds" param. Default 300;
	// 0 in the param means until turned off.
	LocateSeconds int
	// Clock stamps samples and times JWTs and caches. Default clock.Real().
	Clock clock.Clock
	// Transport replaces the driver's own HTTP transport (tests). Default: a transport owned by the driver,
	// with no proxy, Config.TLS and the timeouts above.
	Transport http.RoundTripper
	// SourceIP, when set, is the local address the driver's own transport dials the miner from. Default:
	// any.
	SourceIP string
}

// Defaults; see Config.
const (
	DefaultIssuer         = "hashfleet"
	DefaultTokenTTL       = 60 * time.Second
	DefaultScheme         = httpx.DefaultScheme
	DefaultRequestTimeout = httpx.DefaultRequestTimeout
	DefaultDialTimeout    = httpx.DefaultDialTimeout
	DefaultMaxBodyBytes   = 1 << 20
	DefaultInfoTTL        = httpx.DefaultInfoTTL
	DefaultLocateSeconds  = 300

	maxTokenTTL = 5 * time.Minute
)

// DefaultConfig returns the defaults (no credentials).
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports settings the driver cannot work with.
func (c Config) Validate() error {
	var errs []error
	if c.SigningKey != nil {
		if _, ok := c.SigningKey.Public().(ed25519.PublicKey); !ok {
			errs = append(errs, fmt.Errorf("proto: SigningKey must be an ed25519 key, got %T", c.SigningKey.Public()))
		}
	}
	if c.TokenTTL < 0 || c.TokenTTL > maxTokenTTL {
		errs = append(errs, fmt.Errorf("proto: TokenTTL must be between 1s and %v, got %v", maxTokenTTL, c.TokenTTL))
	} else if c.TokenTTL != 0 && c.TokenTTL < time.Second {
		errs = append(errs, fmt.Errorf("proto: TokenTTL must be at least 1s (JWT times are whole seconds), got %v", c.TokenTTL))
	}
	errs = append(errs, c.web().Validate("proto")...)
	if c.LocateSeconds < 0 {
		errs = append(errs, fmt.Errorf("proto: LocateSeconds must not be negative, got %d", c.LocateSeconds))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	w := c.web().WithDefaults(DefaultMaxBodyBytes)
	c.Scheme, c.RequestTimeout, c.DialTimeout, c.MaxBodyBytes, c.InfoTTL = w.Scheme, w.RequestTimeout, w.DialTimeout, w.MaxBodyBytes, w.InfoTTL
	c.Issuer, c.TokenTTL = cmp.Or(c.Issuer, DefaultIssuer), cmp.Or(c.TokenTTL, DefaultTokenTTL)
	c.LocateSeconds, c.Clock = cmp.Or(c.LocateSeconds, DefaultLocateSeconds), cmp.Or(c.Clock, clock.Real())
	return c
}

// web is the part of the configuration the HTTP client works from.
func (c Config) web() httpx.Config {
	return httpx.Config{Scheme: c.Scheme, TLS: c.TLS, RequestTimeout: c.RequestTimeout, DialTimeout: c.DialTimeout,
		MaxBodyBytes: c.MaxBodyBytes, InfoTTL: c.InfoTTL, Transport: c.Transport, SourceIP: c.SourceIP}
}
