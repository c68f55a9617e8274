package automation

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the AutomationActor and Evaluate (the policy says what to do; this says how the node does it).
type Config struct {
	// NodeID goes into every audit record.
	NodeID string
	// Site is this node's site: a policy for another site is refused. Empty accepts any site (tests).
	Site string
	// TickInterval is how often rules are evaluated (schedule boundaries also wake the actor exactly on
	// time). Default 10s.
	TickInterval time.Duration
	// CommandRetry is how long after an overheat command a miner that is still mining and hot gets the command
	// again. Default 2m.
	CommandRetry time.Duration
	// RebootGrace is how long a reboot automation issued counts toward the site-wide cap if the miner is never
	// seen going down or coming back. Default 10m (above the MinerActor's reboot detection).
	RebootGrace time.Duration
}

// DefaultConfig returns the defaults documented on Config (NodeID and Site are left for the caller).
func DefaultConfig() Config {
	return Config{TickInterval: 10 * time.Second, CommandRetry: 2 * time.Minute, RebootGrace: 10 * time.Minute}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, fmt.Errorf("automation: node id is empty: %w", ErrInvalidConfig))
	}
	if c.TickInterval <= 0 || c.CommandRetry <= 0 || c.RebootGrace <= 0 {
		errs = append(errs, fmt.Errorf("automation: tick %s, command retry %s and reboot grace %s must be positive: %w",
			c.TickInterval, c.CommandRetry, c.RebootGrace, ErrInvalidConfig))
	}
	return errors.Join(errs...)
}
