package protorig

import (
	"cmp"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/sim/internal/httpsim"
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
	DefaultCount             = httpsim.DefaultCount
	DefaultHost              = httpsim.DefaultHost
	DefaultBaseIP            = "127.20.0.1"
	DefaultIDPrefix          = "proto-"
	DefaultPassword          = "proto-admin"
	DefaultRebootDuration    = 90 * time.Second
	DefaultAccessTokenTTL    = 15 * time.Minute
	DefaultJWTMaxTTL         = 5 * time.Minute
	DefaultJWTLeeway         = 30 * time.Second
	DefaultSlowByteDelay     = httpsim.DefaultSlowByteDelay
	DefaultHugeBodyBytes     = httpsim.DefaultHugeBodyBytes
	DefaultRedirectURL       = httpsim.DefaultRedirectURL
	DefaultReadHeaderTimeout = httpsim.DefaultReadHeaderTimeout
	DefaultIdleTimeout       = httpsim.DefaultIdleTimeout

	refreshTokenTTL = 24 * time.Hour
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports settings the fleet cannot start with.
func (c Config) Validate() error {
	c = c.withDefaults()
	var own []error
	if len(c.Password) < 8 {
		own = append(own, fmt.Errorf("protorig: Password must be at least 8 characters (the contract's minimum)"))
	}
	return c.web().Validate(own, httpsim.Duration{Name: "AccessTokenTTL", Value: c.AccessTokenTTL},
		httpsim.Duration{Name: "JWTMaxTTL", Value: c.JWTMaxTTL}, httpsim.Duration{Name: "JWTLeeway", Value: c.JWTLeeway})
}

// web is the part of the configuration the rigs' servers share with the other HTTP simulators.
func (c Config) web() httpsim.Config {
	return httpsim.Config{Name: "protorig", SkipEnds: true, Count: c.Count, Host: c.Host, Port: c.Port,
		PerMinerIP: c.PerMinerIP, BaseIP: c.BaseIP, Clock: c.Clock, IDPrefix: c.IDPrefix, TLS: c.TLS,
		RebootDuration: c.RebootDuration, SlowByteDelay: c.SlowByteDelay, HugeBodyBytes: c.HugeBodyBytes,
		RedirectURL: c.RedirectURL, ReadHeaderTimeout: c.ReadHeaderTimeout, IdleTimeout: c.IdleTimeout}
}

func (c Config) withDefaults() Config {
	w := c.web().WithDefaults(DefaultBaseIP, DefaultIDPrefix, DefaultRebootDuration)
	c.Count, c.Host, c.BaseIP, c.Clock, c.IDPrefix = w.Count, w.Host, w.BaseIP, w.Clock, w.IDPrefix
	c.RebootDuration, c.SlowByteDelay, c.HugeBodyBytes, c.RedirectURL = w.RebootDuration, w.SlowByteDelay, w.HugeBodyBytes, w.RedirectURL
	c.ReadHeaderTimeout, c.IdleTimeout = w.ReadHeaderTimeout, w.IdleTimeout
	c.Password, c.AccessTokenTTL = cmp.Or(c.Password, DefaultPassword), cmp.Or(c.AccessTokenTTL, DefaultAccessTokenTTL)
	c.JWTMaxTTL, c.JWTLeeway = cmp.Or(c.JWTMaxTTL, DefaultJWTMaxTTL), cmp.Or(c.JWTLeeway, DefaultJWTLeeway)
	return c
}
