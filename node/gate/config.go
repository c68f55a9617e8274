package gate

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the CommandGate.
type Config struct {
	// NodeID is this node; commands addressed to another are REFUSED_NODE.
	NodeID string
	// Verifier checks signatures and keys. Required; see InProcessVerifier for combined mode.
	Verifier Verifier
	// EpochCheck, when set, refuses a command whose lease epoch is not current (REFUSED_EPOCH). Nil checks
	// nothing: a node outside a warm-standby pair has no lease.
	EpochCheck func(epoch uint64) error
	// CommandTimeout is how long a dispatched command waits for its miners before the missing ones are
	// reported TIMEOUT. Default 2m (above the miners' own command timeout, plus queueing).
	CommandTimeout time.Duration
	// ReportInterval is how often partial results of a running command are reported. Default 2s.
	ReportInterval time.Duration
}

// DefaultConfig returns the defaults (NodeID and Verifier are left for the caller).
func DefaultConfig() Config {
	return Config{CommandTimeout: 2 * time.Minute, ReportInterval: 2 * time.Second}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("gate: node id is empty"))
	}
	if c.Verifier == nil {
		errs = append(errs, fmt.Errorf("gate: %w (combined mode: gate.InProcessVerifier)", ErrNoVerifier))
	}
	if c.CommandTimeout <= 0 || c.ReportInterval <= 0 {
		errs = append(errs, fmt.Errorf("gate: command timeout %s and report interval %s must be positive", c.CommandTimeout, c.ReportInterval))
	}
	return errors.Join(errs...)
}
