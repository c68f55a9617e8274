package rollout

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// Fleet is what a rollout needs from the actors. *grains.Fleet implements it.
type Fleet interface {
	IssueCommand(ctx context.Context, req grains.CommandRequest) (grains.IssuedCommand, error)
	Command(ctx context.Context, id string) (*pb.CommandRecord, error)
	Miner(ctx context.Context, id string) (grains.MinerRow, error)
	ListMiners(ctx context.Context, q grains.MinerQuery) (grains.MinerPage, error)
}

// Config configures the Manager.
type Config struct {
	// PollInterval is how often a running batch's command and miners are read. Default 1s.
	PollInterval time.Duration
	// CommandWait bounds the wait for a batch's update command to be final. Default 10m.
	CommandWait time.Duration
	// MaxMiners bounds one rollout. Default 20,000.
	MaxMiners int
	// Store keeps rollouts across restarts (Manager.Resume). Nil: in memory only; a stop fails the running
	// ones.
	Store Store
	// Clock times polls and settling. Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{PollInterval: time.Second, CommandWait: 10 * time.Minute, MaxMiners: 20000}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.PollInterval <= 0:
		return errors.New("rollout: PollInterval must be positive")
	case c.CommandWait <= 0:
		return errors.New("rollout: CommandWait must be positive")
	case c.MaxMiners < 1:
		return errors.New("rollout: MaxMiners must be at least 1")
	}
	return nil
}
