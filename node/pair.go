package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/lease"
	"github.com/hashfleet/hashfleet/node/localui"
	"github.com/hashfleet/hashfleet/node/miner"
	"github.com/hashfleet/hashfleet/node/writelog"
)

// Warm-standby pairs on the node. Membership comes from the cloud: a HelloAck carrying PairInfo makes this
// node a pair member (the PairActor opens the pair key, starts cluster/gossip and a node/lease
// LeaseHolderActor); a HelloAck without it makes it a lone node again. Writes are gated by leaseGuard:
//
//	HelloAck.pair ──▶ PairActor ──start──▶ gossip.Gossip (pair key, peer_gossip_addr, PeersFile)
//	                     │        └──spawn──▶ LeaseHolderActor ──Handle──▶ leaseGuard ──▶ gate EpochCheck
//	LinkChanged ─────────┤ CloudStatus                  ▲                               └─▶ MinerActor writes
//	LeaseGrant/Denied ───┘ ─────────────────────────────┘ Sender: uplink (NodeToCloud.lease_request)
//	lease events (fenced, unfenced, promoted, demoted) ──▶ EVENT_KIND_LEASE events to the cloud

// PairConfig configures this node's part in a warm-standby pair. Which pair, the partner and the pair key
// come from the cloud; these are the local settings.
type PairConfig struct {
	// GossipListen is the "host:port" the pair gossip (memberlist, UDP and TCP) binds. Default "0.0.0.0:7946".
	GossipListen string
	// GossipAdvertise is the "host:port" the partner reaches this node's gossip at (sent to the cloud in the
	// hello, handed to the partner). Its port must be GossipListen's. Default: the listen address, or the
	// first private IP when listening on all interfaces.
	GossipAdvertise string
	// Lease times the LeaseHolder (NodeID, PairID and Standby come from the cloud). Default
	// lease.DefaultConfig(); LocalHold and AllowLocalPromotion are the WAN-down policy (see node/lease).
	Lease lease.Config
	// Gossip times the failure detector (node name, addresses, key, peers and peers file are set by the
	// node). Default gossip.DefaultConfig(): a dead partner is declared in 2.0–2.5 s.
	Gossip gossip.Config
	// KeepLeaseOnStop: a graceful Stop of the lease holder keeps its lease. By default (false) Stop hands it
	// over first: to the partner when gossip shows it alive (the zero-downtime upgrade path: stop the old
	// node and the partner writes about Drain + one round trip later instead of after the lease's expiry),
	// else it releases it. Kill (a crash) never hands over.
	KeepLeaseOnStop bool
	// StopHandoverTimeout bounds the handover a graceful Stop waits for. Default 5s (Drain 1 s + the
	// cloud's answer).
	StopHandoverTimeout time.Duration
}

// DefaultPairConfig returns the defaults documented on PairConfig.
func DefaultPairConfig() PairConfig {
	return PairConfig{GossipListen: "0.0.0.0:7946", Lease: lease.DefaultConfig(), Gossip: gossip.DefaultConfig()}
}

// Validate reports a configuration an operator must fix.
func (c PairConfig) Validate() error {
	var errs []error
	lhost, lport, err := splitHostPort(c.GossipListen)
	if err != nil {
		errs = append(errs, fmt.Errorf("pair: gossip listen address: %w", err))
	} else if net.ParseIP(lhost) == nil {
		errs = append(errs, fmt.Errorf("pair: gossip listen address %q: the host must be an IP address", c.GossipListen))
	}
	if c.GossipAdvertise != "" {
		ahost, aport, err := splitHostPort(c.GossipAdvertise)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("pair: gossip advertise address: %w", err))
		case net.ParseIP(ahost) == nil:
			errs = append(errs, fmt.Errorf("pair: gossip advertise address %q: the host must be an IP address", c.GossipAdvertise))
		case lport != 0 && aport != lport:
			errs = append(errs, fmt.Errorf("pair: gossip advertise port %d must be the listen port %d (memberlist uses one port)", aport, lport))
		}
	}
	lc := c.Lease
	lc.NodeID, lc.PairID = "node", "pair" // filled from the cloud's PairInfo
	if err := lc.Validate(); err != nil {
		errs = append(errs, err)
	}
	gc := c.Gossip
	gc.NodeName, gc.BindAddr, gc.BindPort, gc.SecretKey = "node", "127.0.0.1", 0, make([]byte, 32)
	if err := gc.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port %q", addr, p)
	}
	return host, port, nil
}

// PairPurpose is the sealing purpose of the pair key envelope (bound to (node, pair_id, PairPurpose)).
const PairPurpose = "pair-key"

// leaseGuard is what the gate and the miners ask before a write: nil handle (a lone node) allows every
// write and checks no epoch; a pair member's LeaseHolder Handle decides otherwise. It is swapped by the
// PairActor as the node joins or leaves a pair.
type leaseGuard struct {
	h   atomic.Pointer[lease.Handle]
	clk clock.Clock
}

// pending puts the guard in "pair member, lease unknown": every write refused until a LeaseHolder runs.
func (g *leaseGuard) pending() { g.h.Store(lease.NewHandle(g.clk)) }

func (g *leaseGuard) set(h *lease.Handle) { g.h.Store(h) }

func (g *leaseGuard) paired() bool { return g.h.Load() != nil }

// BeginWrite implements miner.WriteGuard.
func (g *leaseGuard) BeginWrite() (uint64, time.Time, error) {
	h := g.h.Load()
	if h == nil {
		return 0, time.Time{}, nil
	}
	p, ok := h.MayWriteNow()
	if !ok {
		return p.Epoch, time.Time{}, fmt.Errorf("%w (lease %s, epoch %d)", miner.ErrFenced, p.Mode, p.Epoch)
	}
	return p.Epoch, p.Until, nil
}

// EpochCheck fits gate.Config.EpochCheck.
func (g *leaseGuard) EpochCheck(epoch uint64) error {
	h := g.h.Load()
	if h == nil {
		return nil
	}
	err := h.EpochCheck(epoch)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lease.ErrConfirming): // the gate holds the command a moment; after that, FENCED
		return fmt.Errorf("%w: %w: %w", gate.ErrFenced, gate.ErrLeasePending, err)
	case errors.Is(err, lease.ErrFenced):
		return fmt.Errorf("%w: %w", gate.ErrFenced, err)
	}
	return fmt.Errorf("%w: %w", gate.ErrWrongEpoch, err)
}

// Epoch is the lease epoch for hellos and heartbeats (0: not in a pair or none known).
func (g *leaseGuard) Epoch() uint64 {
	h := g.h.Load()
	if h == nil {
		return 0
	}
	return h.CurrentEpoch()
}

// pairFile remembers, under the data directory, that this node is a pair member, so that after a restart it
// makes no write before its LeaseHolder runs again (the cloud's HelloAck decides from there).
const pairFileName = "pair.json"

type pairRecord struct {
	PairID string `json:"pair_id"`
}

func readPairFile(dataDir string) (pairRecord, bool) {
	if dataDir == "" {
		return pairRecord{}, false
	}
	b, err := os.ReadFile(filepath.Join(dataDir, pairFileName))
	if err != nil {
		return pairRecord{}, false
	}
	var r pairRecord
	if err := json.Unmarshal(b, &r); err != nil || r.PairID == "" {
		// Unreadable: assume a pair (the safe side) until the cloud says otherwise.
		return pairRecord{PairID: "?"}, true
	}
	return r, true
}

func writePairFile(dataDir string, r *pairRecord) error {
	if dataDir == "" {
		return nil
	}
	path := filepath.Join(dataDir, pairFileName)
	if r == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pair file: %w", err)
		}
		return nil
	}
	b, _ := json.Marshal(r)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("pair file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pair file: %w", err)
	}
	return nil
}

// PairStatus is this node's pair and lease as the local UI and `hashfleet node status` show them.
type PairStatus struct {
	// Paired: the cloud made this node a pair member (or it was one at its last run and the cloud has not
	// answered yet: then Pending).
	Paired  bool
	Pending bool
	PairID  string
	Members []string
	// Peer is the partner's node id; PeerGossipAddr where the cloud last said its gossip listens.
	Peer           string
	PeerGossipAddr string
	// GossipAddr is this node's gossip address ("" while gossip is not running); GossipError why it is not.
	GossipAddr  string
	GossipError string
	// PeerState is the partner as gossip sees it ("" never seen).
	PeerState string
	// Holder is the lease holder as this node knows it: the cloud's word (Lease.Holder), else the partner
	// when gossip shows it alive and writing ("" unknown or nobody).
	Holder string
	// Lease is the LeaseHolder's view: holder, epoch, mode, fence deadline, cloud link.
	Lease lease.Status
}

// LeaseStatus returns the node's pair and lease (Paired false for a lone node).
func (n *Node) LeaseStatus(ctx context.Context) (PairStatus, error) {
	n.mu.Lock()
	sys, pid, started := n.sys, n.pair, n.started
	n.mu.Unlock()
	if !started {
		return PairStatus{}, ErrNotStarted
	}
	if pid == nil {
		return PairStatus{}, nil
	}
	var err error
	for range 3 { // the holder may be replaced between the two requests (a pair change): ask again
		var snap *pairSnapshot
		if snap, err = actors.Request[*pairSnapshot](sys.Root, pid, &pairSnapshotRequest{}, timeout(ctx)); err != nil {
			return PairStatus{}, fmt.Errorf("pair status: %w", err)
		}
		st := snap.status
		if snap.holder == nil {
			return st, nil
		}
		var ls *lease.Status
		if ls, err = actors.Request[*lease.Status](sys.Root, snap.holder, &lease.StatusRequest{}, timeout(ctx)); err != nil {
			continue
		}
		st.Lease, st.Holder = *ls, ls.Holder
		if ls.Peer.State != 0 {
			st.PeerState = ls.Peer.State.String()
		}
		if st.Holder == "" && ls.Peer.State == gossip.PeerAlive && ls.Peer.Holding {
			st.Holder = st.Peer
		}
		return st, nil
	}
	return PairStatus{}, fmt.Errorf("lease status: %w", err)
}

// TransferLease hands this node's lease to its partner (zero-downtime upgrade): writes stop at once, started
// writes drain, then the cloud moves the lease. An error wrapping lease.ErrNotHolder when this node does not
// hold it, ErrNotPaired for a lone node.
func (n *Node) TransferLease(ctx context.Context) error {
	return n.handover(ctx, true)
}

// ReleaseLease gives this node's lease up (writes stop, drain, RELEASE).
func (n *Node) ReleaseLease(ctx context.Context) error {
	return n.handover(ctx, false)
}

func (n *Node) handover(ctx context.Context, transfer bool) error {
	n.mu.Lock()
	sys, pid, started := n.sys, n.pair, n.started
	n.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	if pid == nil {
		return ErrNotPaired
	}
	snap, err := actors.Request[*pairSnapshot](sys.Root, pid, &pairSnapshotRequest{}, timeout(ctx))
	if err != nil {
		return fmt.Errorf("pair status: %w", err)
	}
	if snap.holder == nil {
		return ErrNotPaired
	}
	var msg any = &lease.ReleaseLease{}
	if transfer {
		if snap.status.Peer == "" {
			return fmt.Errorf("transfer: %w: the partner is unknown", lease.ErrBadTransfer)
		}
		msg = &lease.TransferLease{To: snap.status.Peer}
	}
	res, err := sys.Root.RequestFuture(snap.holder, msg, timeout(ctx)).Result()
	if err != nil {
		return fmt.Errorf("lease handover: %w", err)
	}
	if e, ok := res.(error); ok {
		return e
	}
	return nil
}

// handoverOnStop is a graceful Stop's first step for a lease holder (PairConfig.KeepLeaseOnStop): hand the
// lease to a live partner, else release it, and wait until the cloud moved it (or StopHandoverTimeout).
// Without a cloud link, or when this node does not hold the lease, there is nothing to hand over: the
// partner takes over after the lease's expiry as after a crash. Errors are logged, never returned: the node
// stops either way.
func (n *Node) handoverOnStop(ctx context.Context) {
	pc := n.cfg.Pair.withDefaults()
	if pc.KeepLeaseOnStop || n.halt.Load() {
		return
	}
	st, err := n.LeaseStatus(ctx)
	if err != nil || !st.Paired || st.Pending || st.Lease.Mode != lease.ModeLease || !st.Lease.CloudUp {
		return
	}
	wait := pc.StopHandoverTimeout
	if wait <= 0 {
		wait = 5 * time.Second
	}
	hctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	self, transfer := st.Lease.NodeID, st.PeerState == "alive"
	if err := n.handover(hctx, transfer); err != nil {
		n.log.Warn("stop: lease handover refused; the partner takes over after the lease expires", slog.Any("err", err))
		return
	}
	timer := n.cfg.Clock.NewTimer(50 * time.Millisecond)
	defer timer.Stop()
	for {
		select {
		case <-hctx.Done():
			n.log.Warn("stop: the cloud did not confirm the lease handover in time", slog.Duration("waited", wait))
			return
		case <-timer.C():
		}
		if st, err := n.LeaseStatus(hctx); err == nil && st.Lease.Holder != self {
			n.log.Info("stop: lease handed over", slog.Bool("transfer", transfer), slog.String("holder", st.Lease.Holder),
				slog.Uint64("epoch", st.Lease.Epoch))
			return
		}
		timer.Reset(50 * time.Millisecond)
	}
}

// pairEnv is what the PairActor is wired to (set in Start).
type pairEnv struct {
	guard   *leaseGuard
	batcher *actor.PID
	metrics *lease.Metrics
	gossipM *gossip.Metrics
	am      *actors.Metrics
	// halt, set by Kill before the node stops, makes the gossip vanish without a goodbye (a crash to the peer).
	halt *atomic.Bool
	// uplink is the Uplink's PID, for the holder's requests (nil without a cloud link).
	uplink *atomic.Pointer[actor.PID]
	// gossipAddr is the running gossip's address, for the hello (nil: not running).
	gossipAddr *atomic.Pointer[string]
}

// withDefaults fills zero fields with DefaultPairConfig's (a Config built without DefaultConfig).
func (c PairConfig) withDefaults() PairConfig {
	d := DefaultPairConfig()
	if c.GossipListen == "" {
		c.GossipListen = d.GossipListen
	}
	if c.Lease.RenewInterval == 0 && c.Lease.DefaultTTL == 0 && c.Lease.TickInterval == 0 {
		c.Lease = d.Lease
	}
	if c.Gossip.ProbeInterval == 0 && c.Gossip.SuspicionMult == 0 {
		c.Gossip = d.Gossip
	}
	return c
}

// startPairing spawns the PairActor (before the uplink, which sends it hello_acks, link changes and lease
// answers). Only a node with a cloud link can be in a pair.
func (n *Node) startPairing(spawn func(string, *actor.Props) (*actor.PID, error), am *actors.Metrics) error {
	cfg := n.cfg
	cfg.Pair = cfg.Pair.withDefaults()
	n.gossipConfigured = ""
	if adv := cfg.Pair.GossipAdvertise; adv != "" {
		n.gossipConfigured = adv
	} else if host, port, err := splitHostPort(cfg.Pair.GossipListen); err == nil && port != 0 && !net.ParseIP(host).IsUnspecified() {
		n.gossipConfigured = cfg.Pair.GossipListen
	}
	env := pairEnv{guard: n.guard, batcher: n.batcher, metrics: lease.NewMetrics(cfg.Registerer),
		gossipM: gossip.NewMetrics(cfg.Registerer), am: am, halt: &n.halt, uplink: &n.uplinkPID, gossipAddr: &n.gossipRunning}
	var err error
	n.pair, err = spawn("pair", actors.Props("pair", am, func() actor.Actor { return newPairActor(cfg, env) }))
	return err
}

// helloGossipAddr is the gossip address the hello carries: the running gossip's, else the configured one.
func (n *Node) helloGossipAddr() string {
	if p := n.gossipRunning.Load(); p != nil {
		return *p
	}
	return n.gossipConfigured
}

// Kill stops the node as abruptly as an in-process stop can: its pair gossip vanishes without a goodbye (to
// the partner it looks like a crash) and its lease is not released. For failover tests and simulations; a
// real crash is a killed process.
func (n *Node) Kill(ctx context.Context) error {
	n.halt.Store(true)
	return n.Stop(ctx)
}

// HaltGossip cuts this node off its pair's LAN as a fault: its gossip stops without a goodbye (the partner
// declares it dead) while everything else, the cloud link included, keeps running. For failover tests and
// chaos simulations; the gossip comes back only with the next pair (re)join or a restart.
func (n *Node) HaltGossip(ctx context.Context) error {
	n.mu.Lock()
	sys, pid, started := n.sys, n.pair, n.started
	n.mu.Unlock()
	if !started {
		return ErrNotStarted
	}
	if pid == nil {
		return ErrNotPaired
	}
	_, err := actors.Request[bool](sys.Root, pid, &haltGossip{}, timeout(ctx))
	return err
}

// WriteLog returns the log every miner write of this node is recorded in (nil: none; see Config.WriteLog).
func (n *Node) WriteLog() writelog.Log {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.writeLog
}

// openWriteLog opens the node's write log: Config.WriteLog, else a File under DataDir, else none.
func (n *Node) openWriteLog() error {
	switch {
	case n.cfg.WriteLog != nil:
		n.writeLog = n.cfg.WriteLog
	case n.cfg.DataDir != "":
		f, err := writelog.OpenFile(filepath.Join(n.cfg.DataDir, writelog.FileName), n.log)
		if err != nil {
			return err
		}
		n.writeLog, n.writeFile = f, f
	}
	return nil
}

func (n *Node) closeWriteLog() {
	if n.writeFile != nil {
		if err := n.writeFile.Close(); err != nil {
			n.log.Error("closing the write log", slog.Any("error", err))
		}
		n.writeFile = nil
	}
}

// pairView is the local UI's pair panel (nil for a lone node or when the status cannot be read).
func (n *Node) pairView(ctx context.Context) *localui.PairView {
	st, err := n.LeaseStatus(ctx)
	if err != nil || !st.Paired {
		return nil
	}
	v := &localui.PairView{PairID: st.PairID, Peer: st.Peer, PeerState: st.PeerState, Holder: st.Holder,
		Epoch: st.Lease.Epoch, Mode: st.Lease.Mode.String()}
	if st.Pending {
		v.PairID, v.Mode = "(waiting for the cloud)", lease.ModeFenced.String()
	}
	if st.Lease.Permit.OK {
		v.WritesUntil = st.Lease.Permit.Until
	}
	return v
}
