package grains

import (
	"errors"
	"fmt"
	"github.com/hashfleet/hashfleet/node/automation"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
)

// Signer signs commands before they are persisted and sent, and names the keys nodes verify them with
// (server/keys.Manager, or OrgKeysSigner). A nil Signer sends unsigned commands (only tests do that).
type Signer interface {
	// Sign fills cmd.KeyId and cmd.Signature over (actor, node_id, monotonic_seq, key_id, lease_epoch,
	// idempotency_key, payload) with the org's active key.
	Sign(cmd *pb.ControlCommand) error
	// Keys are the public keys sent in HelloAck.command_keys.
	Keys() []*pb.CommandKey
}

// Config configures the fleet's actors.
type Config struct {
	// OrgID names the org; actor names derive from it. Default "default".
	OrgID string
	// Store persists everything. Required.
	Store store.Store
	// Clock is business time: staleness, command timeouts, flushes. Default the wall clock.
	Clock clock.Clock
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Metrics records the fleet's Prometheus series. Default: series on a private registry.
	Metrics *Metrics
	// ActorMetrics counts actors by kind. Nil records nothing.
	ActorMetrics *actors.Metrics
	// Supervisor bounds restarts of node and miner actors. Default actors.DefaultSupervisorConfig().
	Supervisor actors.SupervisorConfig
	// StaleAfter: a miner whose latest sample is older than this, or whose node's control stream is down,
	// is shown stale. Default 30s.
	StaleAfter time.Duration
	// CommandTimeout: a miner with no final result this long after its command was issued is marked
	// timeout and the command leaves its node's queue. Default 60s.
	CommandTimeout time.Duration
	// FlushInterval: per-miner progress of running commands is persisted at most this often (final states
	// are persisted at once). Default 1s.
	FlushInterval time.Duration
	// TrustNodeDevices registers the devices a node reports (DISCOVERED events, telemetry) as owned by it
	// without operator confirmation. Combined mode sets it: the local node is trusted. Default false.
	TrustNodeDevices bool
	// Signer signs commands. Nil: unsigned (tests only).
	Signer Signer
	// Keys rotates and revokes the org's issuance keys (API key lifecycle). Nil: refused.
	Keys KeyIssuer
	// RequestTimeout bounds a call from outside the actors (API handler, gateway) when its context has no
	// deadline. Default 5s.
	RequestTimeout time.Duration
	// MaxCommandMiners bounds the miners one command may name. Default 100,000.
	MaxCommandMiners int
	// Vault keeps device logins sealed to their owning nodes (server/credentials.Vault); the ownership map
	// sent to a node carries its devices' envelopes. Nil: pairings and scans with credentials are refused.
	Vault Vault
	// NodeKey returns a node's credential public key to seal to (split mode: its enrollment record; combined
	// mode: the local node's). Nil: credentials are refused.
	NodeKey func(nodeID string) (credentials.NodeKey, error)
	// History keeps every owned sample with minute and hour rollups, and the site, node and org groups
	// (server/history). Nil: no history.
	History HistorySink
	// PolicySigner signs a site's automation policy with the org's command key (automation.SignPolicy). Nil:
	// site policies are refused.
	PolicySigner func(automation.Policy) (*automation.SignedPolicy, error)
	// SiteNodes lists the nodes of a site (split mode: enrolled with the site's code). Nil: every node the org
	// knows is at every site (combined mode's single node).
	SiteNodes func(site string) ([]string, error)
	// Owners decides which node may own a device (one node, or a warm-standby pair). Default: one node.
	Owners OwnerPolicy

	// Warm-standby pairs (pairs.go).
	// NodeRecord returns a node's enrollment record; pair declarations check it (confirmed, not revoked,
	// org, site) and seal the pair key to its credential key, and devices registered to a node get its site
	// (device_site.go). Nil: pairs are refused and devices get no site from their node (combined mode).
	NodeRecord NodeRecordFunc
	// Pairs persists pair declarations. Default: Store, when it implements store.PairStore.
	Pairs store.PairStore
	// Leases persists each pair's lease by compare-and-set. Default: server/lease.Badger on Store's
	// database when Store has one (store.Badger), else Store when it is a lease.Store (server/pgstore),
	// else none (pairs refused).
	Leases lease.Store
	// Lease times the pair leases. Default lease.DefaultConfig() (TTL 6s, renew 2s, margin 1s, heartbeat
	// timeout 6s).
	Lease lease.Config
	// LeaseMetrics records the lease series. Nil records nothing.
	LeaseMetrics *lease.Metrics
}

// DefaultConfig returns the documented defaults; Store must still be set.
func DefaultConfig() Config {
	return Config{
		OrgID:            "default",
		Clock:            clock.Real(),
		Supervisor:       actors.DefaultSupervisorConfig(),
		StaleAfter:       30 * time.Second,
		CommandTimeout:   60 * time.Second,
		FlushInterval:    time.Second,
		RequestTimeout:   5 * time.Second,
		MaxCommandMiners: 100_000,
		Lease:            lease.DefaultConfig(),
	}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("grains: Store is required"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("grains: Clock is required (use clock.Real())"))
	}
	if err := store.ValidNodeID(c.OrgID); err != nil {
		errs = append(errs, fmt.Errorf("grains: org id: %w", err))
	}
	if c.StaleAfter <= 0 {
		errs = append(errs, fmt.Errorf("grains: StaleAfter %s must be positive", c.StaleAfter))
	}
	if c.CommandTimeout <= 0 {
		errs = append(errs, fmt.Errorf("grains: CommandTimeout %s must be positive", c.CommandTimeout))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("grains: FlushInterval %s must be positive", c.FlushInterval))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("grains: RequestTimeout %s must be positive", c.RequestTimeout))
	}
	if c.MaxCommandMiners < 1 {
		errs = append(errs, fmt.Errorf("grains: MaxCommandMiners %d must be at least 1", c.MaxCommandMiners))
	}
	if c.Lease != (lease.Config{}) {
		if err := c.Lease.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("grains: %w", err))
		}
	}
	if err := c.Supervisor.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("grains: %w", err))
	}
	return errors.Join(errs...)
}
