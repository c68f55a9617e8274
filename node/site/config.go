package site

import (
	"errors"
	"fmt"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/node/miner"
)

// Config tunes the site.
type Config struct {
	// Miner is the configuration of every MinerActor.
	Miner miner.Config
	// Supervisor bounds how a failing MinerActor is restarted (backoff on the clock, stopped after too many
	// failures in a window). Default actors.DefaultSupervisorConfig().
	Supervisor actors.SupervisorConfig
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Miner: miner.DefaultConfig(), Supervisor: actors.DefaultSupervisorConfig()}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if err := c.Miner.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Supervisor.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("site: miner %w", err))
	}
	return errors.Join(errs...)
}
