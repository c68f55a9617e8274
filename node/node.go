package node

import (
	"context"

	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/procmetrics"
	"github.com/hashfleet/hashfleet/node/site"
	"github.com/hashfleet/hashfleet/node/spool"
	"github.com/hashfleet/hashfleet/node/store"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/hashfleet/hashfleet/node/uplink"
	"github.com/hashfleet/hashfleet/node/writelog"
)

// MinerStatus is one miner as the node sees it.
type MinerStatus = miner.Status

// LinkStatus is the link to the cloud as the node sees it.
type LinkStatus = uplink.Status

// Node is one fleet node.
type Node struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	started bool
	stopped bool

	sys     *actor.ActorSystem
	ownSys  bool
	store   *store.Badger
	spool   *spool.Spool // nil when the outbox is in memory (Config.spooled)
	limiter *miner.Limiter
	memory  memoryLimit // Config.MemoryLimit, applied in Start, restored in teardown

	batcher, site, gate, uplink *actor.PID
	discovery, commission       *actor.PID
	ownership                   *gate.Ownership       // the gate's owned set, readable from any goroutine; set in New
	forwarder                   *actor.PID            // procmetrics, with Config.ForwardMetrics
	keyring                     *gate.KeyringVerifier // nil with Config.Verifier
	auto                        *siteAutomation       // curtailment and site automation (site_automation.go)

	// Warm-standby pairs (pair.go): the PairActor, the write guard the gate and miners ask, the write log.
	pair             *actor.PID
	guard            *leaseGuard
	writeLog         writelog.Log
	writeFile        *writelog.File // writeLog when the node opened it (closed in teardown)
	halt             atomic.Bool    // Kill: the gossip vanishes without leaving
	uplinkPID        atomic.Pointer[actor.PID]
	gossipRunning    atomic.Pointer[string]
	gossipConfigured string
}

// New validates cfg and returns a node ready to Start.
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	log := cfg.Logger.With(slog.String("node", cfg.NodeID))
	if cfg.Site != "" {
		log = log.With(slog.String("site", cfg.Site))
	}
	return &Node{cfg: cfg, log: log, ownership: gate.NewOwnership(nil), guard: &leaseGuard{clk: cfg.Clock}}, nil
}

// Start opens the store and spawns the node's actors. The context bounds nothing long: actors start at once
// and the uplink connects in the background.
func (n *Node) Start(ctx context.Context) (err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.stopped:
		return ErrStopped
	case n.started:
		return ErrAlreadyStarted
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg := n.cfg
	st, err := store.Open(store.Options{DataDir: cfg.DataDir, Logger: cfg.Logger, Registerer: cfg.Registerer})
	if err != nil {
		return err
	}
	n.store = st
	defer func() {
		if err != nil {
			n.teardown()
		}
	}()
	n.memory.apply(cfg.MemoryLimit, n.log)
	var outbox telemetry.Outbox // nil: the batcher's in-memory outbox
	if cfg.spooled() {
		if n.spool, err = spool.Open(cfg.spoolConfig()); err != nil {
			return err
		}
		outbox = n.spool
		if cfg.WrapOutbox != nil {
			outbox = cfg.WrapOutbox(outbox)
		}
	}

	devices := cfg.Devices
	if cfg.AcceptCloudOwnership && cfg.Dial != nil {
		if saved, err := st.Ownership(); err == nil {
			devices = saved
			n.log.Info("using the device set the cloud confirmed last", slog.Int("miners", len(saved)))
		}
	}
	owned := make([]string, 0, len(devices))
	for _, d := range devices {
		owned = append(owned, d.GetMinerId())
	}
	n.ownership.Replace(owned) // before the site spawns miners: their drivers' credential opener asks it

	verifier := cfg.Verifier
	if verifier == nil && cfg.Dial != nil {
		kv, err := gate.NewKeyringVerifier(st, cfg.OrgID, cfg.CommandKeys, cfg.Clock, n.log)
		if err != nil {
			return err
		}
		n.keyring, verifier = kv, kv
	}
	gcfg := cfg.gateConfig()
	gcfg.Verifier = verifier
	gcfg.EpochCheck = n.guard.EpochCheck
	if err := n.openWriteLog(); err != nil {
		return err
	}

	n.sys = cfg.System
	if n.sys == nil {
		n.sys, n.ownSys = actors.NewSystem(cfg.Logger), true
	}
	am := cfg.ActorMetrics
	if am == nil {
		am = actors.NewMetrics(promx.Tolerant(cfg.Registerer))
	}
	reg := cfg.Registerer
	minerMetrics := miner.NewMetrics(reg)
	n.limiter = miner.NewLimiterFor(cfg.MaxInFlight, max(cfg.MaxCommandsInFlight, cfg.MaxInFlight), minerMetrics.InFlightGauge())

	spawn := func(role string, p *actor.Props) (*actor.PID, error) {
		pid, err := n.sys.Root.SpawnNamed(p, "hashfleet-node/"+cfg.NodeID+"/"+role)
		if err != nil {
			return nil, fmt.Errorf("spawn %s: %w", role, err)
		}
		return pid, nil
	}
	if n.batcher, err = spawn("telemetry", telemetry.Props(cfg.telemetryConfig(), telemetry.Env{
		NodeID: cfg.NodeID, Clock: cfg.Clock, Outbox: outbox, Seqs: st, Metrics: telemetry.NewMetrics(reg), ActorMetrics: am, Logger: cfg.Logger,
	})); err != nil {
		return err
	}
	if n.site, err = spawn("site", site.Props(cfg.siteConfig(), site.Env{
		NodeID: cfg.NodeID, Devices: devices, Factory: cfg.DriverFactory, Limiter: n.limiter, Clock: cfg.Clock,
		Sink: n.batcher, Metrics: site.NewMetrics(reg), MinerMetrics: minerMetrics, ActorMetrics: am, Logger: cfg.Logger,
		Guard: n.guard, WriteLog: n.writeLog,
	})); err != nil {
		return err
	}
	if err := n.spawnCommissioning(spawn, am); err != nil {
		return err
	}
	if err := n.spawnSiteAutomation(spawn, am); err != nil {
		return err
	}
	local, err := n.localEnv(st)
	if err != nil {
		return err
	}
	if n.gate, err = spawn("gate", gate.Props(gcfg, gate.Env{
		Store: st, Site: n.site, Sink: n.batcher, Owned: owned, Ownership: n.ownership, Control: n.commission,
		SiteControl: n.auto.control, PoolGuard: n.auto.guard, Local: local,
		Clock: cfg.Clock, Metrics: gate.NewMetrics(reg), ActorMetrics: am, Logger: cfg.Logger,
	})); err != nil {
		return err
	}
	if cfg.Dial != nil {
		if err := n.startPairing(spawn, am); err != nil {
			return err
		}
		ackTo := []*actor.PID{n.pair}
		if cfg.AcceptCloudOwnership {
			ackTo = append(ackTo, n.site, n.gate)
		}
		if n.uplink, err = spawn("uplink", uplink.Props(cfg.uplinkConfig(), uplink.Env{
			LastSeq: st.SeqMark, Gate: n.gate, HelloAckTo: ackTo, Subscribers: []*actor.PID{n.batcher, n.pair},
			Lease: n.pair, LeaseEpoch: n.guard.Epoch, GossipAddr: n.helloGossipAddr,
			Clock: cfg.Clock, Metrics: uplink.NewMetrics(reg), ActorMetrics: am, Logger: cfg.Logger,
		})); err != nil {
			return err
		}
		n.uplinkPID.Store(n.uplink)
	}
	if cfg.ForwardMetrics != nil && cfg.Dial != nil {
		if n.forwarder, err = spawn("metrics-forwarder", procmetrics.Props(procmetrics.Config{NodeID: cfg.NodeID,
			Interval: cfg.ForwardMetricsInterval, Version: cfg.SoftwareVersion}, procmetrics.Env{Gatherer: cfg.ForwardMetrics,
			Sink: n.batcher, Clock: cfg.Clock, Logger: cfg.Logger}, am)); err != nil {
			return err
		}
	}
	// Devices the node may manage once an operator pairs them: the cloud hears of each as discovered.
	now := cfg.Clock.Now().UnixMilli()
	for _, d := range cfg.Candidates {
		n.sys.Root.Send(n.batcher, &pb.Event{EventId: fmt.Sprintf("discovered/%s/%s/%d", cfg.NodeID, d.GetMinerId(), now),
			MinerId: d.GetMinerId(), Kind: pb.EventKind_EVENT_KIND_DISCOVERED, AtUnixMs: now, Device: d,
			Message: "listed in the node's device file; waiting for the operator to pair it"})
	}
	n.started = true
	n.log.Info("node started", slog.Int("miners", len(devices)), slog.Bool("cloud_link", cfg.Dial != nil),
		slog.String("data_dir", cfg.DataDir))
	return nil
}

// Stop stops every actor and goroutine of the node and closes its store: the uplink first (no new commands),
// then the miners (their queued commands answer FAILED), their in-flight I/O, the gate (after it took in the
// miners' last answers and recorded them), the batcher; then the store, and the ActorSystem if the node owns
// it. A warm-standby pair's lease holder first hands its lease over (PairConfig.KeepLeaseOnStop). It returns
// ctx's error if ctx ends first; call it once.
func (n *Node) Stop(ctx context.Context) error {
	n.handoverOnStop(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started {
		if n.stopped {
			return nil
		}
		return ErrNotStarted
	}
	n.started, n.stopped = false, true
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.teardown()
	}()
	select {
	case <-done:
		n.log.Info("node stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop node %s: %w", n.cfg.NodeID, ctx.Err())
	}
}

// teardown stops what Start made, in dependency order. It waits for each step.
func (n *Node) teardown() {
	stop := func(pid *actor.PID, poison bool) {
		if pid == nil {
			return
		}
		var f *actor.Future
		if poison {
			f = n.sys.Root.PoisonFuture(pid)
		} else {
			f = n.sys.Root.StopFuture(pid)
		}
		if err := f.Wait(); err != nil {
			n.log.Warn("actor did not confirm its stop", slog.String("actor", pid.Id), slog.Any("error", err))
		}
	}
	stop(n.forwarder, false)
	n.forwarder = nil
	stop(n.uplink, false)
	n.uplinkPID.Store(nil)
	stop(n.pair, false) // its LeaseHolder withdraws the write permit; its gossip leaves (or vanishes: Kill)
	n.pair = nil
	if n.auto != nil { // before the site: they command its miners
		n.auto.stop()
	}
	stop(n.site, false)
	stop(n.commission, false) // cancels pairings in flight; the gate records them as interrupted
	stop(n.discovery, false)  // cancels running scans and waits for their probes
	n.commission, n.discovery = nil, nil
	if n.limiter != nil {
		n.limiter.Wait()
	}
	n.closeWriteLog() // after the miners' last writes
	n.memory.restore()
	stop(n.gate, true)
	stop(n.batcher, true)
	n.uplink, n.site, n.gate, n.batcher = nil, nil, nil, nil
	if n.spool != nil { // after the batcher, its only writer
		if err := n.spool.Close(); err != nil {
			n.log.Error("closing the spool", slog.Any("error", err))
		}
	}
	if n.store != nil {
		if err := n.store.Close(); err != nil {
			n.log.Error("closing the node store", slog.Any("error", err))
		}
	}
	if n.ownSys && n.sys != nil {
		n.sys.Shutdown()
	}
}

func timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 5 * time.Second
}

func (n *Node) pids() (sys *actor.ActorSystem, sitePID, uplinkPID, batcherPID, gatePID *actor.PID, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started {
		return nil, nil, nil, nil, nil, ErrNotStarted
	}
	return n.sys, n.site, n.uplink, n.batcher, n.gate, nil
}

// Miners returns every miner's status, sorted by miner id. The samples are shared with the node and must not
// be modified.
func (n *Node) Miners(ctx context.Context) ([]MinerStatus, error) {
	sys, sitePID, _, _, _, err := n.pids()
	if err != nil {
		return nil, err
	}
	l, err := actors.Request[*site.List](sys.Root, sitePID, &site.ListRequest{}, timeout(ctx))
	if err != nil {
		return nil, fmt.Errorf("list miners: %w", err)
	}
	return l.Miners, nil
}

// Miner returns one miner's status (samples copied); an error wrapping site.ErrUnknownMiner when the node does
// not run it.
func (n *Node) Miner(ctx context.Context, id string) (MinerStatus, error) {
	sys, sitePID, _, _, _, err := n.pids()
	if err != nil {
		return MinerStatus{}, err
	}
	return actors.Request[MinerStatus](sys.Root, sitePID, &site.StatusRequest{MinerID: id}, timeout(ctx))
}

// LinkStatus returns the state of the link to the cloud; an error wrapping ErrNoUplink without Config.Dial.
func (n *Node) LinkStatus(ctx context.Context) (LinkStatus, error) {
	sys, _, uplinkPID, _, _, err := n.pids()
	if err != nil {
		return LinkStatus{}, err
	}
	if uplinkPID == nil {
		return LinkStatus{LastError: ErrNoUplink.Error()}, ErrNoUplink
	}
	return actors.Request[LinkStatus](sys.Root, uplinkPID, &uplink.StatusRequest{}, timeout(ctx))
}

// Telemetry returns the batcher's state (pending, backlog, in flight).
func (n *Node) Telemetry(ctx context.Context) (telemetry.Status, error) {
	sys, _, _, batcherPID, _, err := n.pids()
	if err != nil {
		return telemetry.Status{}, err
	}
	return actors.Request[telemetry.Status](sys.Root, batcherPID, &telemetry.StatusRequest{}, timeout(ctx))
}

// Gate returns the command gate's state (seq high-water mark, running commands, owned miners).
func (n *Node) Gate(ctx context.Context) (gate.Status, error) {
	sys, _, _, _, gatePID, err := n.pids()
	if err != nil {
		return gate.Status{}, err
	}
	return actors.Request[gate.Status](sys.Root, gatePID, &gate.StatusRequest{}, timeout(ctx))
}

// Audit returns up to limit audit records in order after the first skip.
func (n *Node) Audit(skip, limit int) ([]*pb.AuditRecord, error) {
	n.mu.Lock()
	st := n.store
	n.mu.Unlock()
	if st == nil {
		return nil, ErrNotStarted
	}
	return st.Audit(skip, limit)
}

// TrustedKeys returns the command keys the node's keyring holds (trusted and revoked) and their org; ok is
// false when the node verifies with a Verifier given in its Config.
func (n *Node) TrustedKeys() (orgID string, keys []*pb.CommandKey, ok bool) {
	n.mu.Lock()
	kv := n.keyring
	n.mu.Unlock()
	if kv == nil {
		return "", nil, false
	}
	return kv.OrgID(), kv.Snapshot(), true
}

// System is the node's ActorSystem (nil before Start).
func (n *Node) System() *actor.ActorSystem {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sys
}
