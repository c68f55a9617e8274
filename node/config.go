package node

import (
	"context"
	"crypto/hpke"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/discovery"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/spool"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/node/writelog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// Config is everything a node needs. Durations document their default; DefaultConfig sets them.
type Config struct {
	// NodeID identifies the node to the cloud (x-hashfleet-node, hello, commands). Required.
	NodeID string
	// OrgID and Site label the node in logs.
	OrgID, Site string
	// DataDir holds the node's Badger store; "" keeps it in memory (tests, demo).
	DataDir string
	// Devices is the static device list: the miners this node runs before (or, with AcceptCloudOwnership
	// false, instead of) the cloud's ownership map.
	Devices []*pb.Device
	// AcceptCloudOwnership makes every HelloAck's device list the node's device set (saved in the store and
	// used at the next start until the cloud answers). Default true. False keeps Devices whatever the cloud says.
	AcceptCloudOwnership bool
	// Candidates are devices the node knows of but does not own until an operator pairs them in the cloud
	// (split mode's --devices file): each is reported once per start as an EVENT_KIND_DISCOVERED event.
	Candidates []*pb.Device
	// LocalLogRetention: finished local commands (the local UI's) are deleted from the node's local command
	// log after this long, except the newest local action on each miner's field, which reconciliation reads
	// (gate/local_prune.go). 0: 30 days; negative: kept forever.
	LocalLogRetention time.Duration

	// PollInterval between polls of one miner. Default 5s.
	PollInterval time.Duration
	// PollJitter: each interval is PollInterval ± PollJitter. Default 500ms.
	PollJitter time.Duration
	// PollTimeout bounds one poll's I/O. Default 3s.
	PollTimeout time.Duration
	// CommandTimeout bounds one command's I/O on one miner. Default 30s.
	CommandTimeout time.Duration
	// FailureThreshold: consecutive failed polls before a miner is UNREACHABLE. Default 2.
	FailureThreshold int
	// RebootTimeout: how long a rebooting miner may stay silent before it is UNREACHABLE. Default 5m.
	RebootTimeout time.Duration
	// MinRebootTime: a miner answering after a reboot command without a visible uptime reset stays REBOOTING
	// this long (firmware that answers before it goes down). Default 30s.
	MinRebootTime time.Duration
	// MaxInFlight bounds driver operations (open miner connections) across the site. Default 256.
	MaxInFlight int
	// MaxCommandsInFlight bounds the site's open miner connections while commands run: a queued command
	// takes a slot before any queued poll, up to this many, and polls start again only below MaxInFlight. A
	// bulk command is a short burst (one round trip per miner), so its wave gets more connections than the
	// steady polls. Default 512; below MaxInFlight (0 included) it is MaxInFlight.
	MaxCommandsInFlight int
	// MemoryLimit, above 0, is the Go runtime's soft memory limit in bytes (debug.SetMemoryLimit) from Start to
	// Stop: as the heap nears it the GC runs sooner instead of letting the heap grow to twice the live heap
	// (GOGC=100). It is process-wide (combined mode shares it with the server). About twice the expected live
	// heap fits: ≈25 MB plus ≈5 KB a miner, so 140 MiB at 10,000 miners kept the node under 150 MB RSS at
	// unchanged CPU (docs/BENCHMARKS.md); at 1.2× the live heap the GC runs all the time. Default 0: the
	// runtime's limit (GOMEMLIMIT, else none) stays.
	MemoryLimit int64
	// Supervisor bounds MinerActor restarts. Default actors.DefaultSupervisorConfig().
	Supervisor actors.SupervisorConfig

	// BatchSize is the most samples per telemetry batch. Default 500.
	BatchSize int
	// BatchInterval is the longest a sample waits for its batch. Default 500ms (telemetry.Config.FlushInterval).
	BatchInterval time.Duration
	// MaxBacklogSamples bounds samples kept unacked while the cloud is unreachable, when they are kept in
	// memory (no DataDir, or no cloud link). Default 100,000.
	MaxBacklogSamples int
	// Spool is the on-disk outbox for telemetry and events while the cloud is unreachable: with a DataDir and
	// a cloud link (Dial) the node keeps every batch in it until the cloud acks it, across restarts and kill
	// -9. Spool.Dir "" means <DataDir>/spool. Default spool.DefaultConfig() (1 GiB, downsampling, then counted
	// drops; command audit and local command events are never dropped). Its Clock, Logger and Registerer
	// are the node's.
	Spool spool.Config
	// WrapOutbox, when set, wraps the spool before the batcher uses it (the chaos simulations' disk-full
	// fault). Test seam; default nil.
	WrapOutbox func(telemetry.Outbox) telemetry.Outbox
	// ReplayRate bounds the samples or events sent per second on each stream, so a reconnecting node replays
	// its backlog without flooding the cloud (live batches share the budget); 0 is unbounded. Default
	// 20,000/s (telemetry.DefaultConfig).
	ReplayRate int

	// Dial opens the connection to the cloud gateway (bufconn in combined mode, TLS target in split mode).
	// Nil runs the node without a cloud link.
	Dial func(ctx context.Context) (*grpc.ClientConn, error)
	// SessionToken returns the stream bearer token; nil sends none (combined mode).
	SessionToken func() string
	// Authorize opens a session on each new connection (split mode: uplink.ProofOfPossession). Nil uses
	// SessionToken.
	Authorize func(ctx context.Context, conn *grpc.ClientConn) (uplink.Credential, error)
	// MinerKey is the node's current miner-signing public key and the identity key's signature over
	// signing.MinerKeyBytes(NodeID, key), announced in every hello (split mode: identity.MinerKeyAnnouncement)
	// so the cloud learns of a rotated key. Nil: nothing announced.
	MinerKey, MinerKeySignature []byte
	// HeartbeatInterval between HeartbeatPings. Default 5s.
	HeartbeatInterval time.Duration
	// Backoff is the reconnect policy. Default uplink.DefaultBackoff() (1s → 30s, jitter 0.2, stable 1m).
	Backoff uplink.Backoff
	// SoftwareVersion is sent in the hello.
	SoftwareVersion string
	// ForwardMetrics, when set (with Dial), forwards a snapshot of the node's own process to the cloud every
	// ForwardMetricsInterval, read from this gatherer (the process registry) by node/procmetrics: CPU seconds,
	// RSS, goroutines, open FDs, GC pause p99, miners by state, spool depth; as EVENT_KIND_NODE_METRICS
	// events. Nil (the default) forwards nothing.
	ForwardMetrics prometheus.Gatherer
	// ForwardMetricsInterval between snapshots; <= 0 is procmetrics.DefaultInterval (30s).
	ForwardMetricsInterval time.Duration

	// Verifier checks command signatures. Nil with Dial: a gate.KeyringVerifier over the org's command keys,
	// restored from the store, or started from CommandKeys (OrgID is then required).
	Verifier gate.Verifier
	// CommandKeys are the org's public command keys the node trusts the first time it runs (what enrollment
	// delivered); later runs use the keyring persisted in the store, with every announcement and revocation
	// applied since.
	CommandKeys []*pb.CommandKey
	// DriverFactory makes a miner's driver. Required (see DefaultDriverFactory and Drivers).
	DriverFactory func(*pb.Device) (miners.Driver, error)
	// Pairer tries to pair the devices a cloud pairing command names (normally the *Drivers behind
	// DriverFactory). Nil: pairing commands answer UNSUPPORTED.
	Pairer Pairer
	// CredentialKey is the node's credential private key (identity.HPKEPrivateKey): it opens the sealed
	// login a discovery scan may carry. Nil: a scan with a login fails.
	CredentialKey hpke.PrivateKey
	// Discovery tunes the node's DiscoveryActor (concurrency, probe timeout, target limits, ports). Zero
	// fields take discovery.DefaultConfig's; Clock, Logger and Metrics default to the node's.
	Discovery discovery.Config

	// Clock is business time (polls, backoff, batching). Default clock.Real().
	Clock clock.Clock
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the node's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// ActorMetrics, when set, is shared with other components of the process (combined mode); nil makes one
	// on Registerer.
	ActorMetrics *actors.Metrics
	// Pair is this node's part in a warm-standby pair (gossip listen/advertise addresses, lease and gossip
	// timings, the WAN-down policy); the pair itself comes from the cloud's HelloAck. Default
	// DefaultPairConfig(); zero fields take it.
	Pair PairConfig
	// WriteLog records every miner write with its lease epoch (node/writelog). Nil: a writelog.File in
	// DataDir (miner-writes.jsonl), or none without a DataDir.
	WriteLog writelog.Log
	// SiteAutomation tunes curtailment and the signed site policy's rules (site_automation.go). Zero value:
	// the packages' defaults.
	SiteAutomation SiteAutomationConfig
	// System is the ActorSystem to run in; nil makes one the node owns and shuts down on Stop.
	System *actor.ActorSystem
}

// DefaultConfig returns the defaults documented on Config. NodeID, DriverFactory and (with a cloud link)
// Dial and Verifier are the caller's.
func DefaultConfig() Config {
	m, t, u := miner.DefaultConfig(), telemetry.DefaultConfig(), uplink.DefaultConfig()
	return Config{
		AcceptCloudOwnership: true,
		PollInterval:         m.PollInterval,
		PollJitter:           m.PollJitter,
		PollTimeout:          m.PollTimeout,
		CommandTimeout:       m.CommandTimeout,
		FailureThreshold:     m.FailureThreshold,
		RebootTimeout:        m.RebootTimeout,
		MinRebootTime:        m.MinRebootTime,
		MaxInFlight:          256,
		MaxCommandsInFlight:  512,
		Supervisor:           actors.DefaultSupervisorConfig(),
		BatchSize:            t.BatchSize,
		BatchInterval:        t.FlushInterval,
		MaxBacklogSamples:    t.MaxBacklogSamples,
		Spool:                spool.DefaultConfig(),
		ReplayRate:           t.ReplayRate,
		HeartbeatInterval:    u.HeartbeatInterval,
		Backoff:              u.Backoff,
		Clock:                clock.Real(),
		Pair:                 DefaultPairConfig(),
	}
}

func (c Config) minerConfig() miner.Config {
	m := miner.DefaultConfig()
	m.PollInterval, m.PollJitter, m.PollTimeout = c.PollInterval, c.PollJitter, c.PollTimeout
	m.CommandTimeout, m.FailureThreshold, m.RebootTimeout = c.CommandTimeout, c.FailureThreshold, c.RebootTimeout
	m.MinRebootTime = c.MinRebootTime
	return m
}

func (c Config) siteConfig() site.Config {
	return site.Config{Miner: c.minerConfig(), Supervisor: c.Supervisor}
}

func (c Config) telemetryConfig() telemetry.Config {
	t := telemetry.DefaultConfig()
	t.BatchSize, t.FlushInterval, t.MaxBacklogSamples = c.BatchSize, c.BatchInterval, c.MaxBacklogSamples
	t.ReplayRate = c.ReplayRate
	t.EventBatchSize = min(t.EventBatchSize, max(c.BatchSize, 1))
	return t
}

// spooled reports whether the node keeps its outbox on disk: with a data directory and a cloud to send to.
// Without a cloud link nothing ever leaves the outbox, so it stays in memory, bounded by MaxBacklogSamples.
func (c Config) spooled() bool { return c.DataDir != "" && c.Dial != nil }

// spoolConfig is Spool with the node's directory, clock, logger and registry.
func (c Config) spoolConfig() spool.Config {
	s := c.Spool
	if s.Dir == "" {
		s.Dir = filepath.Join(c.DataDir, spool.DirName)
	}
	s.Clock, s.Logger, s.Registerer = c.Clock, c.Logger, c.Registerer
	return s
}

func (c Config) uplinkConfig() uplink.Config {
	u := uplink.DefaultConfig()
	u.NodeID, u.Dial, u.SessionToken, u.SoftwareVersion = c.NodeID, c.Dial, c.SessionToken, c.SoftwareVersion
	u.Authorize, u.MinerKey, u.MinerKeySignature = c.Authorize, c.MinerKey, c.MinerKeySignature
	u.HeartbeatInterval, u.Backoff = c.HeartbeatInterval, c.Backoff
	return u
}

func (c Config) gateConfig() gate.Config {
	g := gate.DefaultConfig()
	g.NodeID, g.Verifier = c.NodeID, c.Verifier
	// A command may wait behind a poll and run for CommandTimeout; give the miners room before TIMEOUT.
	g.CommandTimeout = max(g.CommandTimeout, 2*c.CommandTimeout+c.PollTimeout)
	return g
}

// Validate reports a configuration an operator must fix, every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node: NodeID is empty"))
	}
	if c.DriverFactory == nil {
		errs = append(errs, errors.New("node: DriverFactory is nil (see node.DefaultDriverFactory)"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("node: MaxInFlight %d must be at least 1", c.MaxInFlight))
	}
	if c.MaxCommandsInFlight < 0 {
		errs = append(errs, fmt.Errorf("node: MaxCommandsInFlight %d must not be negative (0: MaxInFlight)", c.MaxCommandsInFlight))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("node: Clock is nil (use clock.Real())"))
	}
	seen := map[string]bool{}
	for i, d := range c.Devices {
		switch {
		case d.GetMinerId() == "":
			errs = append(errs, fmt.Errorf("node: device %d (%s) has no miner id", i, d.GetAddress()))
		case seen[d.GetMinerId()]:
			errs = append(errs, fmt.Errorf("node: miner id %q listed twice", d.GetMinerId()))
		}
		seen[d.GetMinerId()] = true
	}
	if err := c.siteConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Discovery.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.telemetryConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.spooled() {
		if err := c.Spool.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Dial != nil {
		if err := c.uplinkConfig().Validate(); err != nil {
			errs = append(errs, err)
		}
		g := c.gateConfig()
		if g.Verifier == nil && c.OrgID != "" {
			g.Verifier = gate.InProcessVerifier{} // placeholder: Start builds the KeyringVerifier
		}
		if err := g.Validate(); err != nil {
			errs = append(errs, err)
		}
		if err := c.Pair.withDefaults().Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
