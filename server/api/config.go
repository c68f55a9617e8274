package api

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/server/users"
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
	// Artifacts stores firmware images and log bundles (POST/GET /api/v1/artifacts). Nil: 503.
	Artifacts Artifacts
	// Rollouts runs rolling firmware updates (POST/GET /api/v1/rollouts). Nil: 503.
	Rollouts Rollouts
	// Users signs operators in (sessions, API keys, roles). Nil: only the admin token is accepted.
	Users *users.Service
	// SecureCookies marks the session cookie Secure even on a plain-HTTP listener (behind a TLS proxy).
	// Over TLS it is always Secure. Default false.
	SecureCookies bool
	// History serves /api/v1/series and /api/v1/fleet/totals. Nil: those answer 503.
	History History
	// Conflicts serves GET /api/v1/conflicts and their resolution (local-degraded mode). Nil: 503.
	Conflicts Conflicts
	// Pairs serves warm-standby pair declarations and their leases. Nil: 503.
	Pairs Pairs
	// Sites serves site automation policies and curtailment. Nil: 503.
	Sites Sites
	// Credentials serves node revocation and the credential vault's state (split mode). Nil: 503.
	Credentials Credentials
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
