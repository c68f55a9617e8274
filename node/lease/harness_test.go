package lease

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/cluster/gossip"
	"github.com/hashfleet/hashfleet/messages/pb"
	cloud "github.com/hashfleet/hashfleet/server/lease"
)

func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }

// pairHarness runs two LeaseHolderActors ("a" active-preferred, "b" standby) against the real cloud
// decision (server/lease.Decide) on one fake clock, with a fake gossip link that carries each node's advert
// to the other. Faults: a node's WAN (requests fail, replies dropped), the LAN (no adverts, peers declared
// dead/alive by the test), a node's death.
type pairHarness struct {
	t   *testing.T
	sys *actor.ActorSystem
	clk *clock.Fake
	cfg Config

	mu     sync.Mutex
	cloud  cloud.State
	ccfg   cloud.Config
	wanUp  map[string]bool
	lanUp  bool
	dead   map[string]bool
	pids   map[string]*actor.PID
	events map[string][]any
	// writers: per node, the simulated instants it was allowed to write (sampled every step)
	handles map[string]*Handle
	meta    map[string][]byte // each node's last advert, replayed when the peer appears (a gossip join)
}

func newPair(t *testing.T, mut func(*Config)) *pairHarness {
	h := &pairHarness{t: t, sys: actors.NewSystem(nil), clk: clock.NewFake(t0), ccfg: cloud.DefaultConfig(),
		cloud: cloud.NewState("p", [2]string{"a", "b"}), wanUp: map[string]bool{"a": true, "b": true}, lanUp: true,
		dead: map[string]bool{}, pids: map[string]*actor.PID{}, events: map[string][]any{}, handles: map[string]*Handle{},
		meta: map[string][]byte{}}
	t.Cleanup(h.sys.Shutdown)
	for _, n := range []string{"a", "b"} {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.PairID, cfg.Standby = n, "p", n == "b"
		if mut != nil {
			mut(&cfg)
		}
		h.cfg = cfg
		h.spawn(n, cfg)
	}
	// Gossip join: each node learns the other's current metadata.
	h.mu.Lock()
	for n, b := range h.meta {
		h.sys.Root.Send(h.pids[other(n)], &gossip.PeerEvent{Name: n, State: gossip.PeerAlive, Meta: b})
	}
	h.mu.Unlock()
	return h
}

func (h *pairHarness) spawn(n string, cfg Config) {
	node := n
	ev := h.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *Fenced, *Unfenced, *Promoted, *Demoted:
			h.mu.Lock()
			h.events[node] = append(h.events[node], c.Message())
			h.mu.Unlock()
		}
	}))
	h.handles[n] = NewHandle(h.clk)
	h.mu.Lock()
	up := h.wanUp[n]
	h.mu.Unlock()
	pid := h.sys.Root.Spawn(Props(cfg, Env{Sender: sender{h, n}, Gossip: link{h, n}, Handle: h.handles[n], Events: ev,
		CloudUp: up, Clock: h.clk}))
	h.mu.Lock()
	h.pids[n] = pid
	h.mu.Unlock()
}

func other(n string) string {
	if n == "a" {
		return "b"
	}
	return "a"
}

// sender is the node's uplink: the cloud decides at once and answers on the same "stream".
type sender struct {
	h    *pairHarness
	node string
}

var errWAN = errors.New("wan down")

func (s sender) SendLeaseRequest(req *pb.LeaseRequest) error {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.wanUp[s.node] || h.dead[s.node] || h.pids[s.node] == nil { // (nil: Started ran before Spawn returned)
		return errWAN
	}
	next, reply, _ := cloud.Decide(h.ccfg, h.cloud, req, h.clk.Now())
	h.cloud = next
	if reply.Grant != nil {
		h.sys.Root.Send(h.pids[s.node], reply.Grant)
		// The new holder of a transfer gets its grant unasked (HolderChanged in the real wiring).
		if to := reply.Grant.GetHolder(); reply.HolderChanged() && to != "" && to != s.node && h.wanUp[to] && !h.dead[to] && h.pids[to] != nil {
			h.sys.Root.Send(h.pids[to], reply.Grant)
		}
	} else {
		h.sys.Root.Send(h.pids[s.node], reply.Denied)
	}
	return nil
}

// heartbeat: a node with its WAN up is heard by the cloud (its gateway heartbeat).
func (h *pairHarness) heartbeats() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range []string{"a", "b"} {
		if h.wanUp[n] && !h.dead[n] {
			h.cloud.LastHeartbeat[n] = h.clk.Now()
		}
	}
}

// link is the node's gossip: its advert reaches the peer while the LAN is up and both live.
type link struct {
	h    *pairHarness
	node string
}

func (l link) SetMeta(b []byte) error {
	h := l.h
	h.mu.Lock()
	defer h.mu.Unlock()
	h.meta[l.node] = b
	if h.lanUp && !h.dead[l.node] && !h.dead[other(l.node)] && h.pids[other(l.node)] != nil {
		h.sys.Root.Send(h.pids[other(l.node)], &gossip.PeerEvent{Name: l.node, State: gossip.PeerAlive, Meta: b})
	}
	return nil
}

func (h *pairHarness) peerEvent(to, about string, st gossip.PeerState) {
	h.sys.Root.Send(h.pids[to], &gossip.PeerEvent{Name: about, State: st})
}

func (h *pairHarness) setWAN(n string, up bool) {
	h.mu.Lock()
	h.wanUp[n] = up
	pid := h.pids[n]
	h.mu.Unlock()
	h.sys.Root.Send(pid, &CloudStatus{Up: up})
}

// kill stops a node's actor as a crash would: no goodbye.
func (h *pairHarness) kill(n string) {
	h.mu.Lock()
	h.dead[n] = true
	pid := h.pids[n]
	h.mu.Unlock()
	if err := h.sys.Root.StopFuture(pid).Wait(); err != nil {
		h.t.Fatal(err)
	}
}

// settle lets both actors process what is queued, including replies and adverts they caused.
func (h *pairHarness) settle() {
	for range 4 {
		for _, n := range []string{"a", "b"} {
			h.mu.Lock()
			pid, dead := h.pids[n], h.dead[n]
			h.mu.Unlock()
			if dead {
				continue
			}
			if _, err := actors.Request[*Status](h.sys.Root, pid, &StatusRequest{}, 2*time.Second); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

// writers returns the live nodes whose handle allows a write at now.
func (h *pairHarness) writers() []string {
	var out []string
	now := h.clk.Now()
	for _, n := range []string{"a", "b"} {
		h.mu.Lock()
		dead := h.dead[n]
		h.mu.Unlock()
		if _, ok := h.handles[n].MayWrite(now); ok && !dead {
			out = append(out, n)
		}
	}
	return out
}

// run steps the clock by 50ms for d, checking at every step that at most one node may write, and returns
// the first instant (since the run started) at which want holds, or -1.
func (h *pairHarness) run(d time.Duration, want func() bool) time.Duration {
	const step = 50 * time.Millisecond
	start := h.clk.Now()
	found := time.Duration(-1)
	for h.clk.Now().Sub(start) < d {
		h.clk.Advance(step)
		h.heartbeats()
		h.settle()
		if w := h.writers(); len(w) > 1 {
			h.t.Fatalf("at +%s both %v may write", h.clk.Now().Sub(t0), w)
		}
		if found < 0 && want != nil && want() {
			found = h.clk.Now().Sub(start)
		}
	}
	return found
}

func (h *pairHarness) holds(n string) func() bool {
	return func() bool {
		_, ok := h.handles[n].MayWrite(h.clk.Now())
		return ok
	}
}

func (h *pairHarness) status(n string) *Status {
	h.t.Helper()
	st, err := actors.Request[*Status](h.sys.Root, h.pids[n], &StatusRequest{}, 2*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *pairHarness) eventsOf(n string) []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]any(nil), h.events[n]...)
}

// start brings the pair up: a acquires, b stays standby.
func (h *pairHarness) start() {
	h.t.Helper()
	if at := h.run(2*time.Second, h.holds("a")); at < 0 {
		h.t.Fatalf("a never got the lease: %+v", h.status("a"))
	}
	h.run(3*time.Second, nil)
	if st := h.status("b"); st.Holder == "b" || st.Permit.OK || st.Peer.State != gossip.PeerAlive || !st.Peer.Holding {
		h.t.Fatalf("b after start: %+v", st)
	}
}
