package cloudcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
)

// Providers of cluster membership.
const (
	// ProviderEtcd: members register under a key prefix in etcd with a lease (production).
	ProviderEtcd = "etcd"
	// ProviderTest: protoactor's in-memory test provider, members in one process (tests).
	ProviderTest = "test"
)

// Config configures one cloud cluster member.
type Config struct {
	// ClusterName: members with the same name (and provider) form one cluster. Default "hashfleet".
	ClusterName string
	// Host is the address this member's protoactor remoting binds to and advertises. Default "127.0.0.1".
	Host string
	// Port for remoting. Required (0 is refused: the port is part of the member's advertised address).
	Port int
	// Provider is ProviderEtcd or ProviderTest. Default ProviderEtcd.
	Provider string
	// EtcdEndpoints are etcd client endpoints (host:port), for ProviderEtcd. Required with it.
	EtcdEndpoints []string
	// EtcdKeyPrefix is where members register. Default "/hashfleet/cluster".
	EtcdKeyPrefix string
	// TestAgent is the in-memory membership shared by ProviderTest members of one process.
	TestAgent TestAgent
	// Store is the shared node store (server/pgstore for several members; NewLocal(badger) for one).
	// Required.
	Store NodeStore
	// LeaseStore persists lease states by compare-and-set. Required.
	LeaseStore lease.Store
	// PairMembers returns a pair's two nodes for a Lease grain whose store has no state yet. Default: the
	// declared pair in Store when it offers pairs (PairDirectory, server/pgstore); else nil, and the pair's
	// lease must have been stored before.
	PairMembers func(pairID string) ([2]string, error)
	// Retention schedules the telemetry history's partitions (retention.go) when Store keeps the history
	// (HistoryMaintainer). Default DefaultRetentionConfig().
	Retention RetentionConfig
	// Lease times lease decisions. Default lease.DefaultConfig().
	Lease lease.Config
	// RequestTimeout bounds one grain call (including activation on another member). Default 5s.
	RequestTimeout time.Duration
	// ReattachBackoff is the first wait before a stream link re-attaches to a Node grain whose member
	// died; doubled up to 8× on each failure. Default 200ms.
	ReattachBackoff time.Duration
	// HeartbeatExpiration: a member whose gossip heartbeat is this old is blocked (protoactor default 20s).
	// Default 6s: a crashed member's grains move within about this time plus the etcd key TTL (3s).
	HeartbeatExpiration time.Duration
	// Signer signs every command before it is queued and lists the keys sent in HelloAck (the org's
	// issuance keys, server/keys). Nil: commands go unsigned (tests of the cluster wiring only).
	Signer grains.Signer
	// KeyReload is how often each member reads the shared command-key row and picks up a rotation or
	// revocation made on another member (when Signer is the shared OrgSigner). Default 2s.
	KeyReload time.Duration
	// Commands is the shared store of org commands (Org and Miner grains). Nil: Store, when it is one
	// (server/pgstore); otherwise the org command endpoints answer ErrUnavailable.
	Commands CommandStore
	// CommandTimeout: a miner with no final result this long after its org command was recorded is marked
	// TIMEOUT. Default 60s (as server/grains).
	CommandTimeout time.Duration
	// MaxCommandMiners bounds the miners one org command may name. Default 10,000 (such a request fits the
	// 1 MiB body limit of the cluster endpoints).
	MaxCommandMiners int
	// CallWorkers is how many grain-to-grain calls (parts to Node grains, results to Miner grains) the
	// member has in flight at once. Default 8.
	CallWorkers int
	// Clock is business time (command timestamps, command deadlines, call backoff). Default the wall clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// PairDirectory is a store that keeps warm-standby pair declarations (server/pgstore.Store).
type PairDirectory interface {
	// PairMembers returns a declared pair's two member nodes.
	PairMembers(pairID string) ([2]string, error)
}

// DefaultConfig returns the documented defaults; Port, Store, LeaseStore and the provider's settings must
// still be set.
func DefaultConfig() Config {
	return Config{ClusterName: "hashfleet", Host: "127.0.0.1", Provider: ProviderEtcd, EtcdKeyPrefix: "/hashfleet/cluster",
		Lease: lease.DefaultConfig(), RequestTimeout: 5 * time.Second, ReattachBackoff: 200 * time.Millisecond,
		HeartbeatExpiration: 6 * time.Second, Retention: DefaultRetentionConfig(),
		CommandTimeout: 60 * time.Second, MaxCommandMiners: 10_000, CallWorkers: 8, KeyReload: 2 * time.Second}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ClusterName == "" {
		c.ClusterName = d.ClusterName
	}
	if c.Host == "" {
		c.Host = d.Host
	}
	if c.Provider == "" {
		c.Provider = d.Provider
	}
	if c.EtcdKeyPrefix == "" {
		c.EtcdKeyPrefix = d.EtcdKeyPrefix
	}
	if c.Lease == (lease.Config{}) {
		c.Lease = d.Lease
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ReattachBackoff == 0 {
		c.ReattachBackoff = d.ReattachBackoff
	}
	if c.HeartbeatExpiration == 0 {
		c.HeartbeatExpiration = d.HeartbeatExpiration
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = d.CommandTimeout
	}
	if c.MaxCommandMiners == 0 {
		c.MaxCommandMiners = d.MaxCommandMiners
	}
	if c.CallWorkers == 0 {
		c.CallWorkers = d.CallWorkers
	}
	if c.KeyReload == 0 {
		c.KeyReload = d.KeyReload
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if pd, ok := c.Store.(PairDirectory); ok && c.PairMembers == nil {
		c.PairMembers = pd.PairMembers
	}
	c.Retention = c.Retention.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration an operator must fix (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if err := store.ValidNodeID(c.ClusterName); err != nil {
		errs = append(errs, fmt.Errorf("%w: cluster name: %w", ErrConfig, err))
	}
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("%w: remoting port %d must be 1..65535", ErrConfig, c.Port))
	}
	if net.ParseIP(c.Host) == nil && strings.ContainsAny(c.Host, " /:") {
		errs = append(errs, fmt.Errorf("%w: host %q is not a host name or IP", ErrConfig, c.Host))
	}
	switch c.Provider {
	case ProviderEtcd:
		if len(c.EtcdEndpoints) == 0 {
			errs = append(errs, fmt.Errorf("%w: provider etcd needs at least one endpoint (host:port)", ErrConfig))
		}
		for _, e := range c.EtcdEndpoints {
			if _, _, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")); err != nil {
				errs = append(errs, fmt.Errorf("%w: etcd endpoint %q: %w", ErrConfig, e, err))
			}
		}
	case ProviderTest:
		if c.TestAgent == nil {
			errs = append(errs, fmt.Errorf("%w: provider test needs a TestAgent (NewTestAgent)", ErrConfig))
		}
	default:
		errs = append(errs, fmt.Errorf("%w: unknown provider %q (etcd, test)", ErrConfig, c.Provider))
	}
	if c.Store == nil {
		errs = append(errs, fmt.Errorf("%w: Store is required", ErrConfig))
	}
	if c.LeaseStore == nil {
		errs = append(errs, fmt.Errorf("%w: LeaseStore is required", ErrConfig))
	}
	if err := c.Lease.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrConfig, err))
	}
	if err := c.Retention.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RequestTimeout < 0 || c.ReattachBackoff < 0 || c.HeartbeatExpiration < 0 || c.CommandTimeout < 0 || c.KeyReload < 0 {
		errs = append(errs, fmt.Errorf("%w: durations must not be negative", ErrConfig))
	}
	if c.MaxCommandMiners < 0 || c.CallWorkers < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxCommandMiners and CallWorkers must not be negative", ErrConfig))
	}
	return errors.Join(errs...)
}
