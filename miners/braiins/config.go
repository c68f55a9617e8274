package braiins

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/miners/cgminer"
)

// Config tunes one driver. Zero fields take the defaults below.
type Config struct {
	// Username and Password are the miner's login. Default "root" and "" (stock Braiins OS).
	Username string
	Password string
	// CGMiner configures the reads over the cgminer-compatible API.
	CGMiner cgminer.Config
	// GRPCPort is the gRPC API's port when the device has no WebAddress. Default 50051.
	GRPCPort int
	// TLS, when set, is the client TLS configuration of the gRPC API; nil: plaintext, as the firmware
	// serves it by default.
	TLS *tls.Config
	// RequestTimeout bounds one gRPC call, connection set-up included; an earlier ctx deadline wins.
	// Default 5s.
	RequestTimeout time.Duration
	// MaxReplyBytes bounds one gRPC reply; a larger one is miners.ErrMalformed. Default 1 MiB.
	MaxReplyBytes int
	// LoginMargin is how long before a token's expiry the driver logs in again. Default 30s.
	LoginMargin time.Duration
	// Clock ages tokens. Default clock.Real() (CGMiner.Clock, when set, stamps samples).
	Clock clock.Clock
}

// Defaults; see Config.
const (
	DefaultUsername       = "root"
	DefaultGRPCPort       = 50051
	DefaultRequestTimeout = 5 * time.Second
	DefaultMaxReplyBytes  = 1 << 20
	DefaultLoginMargin    = 30 * time.Second

	minReplyBytes = 4 << 10
	maxReplyBytes = 64 << 20
)

// DefaultConfig returns the defaults with every field set.
func DefaultConfig() Config { return Config{}.withDefaults() }

// Validate reports values the driver cannot work with.
func (c Config) Validate() error {
	errs := []error{c.CGMiner.Validate()}
	if c.GRPCPort < 0 || c.GRPCPort > 65535 {
		errs = append(errs, fmt.Errorf("braiins: GRPCPort must be between 1 and 65535, got %d", c.GRPCPort))
	}
	if c.RequestTimeout < 0 || c.LoginMargin < 0 {
		errs = append(errs, errors.New("braiins: RequestTimeout and LoginMargin must not be negative"))
	}
	if c.MaxReplyBytes != 0 && (c.MaxReplyBytes < minReplyBytes || c.MaxReplyBytes > maxReplyBytes) {
		errs = append(errs, fmt.Errorf("braiins: MaxReplyBytes must be between %d and %d, got %d", minReplyBytes, maxReplyBytes, c.MaxReplyBytes))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	c.Username, c.GRPCPort = cmp.Or(c.Username, DefaultUsername), cmp.Or(c.GRPCPort, DefaultGRPCPort)
	c.RequestTimeout, c.MaxReplyBytes, c.LoginMargin = cmp.Or(c.RequestTimeout, DefaultRequestTimeout), cmp.Or(c.MaxReplyBytes, DefaultMaxReplyBytes), cmp.Or(c.LoginMargin, DefaultLoginMargin)
	if c.Clock == nil {
		c.Clock = c.CGMiner.Clock
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.CGMiner.Clock == nil {
		c.CGMiner.Clock = c.Clock
	}
	return c
}
