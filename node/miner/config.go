package miner

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes every MinerActor of a site.
type Config struct {
	// PollInterval is the time from the start of one poll to the start of the next. Default 5s. Zero polls
	// back to back (benchmarks).
	PollInterval time.Duration
	// PollJitter spreads polls: each interval is PollInterval ± a uniform random PollJitter, and the first poll
	// of an actor waits a uniform random part of PollInterval, so 10,000 miners do not poll in lockstep.
	// Default 10% of PollInterval. Must be below PollInterval.
	PollJitter time.Duration
	// PollTimeout bounds one poll's I/O (not its wait for a Limiter slot). Default 3s.
	PollTimeout time.Duration
	// CommandTimeout bounds one command's I/O. Default 30s.
	CommandTimeout time.Duration
	// FailureThreshold is how many consecutive failed polls make a miner UNREACHABLE. Default 2: one lost
	// reply on a busy LAN is common and should not flap the state; two in a row (≈10s at the default interval)
	// is a miner the operator wants to see.
	FailureThreshold int
	// RebootTimeout is how long a rebooted miner may stay silent before it is UNREACHABLE. Default 5m.
	RebootTimeout time.Duration
	// MinRebootTime is how long after a reboot command an answering miner stays REBOOTING when its uptime
	// did not visibly reset (firmware that answers before going down). Default 30s.
	MinRebootTime time.Duration
	// IdempotencyKeys is how many command results per miner are remembered by idempotency key. Default 256.
	IdempotencyKeys int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		PollInterval:     5 * time.Second,
		PollJitter:       500 * time.Millisecond,
		PollTimeout:      3 * time.Second,
		CommandTimeout:   30 * time.Second,
		FailureThreshold: 2,
		RebootTimeout:    5 * time.Minute,
		MinRebootTime:    30 * time.Second,
		IdempotencyKeys:  256,
	}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("miner: poll interval %s is negative", c.PollInterval))
	}
	if c.PollJitter < 0 || (c.PollInterval > 0 && c.PollJitter >= c.PollInterval) {
		errs = append(errs, fmt.Errorf("miner: poll jitter %s must be at least 0 and below the poll interval %s", c.PollJitter, c.PollInterval))
	}
	if c.PollInterval == 0 && c.PollJitter != 0 {
		errs = append(errs, fmt.Errorf("miner: poll jitter %s needs a poll interval", c.PollJitter))
	}
	if c.PollTimeout <= 0 {
		errs = append(errs, fmt.Errorf("miner: poll timeout %s must be positive", c.PollTimeout))
	}
	if c.CommandTimeout <= 0 {
		errs = append(errs, fmt.Errorf("miner: command timeout %s must be positive", c.CommandTimeout))
	}
	if c.FailureThreshold < 1 {
		errs = append(errs, fmt.Errorf("miner: failure threshold %d must be at least 1", c.FailureThreshold))
	}
	if c.MinRebootTime < 0 || c.RebootTimeout <= c.MinRebootTime {
		errs = append(errs, fmt.Errorf("miner: reboot timeout %s must be above the minimum reboot time %s (≥ 0)", c.RebootTimeout, c.MinRebootTime))
	}
	if c.IdempotencyKeys < 1 {
		errs = append(errs, fmt.Errorf("miner: idempotency keys %d must be at least 1", c.IdempotencyKeys))
	}
	return errors.Join(errs...)
}

// Rules returns the state-machine thresholds of c.
func (c Config) Rules() Rules {
	return Rules{FailureThreshold: c.FailureThreshold, RebootTimeout: c.RebootTimeout, MinRebootTime: c.MinRebootTime}
}
