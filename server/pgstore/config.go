package pgstore

import (
	"fmt"
	"log/slog"
	"time"
)

// Config opens a Postgres store.
type Config struct {
	// DSN is a libpq/pgx connection string, e.g. "postgres://user@127.0.0.1:5432/hashfleet?sslmode=disable".
	// Required.
	DSN string
	// MaxConns bounds the pool. Default 8: the grains of one member write in short transactions.
	MaxConns int32
	// ConnectTimeout bounds opening the pool, the first ping and migrations. Default 10s.
	ConnectTimeout time.Duration
	// StatementTimeout bounds each store call. Default 10s.
	StatementTimeout time.Duration
	// HistoryPartitionsAhead is how many daily telemetry-history partitions EnsureHistoryPartitions keeps
	// created ahead of "now". Default 2.
	HistoryPartitionsAhead int
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the documented defaults; DSN must still be set.
func DefaultConfig() Config {
	return Config{MaxConns: 8, ConnectTimeout: 10 * time.Second, StatementTimeout: 10 * time.Second, HistoryPartitionsAhead: 2}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = d.StatementTimeout
	}
	if c.HistoryPartitionsAhead == 0 {
		c.HistoryPartitionsAhead = d.HistoryPartitionsAhead
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration an operator must fix (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.DSN == "":
		return fmt.Errorf("%w: DSN is required (postgres://user@host:port/db)", ErrConfig)
	case c.MaxConns < 1:
		return fmt.Errorf("%w: MaxConns %d must be at least 1", ErrConfig, c.MaxConns)
	case c.ConnectTimeout < 0 || c.StatementTimeout < 0:
		return fmt.Errorf("%w: timeouts must not be negative", ErrConfig)
	case c.HistoryPartitionsAhead < 0:
		return fmt.Errorf("%w: HistoryPartitionsAhead %d is negative", ErrConfig, c.HistoryPartitionsAhead)
	}
	return nil
}
