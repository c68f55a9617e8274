package lease

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }

// harness runs LeaseActors of pair "p" (members a, b) on a fake clock over one store.
type harness struct {
	t       *testing.T
	sys     *actor.ActorSystem
	clk     *clock.Fake
	store   Store
	cfg     Config
	reg     *prometheus.Registry
	metrics *Metrics

	mu      sync.Mutex
	changes []*HolderChanged
	notify  *actor.PID
}

func newHarness(t *testing.T, st Store) *harness {
	h := &harness{t: t, sys: actors.NewSystem(nil), clk: clock.NewFake(t0), store: st, cfg: DefaultConfig(),
		reg: prometheus.NewRegistry()}
	h.metrics = NewMetrics(h.reg)
	h.notify = h.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if hc, ok := c.Message().(*HolderChanged); ok {
			h.mu.Lock()
			h.changes = append(h.changes, hc)
			h.mu.Unlock()
		}
	}))
	t.Cleanup(h.sys.Shutdown)
	return h
}

func (h *harness) spawn() *actor.PID {
	return h.sys.Root.Spawn(Props("p", h.cfg, Env{Store: h.store, Members: [2]string{"a", "b"}, Notify: h.notify,
		Clock: h.clk, Metrics: h.metrics}))
}

func (h *harness) ask(pid *actor.PID, node string, op pb.LeaseOp, epoch uint64, to string) (*pb.LeaseGrant, *pb.LeaseDenied) {
	h.t.Helper()
	r, err := actors.Request[any](h.sys.Root, pid, &pb.LeaseRequest{PairId: "p", NodeId: node, Op: op, Epoch: epoch,
		TransferTo: to, RequestId: node + "-" + op.String()}, 2*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	switch r := r.(type) {
	case *pb.LeaseGrant:
		return r, nil
	case *pb.LeaseDenied:
		return nil, r
	}
	h.t.Fatalf("reply %T", r)
	return nil, nil
}

func (h *harness) stored() State {
	h.t.Helper()
	s, err := h.store.Load("p")
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func TestActorGrantsOnlyWhatItPersisted(t *testing.T) {
	h := newHarness(t, NewMemory())
	pid := h.spawn()
	g, d := h.ask(pid, "a", acquire, 0, "")
	if d != nil || g.GetHolder() != "a" || g.GetEpoch() != 1 || g.GetRequestId() != "a-LEASE_OP_ACQUIRE" {
		t.Fatalf("acquire: %v %v", g, d)
	}
	if s := h.stored(); s.Holder != "a" || s.Epoch != 1 || s.Version != 1 {
		t.Fatalf("stored after the grant: %+v", s)
	}
	h.clk.Advance(2 * time.Second)
	g, _ = h.ask(pid, "a", renewOp, 1, "")
	if s := h.stored(); s.Version != 2 || s.ExpiresAt.UnixMilli() != g.GetExpiresAtUnixMs() {
		t.Fatalf("renewal not persisted before the reply: %+v vs %v", s, g)
	}
	if v := testutil.ToFloat64(h.metrics.holder.WithLabelValues("p", "a")); v != 1 {
		t.Fatalf("holder gauge %v", v)
	}
	if v := testutil.ToFloat64(h.metrics.epoch.WithLabelValues("p")); v != 1 {
		t.Fatalf("epoch gauge %v", v)
	}
}

func TestActorPromotesOnlyAfterExpiryMarginAndSilence(t *testing.T) {
	h := newHarness(t, NewMemory())
	pid := h.spawn()
	h.ask(pid, "a", acquire, 0, "")
	// a dies now. b's PROMOTE is refused while a's lease (and the margin) lasts.
	h.clk.Advance(3 * time.Second)
	if _, d := h.ask(pid, "b", promote, 1, ""); d == nil || d.GetHolder() != "a" || !strings.Contains(d.GetReason(), ErrHeld.Error()) {
		t.Fatalf("promote during the lease: %v", d)
	}
	h.clk.Advance(h.cfg.TTL + h.cfg.Margin - 3*time.Second)
	g, d := h.ask(pid, "b", promote, 1, "")
	if d != nil || g.GetHolder() != "b" || g.GetEpoch() != 2 {
		t.Fatalf("promote after expiry: %v %v", g, d)
	}
	// a comes back with its old epoch: refused, told who holds now.
	if _, d := h.ask(pid, "a", renewOp, 1, ""); d == nil || d.GetHolder() != "b" || d.GetEpoch() != 2 {
		t.Fatalf("stale renew: %v", d)
	}
	actortest.Eventually(t, "holder change notified", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.changes) == 2 && h.changes[1].To == "b" && h.changes[1].Failover && h.changes[1].Grant.GetEpoch() == 2
	})
	if v := testutil.ToFloat64(h.metrics.failovers.WithLabelValues("p")); v != 1 {
		t.Fatalf("failovers %v", v)
	}
	if n := testutil.CollectAndCount(h.metrics.holder); n != 1 {
		t.Fatalf("holder series %d, want only the current holder", n)
	}
}

func TestActorHeartbeatsKeepAHolderThatStoppedRenewing(t *testing.T) {
	h := newHarness(t, NewMemory())
	pid := h.spawn()
	h.ask(pid, "a", acquire, 0, "")
	for range 8 { // a's renewals are lost, but its gateway heartbeats arrive every second
		h.clk.Advance(time.Second)
		h.sys.Root.Send(pid, &Heartbeat{NodeID: "a"})
	}
	if _, d := h.ask(pid, "b", promote, 1, ""); d == nil || !strings.Contains(d.GetReason(), ErrHolderAlive.Error()) {
		t.Fatalf("promote over a heard holder: %v", d)
	}
	h.clk.Advance(h.cfg.HeartbeatTimeout)
	if g, d := h.ask(pid, "b", promote, 1, ""); g == nil {
		t.Fatalf("promote after silence: %v", d)
	}
}

func TestActorTransferAndRelease(t *testing.T) {
	h := newHarness(t, NewMemory())
	pid := h.spawn()
	h.ask(pid, "a", acquire, 0, "")
	g, d := h.ask(pid, "a", transferO, 1, "b")
	if d != nil || g.GetHolder() != "b" || g.GetEpoch() != 2 {
		t.Fatalf("transfer: %v %v", g, d)
	}
	actortest.Eventually(t, "new holder notified", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.changes) == 2 && h.changes[1].To == "b" && h.changes[1].From == "a" && !h.changes[1].Failover
	})
	g, _ = h.ask(pid, "b", releaseO, 2, "")
	if g.GetHolder() != "" || g.GetEpoch() != 2 {
		t.Fatalf("release: %v", g)
	}
	g, _ = h.ask(pid, "a", acquire, 2, "")
	if g.GetHolder() != "a" || g.GetEpoch() != 3 {
		t.Fatalf("acquire after release reused an epoch: %v", g)
	}
}

// Two activations of one pair (protoactor cluster can do this around a membership change): the stale one
// must not promote over a renewal the other one stored.
func TestActorDoubleActivationLosesTheCAS(t *testing.T) {
	h := newHarness(t, NewMemory())
	one := h.spawn()
	h.ask(one, "a", acquire, 0, "")
	two := h.spawn() // loads epoch 1, expiry t0+6s
	if _, err := actors.Request[*Status](h.sys.Root, two, &StatusRequest{}, time.Second); err != nil {
		t.Fatal(err) // (answered after Started: two has loaded before one renews)
	}
	h.clk.Advance(5 * time.Second)
	h.ask(one, "a", renewOp, 1, "") // stored: expiry t0+11s; two does not know
	// Past two's idea of expiry + margin, and past the heartbeat timeout two seeded at its activation.
	h.clk.Advance(h.cfg.TTL + h.cfg.Margin)
	h.sys.Root.Send(one, &Heartbeat{NodeID: "a"}) // (one hears a; two does not)
	_, d := h.ask(two, "b", promote, 1, "")
	if d == nil {
		t.Fatal("the stale activation promoted b over a's stored renewal")
	}
	if v := testutil.ToFloat64(h.metrics.conflicts); v < 1 {
		t.Fatalf("conflicts %v, want the CAS to have caught it", v)
	}
	if s := h.stored(); s.Holder != "a" || s.Epoch != 1 {
		t.Fatalf("stored %+v", s)
	}
}

func TestActorRestartCountsMembersAsHeard(t *testing.T) {
	dir := t.TempDir()
	st := openBadger(t, dir)
	h := newHarness(t, st)
	pid := h.spawn()
	h.ask(pid, "a", acquire, 0, "")
	if err := h.sys.Root.StopFuture(pid).Wait(); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(h.cfg.TTL + h.cfg.Margin) // a's lease is over, but the new activation has not heard anyone
	pid = h.spawn()
	if _, d := h.ask(pid, "b", promote, 1, ""); d == nil || !strings.Contains(d.GetReason(), ErrHolderAlive.Error()) {
		t.Fatalf("promote right after activation: %v", d)
	}
	h.clk.Advance(h.cfg.HeartbeatTimeout)
	if g, _ := h.ask(pid, "b", promote, 1, ""); g.GetEpoch() != 2 {
		t.Fatalf("promote after the timeout: %v", g)
	}
	st2, err := actors.Request[*Status](h.sys.Root, pid, &StatusRequest{}, time.Second)
	if err != nil || st2.Holder != "b" || st2.Epoch != 2 || !st2.Live {
		t.Fatalf("status %+v %v", st2, err)
	}
}

// failingStore fails every write on purpose.
type failingStore struct{ Store }

var errDisk = errors.New("disk on fire")

func (failingStore) CompareAndSet(string, uint64, State) error { return errDisk }

func TestActorStoreFailureDeniesAndKeepsState(t *testing.T) {
	h := newHarness(t, failingStore{NewMemory()})
	pid := h.spawn()
	_, d := h.ask(pid, "a", acquire, 0, "")
	if d == nil || !strings.Contains(d.GetReason(), errDisk.Error()) || d.GetEpoch() != 0 {
		t.Fatalf("acquire on a failing store: %v", d)
	}
	st, err := actors.Request[*Status](h.sys.Root, pid, &StatusRequest{}, time.Second)
	if err != nil || st.Holder != "" || st.Epoch != 0 {
		t.Fatalf("state changed without being persisted: %+v %v", st, err)
	}
}

func TestActorSetMembers(t *testing.T) {
	h := newHarness(t, NewMemory())
	pid := h.spawn()
	st, err := actors.Request[*Status](h.sys.Root, pid, &SetMembers{Members: [2]string{"a", "c"}}, time.Second)
	if err != nil || st.Members != [2]string{"a", "c"} || st.Version != 1 {
		t.Fatalf("set members: %+v %v", st, err)
	}
	if _, err := actors.Request[*Status](h.sys.Root, pid, &SetMembers{Members: [2]string{"a", ""}}, time.Second); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("bad members: %v", err)
	}
	if g, _ := h.ask(pid, "c", acquire, 0, ""); g == nil {
		t.Fatal("new member refused")
	}
}
