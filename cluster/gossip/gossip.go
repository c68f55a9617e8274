package gossip

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MaxMeta is the most metadata a member may publish (memberlist's limit less one framing byte).
const MaxMeta = memberlist.MetaMaxSize - 1

// Gossip is one running member. Its three goroutines (dispatcher, rejoin, metadata publisher) end in Stop or
// Halt.
type Gossip struct {
	cfg     Config
	log     *slog.Logger
	ml      *memberlist.Memberlist
	started time.Time
	addr    string // LocalAddr, read once at Start: memberlist's LocalNode is mutated by UpdateNode unlocked

	meta     metaHolder
	metaKick chan struct{}
	q        eventQueue

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	acks ackTimes

	// owned by the dispatcher goroutine
	peers map[string]peerView
	file  *peersFile

	viewMu sync.Mutex
	view   map[string]PeerState // copy of peers' states for PeerAlive and Members
}

type peerView struct {
	state PeerState
	addr  string
	meta  []byte
}

// Start validates cfg, binds the UDP and TCP listeners and starts the member. It does not wait for the
// peers: the rejoin goroutine joins them at once and keeps trying while alone.
func Start(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.Default()
	}
	lg = lg.With(slog.String("node", cfg.NodeName))
	file, err := openPeersFile(cfg.PeersFile)
	if err != nil {
		return nil, err
	}
	g := &Gossip{cfg: cfg, log: lg, peers: map[string]peerView{}, file: file, view: map[string]PeerState{},
		acks: ackTimes{at: map[string]time.Time{}}}
	g.meta.set(cfg.Meta)
	g.q.kick = make(chan struct{}, 1)
	g.metaKick = make(chan struct{}, 1)

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	mc.BindAddr, mc.BindPort = cfg.BindAddr, cfg.BindPort
	mc.AdvertiseAddr, mc.AdvertisePort = cfg.AdvertiseAddr, cfg.BindPort
	mc.SecretKey = slices.Clone(cfg.SecretKey)
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult = cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult
	mc.GossipInterval, mc.PushPullInterval, mc.TCPTimeout = cfg.GossipInterval, cfg.PushPullInterval, cfg.TCPTimeout
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.Delegate = &delegate{meta: &g.meta}
	mc.Ping = &g.acks
	mc.Events = &eventDelegate{q: &g.q}
	mc.Logger = log.New(logBridge{log: lg.With(slog.String("lib", "memberlist"))}, "", 0)
	mc.LogOutput = nil

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip %s: start memberlist on %s:%d: %w", cfg.NodeName, cfg.BindAddr, cfg.BindPort, err)
	}
	g.ml, g.started = ml, time.Now()
	ln := ml.LocalNode()
	g.addr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.wg.Add(3)
	go g.dispatch()
	go g.rejoin()
	go g.publishMeta()
	lg.Info("gossip started", slog.String("addr", g.LocalAddr()), slog.Any("peers", g.joinTargets()))
	return g, nil
}

// LocalAddr returns this member's advertised "host:port".
func (g *Gossip) LocalAddr() string { return g.addr }

// Stop leaves the pair gracefully (the peer sees PeerLeft at once), shuts memberlist down and ends its
// goroutines. Safe to call more than once, and after Halt.
func (g *Gossip) Stop() error { return g.stop(true) }

// Halt shuts down without leaving: to the peer it looks like a crash (it sees suspect, then dead). For
// tests and for a node that must vanish at once.
func (g *Gossip) Halt() error { return g.stop(false) }

func (g *Gossip) stop(leave bool) error {
	var err error
	g.once.Do(func() {
		if leave {
			// Flag the goodbye in our metadata first: memberlist reports a leave like a death.
			g.meta.setLeaving()
			if uerr := g.ml.UpdateNode(g.cfg.LeaveTimeout); uerr != nil {
				g.log.Warn("gossip leave flag not sent", slog.Any("error", uerr))
			}
			if lerr := g.ml.Leave(g.cfg.LeaveTimeout); lerr != nil {
				g.log.Warn("gossip leave incomplete", slog.Any("error", lerr))
			}
		}
		err = g.ml.Shutdown()
		g.cancel()
		g.wg.Wait()
		g.cfg.Metrics.alive(0)
		g.log.Info("gossip stopped", slog.Bool("left", leave))
	})
	return err
}

// Member is one member as this one sees it (itself included).
type Member struct {
	Name  string
	Addr  string
	State PeerState
	Meta  []byte
}

// Members returns the members that are alive or suspect, this one included. (memberlist's own
// Node.State is never updated in v0.7.0; the state here is this package's.)
func (g *Gossip) Members() []Member {
	var out []Member
	for _, n := range g.ml.Members() {
		st := PeerAlive
		if n.Name != g.cfg.NodeName {
			st = g.stateOf(n.Name)
			if st != PeerAlive && st != PeerSuspect {
				continue // memberlist has it again, the dispatcher has not caught up yet
			}
		}
		_, meta := unframe(n.Meta)
		out = append(out, Member{Name: n.Name, Addr: n.Address(), State: st, Meta: meta})
	}
	return out
}

// PeerAlive reports whether the named member is alive (not suspect, dead or gone) as of the last
// dispatched event.
func (g *Gossip) PeerAlive(name string) bool { return g.stateOf(name) == PeerAlive }

func (g *Gossip) stateOf(name string) PeerState {
	g.viewMu.Lock()
	defer g.viewMu.Unlock()
	return g.view[name]
}

// SetMeta replaces this member's metadata; the publisher goroutine gossips it (the peer gets a PeerEvent
// with it, typically within GossipInterval). It never blocks, so actors may call it from Receive.
func (g *Gossip) SetMeta(meta []byte) error {
	if len(meta) > MaxMeta {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMetaTooLarge, len(meta), MaxMeta)
	}
	if g.ctx.Err() != nil {
		return ErrStopped
	}
	if g.meta.set(meta) {
		select {
		case g.metaKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// publishMeta broadcasts metadata changes. memberlist's UpdateNode waits until the broadcast went out (or
// a timeout), which is why it runs here and not in the caller.
func (g *Gossip) publishMeta() {
	defer g.wg.Done()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-g.metaKick:
		}
		if err := g.ml.UpdateNode(g.cfg.LeaveTimeout); err != nil && g.ctx.Err() == nil {
			g.log.Warn("gossip metadata not broadcast", slog.Any("error", err))
		}
	}
}

// dispatch is the single owner of the per-peer state machine: it drains delegate notifications, polls for
// alive⇄suspect (memberlist has no delegate for suspicion), and delivers events.
func (g *Gossip) dispatch() {
	defer g.wg.Done()
	poll := min(g.cfg.ProbeInterval/5, 100*time.Millisecond)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-g.q.kick:
		case <-t.C:
		}
		for _, n := range g.q.drain() {
			g.observe(n.name, n.addr, n.state, n.meta)
		}
		g.pollSuspects()
	}
}

// pollSuspects infers suspicion from probe acks, since memberlist v0.7.0 exposes no suspect state: a
// peer not acked for SuspectAfter is suspect (memberlist suspects it when the probe that missed fails,
// about 2·PI after the last ack), and alive again once acks resume. A peer reachable only over the TCP
// fallback (UDP blocked) shows as suspect while memberlist keeps it alive: the safe direction for a pair.
func (g *Gossip) pollSuspects() {
	now := time.Now()
	after := g.suspectAfter()
	for name, p := range g.peers {
		if p.state != PeerAlive && p.state != PeerSuspect {
			continue
		}
		last := g.acks.last(name)
		st := PeerAlive
		if now.Sub(last) > after {
			st = PeerSuspect
		}
		if st != p.state {
			g.observe(name, p.addr, st, p.meta)
		}
	}
}

// suspectAfter is how long without a probe ack makes a peer suspect: two probe intervals and the probe
// timeout.
func (g *Gossip) suspectAfter() time.Duration { return 2*g.cfg.ProbeInterval + g.cfg.ProbeTimeout }

// observe moves a peer to state and emits an event when its state, address or metadata changed.
func (g *Gossip) observe(name, addr string, state PeerState, meta []byte) {
	if name == g.cfg.NodeName {
		return
	}
	cur, known := g.peers[name]
	if known && cur.state == state && cur.addr == addr && bytes.Equal(cur.meta, meta) {
		return
	}
	g.peers[name] = peerView{state: state, addr: addr, meta: meta}
	if state == PeerAlive && (!known || cur.state != PeerAlive && cur.state != PeerSuspect) {
		g.acks.seen(name) // a (re)join counts as an ack: probes start from here
	}
	g.viewMu.Lock()
	g.view[name] = state
	g.viewMu.Unlock()
	alive := 0
	for _, p := range g.peers {
		if p.state == PeerAlive {
			alive++
		}
	}
	g.cfg.Metrics.alive(alive)
	g.cfg.Metrics.event(state)
	lvl := slog.LevelInfo
	if known && cur.state == state {
		lvl = slog.LevelDebug // metadata or address only
	}
	g.log.Log(g.ctx, lvl, "gossip peer state", slog.String("peer", name), slog.String("addr", addr), slog.String("state", state.String()))
	if state == PeerAlive {
		if err := g.file.add(name, addr); err != nil {
			g.log.Warn("cannot persist gossip peers", slog.Any("error", err))
		}
	}
	if g.cfg.Events != nil {
		g.cfg.Events(g.ctx, PeerEvent{Name: name, Addr: addr, State: state, Meta: slices.Clone(meta), At: time.Now()})
	}
}

// rejoin joins the known peers at once, then every RejoinInterval while alone or inside the startup window.
func (g *Gossip) rejoin() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.RejoinInterval)
	defer t.Stop()
	for {
		if g.ml.NumMembers() <= 1 || time.Since(g.started) < g.cfg.StartupRejoinWindow {
			g.join()
		}
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gossip) join() {
	targets := g.joinTargets()
	if len(targets) == 0 || g.ctx.Err() != nil {
		return
	}
	n, err := g.ml.Join(targets)
	switch {
	case n > 0:
		g.cfg.Metrics.rejoined("joined")
	case err != nil:
		g.cfg.Metrics.rejoined("failed")
		g.log.Debug("gossip join failed", slog.Any("peers", targets), slog.Any("error", err))
	}
}

// joinTargets is Peers ∪ the persisted peers, without this member's own address.
func (g *Gossip) joinTargets() []string {
	self := g.LocalAddr()
	var out []string
	for _, a := range append(slices.Clone(g.cfg.Peers), g.file.addrs()...) {
		if a != self && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// delegate serves this member's metadata to memberlist.
type delegate struct{ meta *metaHolder }

func (d *delegate) NodeMeta(limit int) []byte {
	m := d.meta.framed()
	if len(m) > limit {
		return nil
	}
	return m
}
func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// metaHolder keeps this member's metadata. On the wire it is framed: one flags byte (bit 0: leaving),
// then the caller's bytes; so the caller may use MetaMaxSize−1 bytes.
type metaHolder struct {
	mu      sync.Mutex
	b       []byte
	leaving bool
}

const flagLeaving = 1

func unframe(b []byte) (leaving bool, meta []byte) {
	if len(b) == 0 {
		return false, nil
	}
	return b[0]&flagLeaving != 0, b[1:]
}

func (m *metaHolder) setLeaving() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaving = true
}

// set stores b and reports whether it changed.
func (m *metaHolder) set(b []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if bytes.Equal(m.b, b) {
		return false
	}
	m.b = slices.Clone(b)
	return true
}

// framed returns the wire form.
func (m *metaHolder) framed() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var flags byte
	if m.leaving {
		flags |= flagLeaving
	}
	return append([]byte{flags}, m.b...)
}

// ackTimes records the last probe ack of each peer (memberlist's PingDelegate).
type ackTimes struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (a *ackTimes) AckPayload() []byte { return nil }

func (a *ackTimes) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	a.seen(other.Name)
}

func (a *ackTimes) seen(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.at[name] = time.Now()
}

func (a *ackTimes) last(name string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.at[name]
}

// eventDelegate is called by memberlist with its node lock held: it only enqueues.
type eventDelegate struct{ q *eventQueue }

func (e *eventDelegate) NotifyJoin(n *memberlist.Node) { e.q.push(n, PeerAlive) }

// NotifyUpdate: a peer whose metadata says it is leaving is not reported alive again.
func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	if leaving, _ := unframe(n.Meta); leaving {
		return
	}
	e.q.push(n, PeerAlive)
}

// NotifyLeave: memberlist reports a graceful leave like a death (Node.State is not set); the leaving flag
// the peer put in its metadata before leaving tells them apart.
func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	if leaving, _ := unframe(n.Meta); leaving {
		e.q.push(n, PeerLeft)
		return
	}
	e.q.push(n, PeerDead)
}

type queued struct {
	name, addr string
	state      PeerState
	meta       []byte
}

type eventQueue struct {
	mu    sync.Mutex
	items []queued
	kick  chan struct{}
}

func (q *eventQueue) push(n *memberlist.Node, s PeerState) {
	q.mu.Lock()
	_, meta := unframe(n.Meta)
	q.items = append(q.items, queued{name: n.Name, addr: n.Address(), state: s, meta: slices.Clone(meta)})
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *eventQueue) drain() []queued {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// logBridge routes memberlist's "[LEVEL] memberlist: ..." lines to slog at the matching level.
type logBridge struct{ log *slog.Logger }

func (b logBridge) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	lvl := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelDebug, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if len(line) >= len(prefix) && line[:len(prefix)] == prefix {
			lvl = l
			line = line[len(prefix):]
			break
		}
	}
	b.log.Log(context.Background(), lvl, string(bytes.TrimSpace([]byte(line))))
	return len(p), nil
}
