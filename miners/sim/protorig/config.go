package protorig

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// Config shapes a simulated fleet. Zero fields take the defaults of DefaultConfig, except the booleans.
type Config struct {
	// Count is the number of rigs. Default 10; at most 20000.
	Count int
	// Host is the address every rig listens on when PerMinerIP is false. Default "127.0.0.1".
	Host string
	// Port is the listening port. 0 (the default): each rig gets an ephemeral port. Otherwise, with
	// PerMinerIP every rig listens on this same port on its own address (a real site's shape); without it,
	// rig i listens on Port+i.
	Port int
	// PerMinerIP puts rig i on its own loopback address, BaseIP plus i (addresses ending in .0 or .255 are
	// skipped). Linux answers the whole of 127.0.0.0/8 on lo, so nothing needs configuring.
	PerMinerIP bool
	// BaseIP is the first rig's address when PerMinerIP is set. Default "127.20.0.1". Must be in 127.0.0.0/8,
	// and so must the last rig's.
	BaseIP string
	// Seed makes serial numbers, MACs, nominal hashrates and temperatures reproducible. Default 0 is a seed
	// like any other.
	Seed int64
	// Clock is business time: uptime, token expiry, reboot and locate durations, write-log timestamps.
	// Default clock.Real().
	Clock clock.Clock
	// IDPrefix starts every miner id; rig i is IDPrefix + four-digit i. Default "proto-".
	IDPrefix string
	// Password is every rig's login password (the contract asks for at least 8 characters). Default
	// "proto-admin". Miner.SetPassword changes one rig's.
	Password string
	// TLS serves HTTPS with a self-signed certificate made at Start (clients get it from Fleet.ClientTLS).
	TLS bool
	// RebootDuration is how long a rig stays unreachable after POST /api/v1/system/reboot, on Clock.
	// Default 90s.
	RebootDuration time.Duration
	// AccessTokenTTL is the life of a password-login access token, on Clock. Default 15 min. Refresh tokens
	// live 24 h.
	AccessTokenTTL time.Duration
	// JWTMaxTTL is the longest exp-iat accepted in a node-signed EdDSA JWT. Default 5 min.
	JWTMaxTTL time.Duration
	// JWTLeeway is the clock skew tolerated on iat and exp. Default 30s.
	JWTLeeway time.Duration
	// SlowByteDelay is the wall-clock pause between bytes of a reply under FaultSlow. Default 200ms.
	SlowByteDelay time.Duration
	// HugeBodyBytes is the size of a reply under FaultHugeBody. Default 64 MiB.
	HugeBodyBytes int64
	// RedirectURL is where FaultRedirect points, with the request's path appended. Default
	// "http://redirect.invalid".
	RedirectURL string
	// ReadHeaderTimeout and IdleTimeout are the servers' wall-clock limits. Defaults 5s and 30s.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
}

// Defaults; see Config.
const (
	DefaultCount             = 10
	DefaultHost              = "127.0.0.1"
	DefaultBaseIP            = "127.20.0.1"
	DefaultIDPrefix          = "proto-"
	DefaultPassword          = "proto-admin"
	DefaultRebootDuration    = 90 * time.Second
	DefaultAccessTokenTTL    = 15 * time.Minute
	DefaultJWTMaxTTL         = 5 * time.Minute
	DefaultJWTLeeway         = 30 * time.Second
	DefaultSlowByteDelay     = 200 * time.Millisecond
	DefaultHugeBodyBytes     = 64 << 20
	DefaultRedirectURL       = "http://redirect.invalid"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second

	maxCount        = 20000
	refreshTokenTTL = 24 * time.Hour
	maxRequestBytes = 64 << 10
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config {
	return Config{
		Count:             DefaultCount,
		Host:              DefaultHost,
		BaseIP:            DefaultBaseIP,
		Clock:             clock.Real(),
		IDPrefix:          DefaultIDPrefix,
		Password:          DefaultPassword,
		RebootDuration:    DefaultRebootDuration,
		AccessTokenTTL:    DefaultAccessTokenTTL,
		JWTMaxTTL:         DefaultJWTMaxTTL,
		JWTLeeway:         DefaultJWTLeeway,
		SlowByteDelay:     DefaultSlowByteDelay,
		HugeBodyBytes:     DefaultHugeBodyBytes,
		RedirectURL:       DefaultRedirectURL,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
	}
}

// Validate reports settings the fleet cannot start with.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Count < 1 || c.Count > maxCount {
		errs = append(errs, fmt.Errorf("protorig: Count must be between 1 and %d, got %d", maxCount, c.Count))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("protorig: Port must be between 0 and 65535, got %d", c.Port))
	}
	if !c.PerMinerIP && c.Port != 0 && c.Port+c.Count-1 > 65535 {
		errs = append(errs, fmt.Errorf("protorig: Port %d + Count %d runs past port 65535", c.Port, c.Count))
	}
	if c.PerMinerIP {
		if _, err := minerIPs(c.BaseIP, c.Count); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := netip.ParseAddr(c.Host); err != nil && c.Host != "localhost" {
		errs = append(errs, fmt.Errorf("protorig: Host must be an IP address or localhost, got %q", c.Host))
	}
	if len(c.Password) < 8 {
		errs = append(errs, fmt.Errorf("protorig: Password must be at least 8 characters (the contract's minimum)"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"RebootDuration", c.RebootDuration}, {"AccessTokenTTL", c.AccessTokenTTL}, {"JWTMaxTTL", c.JWTMaxTTL},
		{"JWTLeeway", c.JWTLeeway}, {"SlowByteDelay", c.SlowByteDelay},
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"IdleTimeout", c.IdleTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("protorig: %s must not be negative, got %v", d.name, d.v))
		}
	}
	if c.HugeBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("protorig: HugeBodyBytes must be at least 1 KiB, got %d", c.HugeBodyBytes))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Count == 0 {
		c.Count = d.Count
	}
	if c.Host == "" {
		c.Host = d.Host
	}
	if c.BaseIP == "" {
		c.BaseIP = d.BaseIP
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.IDPrefix == "" {
		c.IDPrefix = d.IDPrefix
	}
	if c.Password == "" {
		c.Password = d.Password
	}
	if c.RebootDuration == 0 {
		c.RebootDuration = d.RebootDuration
	}
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = d.AccessTokenTTL
	}
	if c.JWTMaxTTL == 0 {
		c.JWTMaxTTL = d.JWTMaxTTL
	}
	if c.JWTLeeway == 0 {
		c.JWTLeeway = d.JWTLeeway
	}
	if c.SlowByteDelay == 0 {
		c.SlowByteDelay = d.SlowByteDelay
	}
	if c.HugeBodyBytes == 0 {
		c.HugeBodyBytes = d.HugeBodyBytes
	}
	if c.RedirectURL == "" {
		c.RedirectURL = d.RedirectURL
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	return c
}

// minerIPs returns n loopback addresses from base on, skipping those ending in .0 or .255.
func minerIPs(base string, n int) ([]netip.Addr, error) {
	a, err := netip.ParseAddr(base)
	if err != nil || !a.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(a) {
		return nil, fmt.Errorf("protorig: BaseIP must be an IPv4 address in 127.0.0.0/8, got %q", base)
	}
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		if !netip.MustParsePrefix("127.0.0.0/8").Contains(a) {
			return nil, fmt.Errorf("protorig: %d addresses from BaseIP %s run out of 127.0.0.0/8", n, base)
		}
		if b := a.As4(); b[3] != 0 && b[3] != 255 {
			out = append(out, a)
		}
		a = a.Next()
	}
	return out, nil
}
