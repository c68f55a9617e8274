package lease

import (
	"errors"
	"fmt"
	"time"
)

// Config times the cloud's lease decisions. See the package documentation for the arithmetic.
type Config struct {
	// TTL is how long a grant or renewal is valid on the cloud's clock. Default 6s. Shorter fails over faster
	// but makes a holder fence itself after fewer lost renewals.
	TTL time.Duration
	// RenewInterval is how often the holder is expected to renew (the node's setting should match). Default
	// TTL/3 = 2s, so two renewals in a row may be lost before the holder fences itself at TTL − Margin.
	RenewInterval time.Duration
	// Margin is the cloud's clock-drift safety margin: the lease is given to another node only after
	// ExpiresAt + Margin. Default 1s. Safety needs Margin_node + Margin_cloud ≥ 2·ρ·TTL + W (ρ: clock rate
	// error bound, W: the longest a miner write takes to land after its fence check).
	Margin time.Duration
	// HeartbeatTimeout: a holder heard (lease request or gateway heartbeat) within this long is alive and is
	// not replaced even when its lease expired. Default TTL (6s); the holder renews every RenewInterval, so a
	// live holder is heard far more often.
	HeartbeatTimeout time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	const ttl = 6 * time.Second
	return Config{TTL: ttl, RenewInterval: ttl / 3, Margin: time.Second, HeartbeatTimeout: ttl}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.TTL <= 0 {
		errs = append(errs, fmt.Errorf("lease: ttl %s must be positive", c.TTL))
	}
	if c.RenewInterval <= 0 {
		errs = append(errs, fmt.Errorf("lease: renew interval %s must be positive", c.RenewInterval))
	}
	if c.Margin < 0 {
		errs = append(errs, fmt.Errorf("lease: margin %s is negative", c.Margin))
	}
	if c.HeartbeatTimeout <= 0 {
		errs = append(errs, fmt.Errorf("lease: heartbeat timeout %s must be positive", c.HeartbeatTimeout))
	}
	if c.TTL > 0 && c.RenewInterval > 0 && c.RenewInterval+c.Margin >= c.TTL {
		errs = append(errs, fmt.Errorf("lease: renew interval %s + margin %s must stay below ttl %s, or the holder fences itself between two successful renewals",
			c.RenewInterval, c.Margin, c.TTL))
	}
	return errors.Join(errs...)
}
