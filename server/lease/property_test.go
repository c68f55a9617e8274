package lease

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"pgregory.net/rapid"
)

// history checks the safety invariants over every grant that was sent to a node, in the order sent.
type history struct {
	cfg       Config
	holderOf  map[uint64]string // epoch → the one node it was ever granted to
	maxEpoch  uint64
	holder    string    // holder as of the last grant
	epoch     uint64    // its epoch
	validTill time.Time // the last instant the current/last holder may write, by the cloud's accounting
}

func newHistory(cfg Config) *history { return &history{cfg: cfg, holderOf: map[uint64]string{}} }

// grant records a grant sent at now for request op; it fails t on any violation.
func (h *history) grant(t *rapid.T, op pb.LeaseOp, requester string, r Reply, now time.Time) {
	g := r.Grant
	exp := time.UnixMilli(g.GetExpiresAtUnixMs())
	switch {
	case g.GetHolder() == "": // released: the holder stopped at now
		if op != pb.LeaseOp_LEASE_OP_RELEASE || requester != h.holder || g.GetEpoch() != h.epoch {
			t.Fatalf("release grant %v for %s %s, holder %q epoch %d", g, op, requester, h.holder, h.epoch)
		}
		h.holder, h.validTill = "", now
		return
	case g.GetHolder() == h.holder && g.GetEpoch() == h.epoch: // renewal or extension: same holder, same epoch
		if exp.Add(h.cfg.Margin).After(h.validTill) {
			h.validTill = exp.Add(h.cfg.Margin)
		}
		return
	}
	// A new holder (or the same node after a release): a new epoch, larger than every epoch before.
	if g.GetEpoch() <= h.maxEpoch {
		t.Fatalf("holder %s got epoch %d, but epoch %d was already issued (to %q)", g.GetHolder(), g.GetEpoch(), h.maxEpoch, h.holderOf[h.maxEpoch])
	}
	if prev, ok := h.holderOf[g.GetEpoch()]; ok && prev != g.GetHolder() {
		t.Fatalf("epoch %d granted to %s and to %s", g.GetEpoch(), prev, g.GetHolder())
	}
	// No overlap: the new holder's validity starts now; the previous one's ended before (expiry + margin for
	// a takeover, the request time for a handover).
	if op == pb.LeaseOp_LEASE_OP_TRANSFER {
		if requester != h.holder {
			t.Fatalf("transfer by %s while %s holds", requester, h.holder)
		}
		h.validTill = now
	}
	if now.Before(h.validTill) {
		t.Fatalf("epoch %d granted to %s at %s, but epoch %d of %q is valid until %s", g.GetEpoch(), g.GetHolder(), now, h.epoch, h.holder, h.validTill)
	}
	h.holderOf[g.GetEpoch()] = g.GetHolder()
	h.maxEpoch, h.holder, h.epoch = g.GetEpoch(), g.GetHolder(), g.GetEpoch()
	h.validTill = exp.Add(h.cfg.Margin)
}

var nodes = []string{"a", "b", "x"}

type step struct {
	advance time.Duration
	node    string
	op      pb.LeaseOp
	epoch   int // -1: current-1, 0: current, 1: current+1, 2: zero
	to      string
	beat    bool // a gateway heartbeat instead of a request
}

func genStep(t *rapid.T) step {
	s := step{
		advance: time.Duration(rapid.IntRange(0, 4000).Draw(t, "advance_ms")) * time.Millisecond,
		node:    rapid.SampledFrom(nodes).Draw(t, "node"),
		op:      pb.LeaseOp(rapid.IntRange(0, 5).Draw(t, "op")),
		epoch:   rapid.SampledFrom([]int{-1, 0, 0, 0, 1, 2}).Draw(t, "epoch"),
		to:      rapid.SampledFrom(nodes).Draw(t, "to"),
		beat:    rapid.IntRange(0, 5).Draw(t, "beat") == 0,
	}
	return s
}

func (s step) request(cur uint64, id int) *pb.LeaseRequest {
	e := cur
	switch s.epoch {
	case -1:
		if e > 0 {
			e--
		}
	case 1:
		e++
	case 2:
		e = 0
	}
	return &pb.LeaseRequest{PairId: "p", NodeId: s.node, Op: s.op, Epoch: e, TransferTo: s.to, RequestId: fmt.Sprint(id)}
}

func checkStep(t *rapid.T, cfg Config, s State, r *pb.LeaseRequest, next State, reply Reply, err error) {
	if (reply.Grant == nil) == (reply.Denied == nil) || (err == nil) != (reply.Grant != nil) {
		t.Fatalf("reply %+v with err %v", reply, err)
	}
	if next.Epoch < s.Epoch {
		t.Fatalf("epoch went back from %d to %d", s.Epoch, next.Epoch)
	}
	if next.Holder != s.Holder && next.Holder != "" && next.Epoch != s.Epoch+1 {
		t.Fatalf("holder %q→%q with epoch %d→%d", s.Holder, next.Holder, s.Epoch, next.Epoch)
	}
	if next.Holder == s.Holder && next.Epoch != s.Epoch {
		t.Fatalf("epoch %d→%d without a change of holder", s.Epoch, next.Epoch)
	}
	durableChanged := !next.DurableEqual(s)
	if durableChanged != (next.Version == s.Version+1) || (!durableChanged && next.Version != s.Version) {
		t.Fatalf("version %d→%d, durable change %v", s.Version, next.Version, durableChanged)
	}
	asserting := r.GetOp() == pb.LeaseOp_LEASE_OP_RENEW || r.GetOp() == pb.LeaseOp_LEASE_OP_TRANSFER || r.GetOp() == pb.LeaseOp_LEASE_OP_RELEASE
	if s.IsMember(r.GetNodeId()) && asserting && r.GetEpoch() < s.Epoch {
		if !errors.Is(err, ErrStaleEpoch) || durableChanged {
			t.Fatalf("stale epoch %d (current %d) for %s: err %v, durable change %v", r.GetEpoch(), s.Epoch, r.GetOp(), err, durableChanged)
		}
	}
	if r.GetEpoch() > s.Epoch && err == nil {
		t.Fatalf("a request naming unissued epoch %d (current %d) was granted", r.GetEpoch(), s.Epoch)
	}
	if err != nil && durableChanged {
		t.Fatalf("refusal %v changed durable state", err)
	}
}

// TestPropertyDecide runs random request sequences through Decide and checks the invariants: one holder per
// epoch, epochs strictly increasing on a change of holder and never reused, no new holder while the previous
// one's validity (expiry + margin) lasts, stale epochs always refused.
func TestPropertyDecide(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := DefaultConfig()
		cfg.TTL = time.Duration(rapid.IntRange(1000, 8000).Draw(t, "ttl_ms")) * time.Millisecond
		cfg.Margin = time.Duration(rapid.IntRange(0, 1500).Draw(t, "margin_ms")) * time.Millisecond
		cfg.HeartbeatTimeout = time.Duration(rapid.IntRange(1, 8000).Draw(t, "hb_ms")) * time.Millisecond
		s := NewState("p", [2]string{"a", "b"})
		h := newHistory(cfg)
		now := t0
		n := rapid.IntRange(1, 200).Draw(t, "steps")
		for i := range n {
			st := genStep(t)
			now = now.Add(st.advance)
			if st.beat {
				if s.IsMember(st.node) {
					s.LastHeartbeat[st.node] = now
				}
				continue
			}
			r := st.request(s.Epoch, i)
			next, reply, err := Decide(cfg, s, r, now)
			checkStep(t, cfg, s, r, next, reply, err)
			if err == nil {
				h.grant(t, r.GetOp(), r.GetNodeId(), reply, now)
			}
			s = next
		}
	})
}

// activation mirrors LeaseActor.onRequest: decide on its own copy, CAS, reload and decide again on conflict.
type activation struct{ s State }

func (a *activation) reload(t *rapid.T, st Store, now time.Time) {
	s, err := st.Load("p")
	if errors.Is(err, ErrNotFound) {
		s = NewState("p", [2]string{"a", "b"})
	} else if err != nil {
		t.Fatal(err)
	}
	s.LastHeartbeat = map[string]time.Time{"a": now, "b": now}
	a.s = s
}

// TestPropertyDoubleActivation: two activations of the same pair's grain, each with its own (possibly stale)
// copy, decide random requests; only what wins the compare-and-set is sent as a grant. The invariants hold
// over the grants sent by both.
func TestPropertyDoubleActivation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := DefaultConfig()
		st := NewMemory()
		acts := []*activation{{}, {}}
		now := t0
		for _, a := range acts {
			a.reload(t, st, now)
		}
		h := newHistory(cfg)
		n := rapid.IntRange(1, 200).Draw(t, "steps")
		for i := range n {
			st1 := genStep(t)
			now = now.Add(st1.advance)
			a := acts[rapid.IntRange(0, 1).Draw(t, "activation")]
			if st1.beat {
				a.s.LastHeartbeat[st1.node] = now
				continue
			}
			r := st1.request(a.s.Epoch, i)
			for attempt := 1; ; attempt++ {
				next, reply, err := Decide(cfg, a.s, r, now)
				if err != nil {
					a.s = next
					break
				}
				if next.Version != a.s.Version {
					if cerr := st.CompareAndSet("p", a.s.Version, next); cerr != nil {
						if !errors.Is(cerr, ErrConflict) {
							t.Fatal(cerr)
						}
						a.reload(t, st, now)
						if attempt < casAttempts {
							continue
						}
						break
					}
				}
				a.s = next
				h.grant(t, r.GetOp(), r.GetNodeId(), reply, now)
				break
			}
		}
	})
}
