package api

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/actors/clock"
)

// DefaultMaxBodyBytes bounds a request body: 1 MiB, room for a command naming about 30,000 miners.
const DefaultMaxBodyBytes = 1 << 20

// MinTokenLen is the shortest admin token accepted.
const MinTokenLen = 16

// Config configures the API.
type Config struct {
	// AdminToken is the bearer token every /api/v1 call must carry. Required, at least 16 bytes.
	AdminToken string
	// MaxBodyBytes bounds a request body. Default 1 MiB.
	MaxBodyBytes int64
	// Clock computes ages (last seen, last heartbeat). Default the wall clock.
	Clock   clock.Clock
	Logger  *slog.Logger
	Metrics *Metrics
	// Enrollment serves enrollment codes, pending nodes, confirmation and the security event log. Nil
	// (combined mode): those endpoints answer 503.
	Enrollment Enrollment
	// Keys serves the command-key lifecycle. Nil: 503.
	Keys KeyLifecycle
	// Devices serves pairing, node audit and the signed-command archive. Nil: 503.
	Devices Devices
	// Commissioning serves discovery scans, the device list and pairings. Nil: 503.
	Commissioning Commissioning
	// DebugInject enables POST /api/v1/nodes/{id}/inject, which writes a raw command on a node's stream (to
	// show that nodes refuse replayed or forged commands). Default off.
	DebugInject bool
}

// DefaultConfig returns the documented defaults; AdminToken must still be set.
func DefaultConfig() Config { return Config{MaxBodyBytes: DefaultMaxBodyBytes, Clock: clock.Real()} }

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if len(c.AdminToken) < MinTokenLen {
		errs = append(errs, fmt.Errorf("api: AdminToken must be at least %d bytes (got %d)", MinTokenLen, len(c.AdminToken)))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("api: MaxBodyBytes %d is below 1 KiB", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}
