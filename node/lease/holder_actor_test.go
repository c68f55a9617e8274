package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/cluster/gossip"
)

func TestActiveHoldsAndRenews(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	// Twenty seconds of renewals: a never loses its permit.
	h.run(20*time.Second, nil)
	if _, ok := h.handles["a"].MayWrite(h.clk.Now()); !ok {
		t.Fatalf("a lost its lease while renewing: %+v", h.status("a"))
	}
	if e := h.handles["a"].CurrentEpoch(); e != 1 {
		t.Fatalf("epoch %d, want 1", e)
	}
	if err := h.handles["a"].EpochCheck(1); err != nil {
		t.Fatal(err)
	}
	if err := h.handles["a"].EpochCheck(2); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("wrong epoch: %v", err)
	}
	if err := h.handles["b"].EpochCheck(1); !errors.Is(err, ErrFenced) {
		t.Fatalf("standby: %v", err)
	}
	p, err := actors.Request[Permit](h.sys.Root, h.pids["a"], &MayWriteRequest{}, time.Second)
	if err != nil || !p.OK || p.Mode != ModeLease {
		t.Fatalf("MayWriteRequest: %+v %v", p, err)
	}
	e, err := actors.Request[*Epoch](h.sys.Root, h.pids["a"], &EpochRequest{}, time.Second)
	if err != nil || e.Epoch != 1 {
		t.Fatalf("EpochRequest: %+v %v", e, err)
	}
}

// TestStandbyPromotesAfterActiveDies: a crashes; gossip declares it dead after 2.5 s (the documented upper
// bound); b is in control within TTL + margins + retry, under 10 s.
func TestStandbyPromotesAfterActiveDies(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	h.kill("a")
	h.run(2500*time.Millisecond, nil)
	h.peerEvent("b", "a", gossip.PeerDead)
	at := h.run(10*time.Second, h.holds("b"))
	if at < 0 {
		t.Fatalf("b not in control 12.5 s after a died: %+v", h.status("b"))
	}
	total := at + 2500*time.Millisecond
	t.Logf("standby in control %s after the active died (simulated clock)", total)
	if total > 8*time.Second {
		t.Fatalf("failover took %s, above the documented ≈7.5 s", total)
	}
	if st := h.status("b"); st.Epoch != 2 || st.Holder != "b" {
		t.Fatalf("b: %+v", st)
	}
}

// TestActiveCutFromCloudFencesBeforeStandbyWrites: a loses its WAN, not its LAN. It fences at its own
// deadline, tells b through gossip after Drain, b promotes when the cloud lets it. run() checks at every
// step that never both may write.
func TestActiveCutFromCloudFencesBeforeStandbyWrites(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	h.setWAN("a", false)
	at := h.run(15*time.Second, h.holds("b"))
	if at < 0 {
		t.Fatalf("b never took over: %+v", h.status("b"))
	}
	t.Logf("b in control %s after a lost its WAN", at)
	var fencedAt time.Time
	for _, ev := range h.eventsOf("a") {
		if f, ok := ev.(*Fenced); ok {
			fencedAt = f.At
		}
	}
	if fencedAt.IsZero() || !fencedAt.Before(t0.Add(5*time.Second+at)) {
		t.Fatalf("a's fence %s is not before b's control", fencedAt)
	}
	// a's WAN returns: it is refused with its old epoch and stays a standby.
	h.setWAN("a", true)
	h.run(5*time.Second, nil)
	if st := h.status("a"); st.Holder != "b" || st.Permit.OK || st.Epoch != 2 {
		t.Fatalf("a after its WAN returned: %+v", st)
	}
	var demoted bool
	for _, ev := range h.eventsOf("a") {
		if d, ok := ev.(*Demoted); ok && d.Holder == "b" && d.Epoch == 2 {
			demoted = true
		}
	}
	if !demoted {
		t.Fatalf("a never reported its demotion: %v", h.eventsOf("a"))
	}
}

// TestLANCutOnly: both see each other dead in gossip, both have the cloud: b asks and is refused while the
// cloud hears a; nobody but a ever writes.
func TestLANCutOnly(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	h.mu.Lock()
	h.lanUp = false
	h.mu.Unlock()
	h.peerEvent("a", "b", gossip.PeerDead)
	h.peerEvent("b", "a", gossip.PeerDead)
	if at := h.run(30*time.Second, h.holds("b")); at >= 0 {
		t.Fatalf("b promoted at +%s while the cloud still heard a", at)
	}
	if _, ok := h.handles["a"].MayWrite(h.clk.Now()); !ok {
		t.Fatal("a lost control over a LAN cut")
	}
}

// TestStaleActiveReturning: a is cut off from everything, b takes over; a comes back and is refused.
func TestStaleActiveReturning(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	h.setWAN("a", false)
	h.mu.Lock()
	h.lanUp = false
	h.mu.Unlock()
	h.peerEvent("a", "b", gossip.PeerDead)
	h.run(2500*time.Millisecond, nil)
	h.peerEvent("b", "a", gossip.PeerDead)
	if at := h.run(10*time.Second, h.holds("b")); at < 0 {
		t.Fatal("b never took over")
	}
	h.setWAN("a", true)
	h.run(3*time.Second, nil)
	st := h.status("a")
	if st.Permit.OK || st.Holder != "b" || st.Epoch != 2 {
		t.Fatalf("stale a: %+v", st)
	}
}

// TestWANDownLocalHoldThenStandbyRegainsCloud: the whole site loses its WAN: a keeps control (local hold)
// and b never promotes. b's WAN returns first: a fences, tells b after Drain, b is promoted by the cloud.
func TestWANDownLocalHoldThenStandbyRegainsCloud(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	h.setWAN("a", false)
	h.setWAN("b", false)
	h.run(20*time.Second, nil)
	st := h.status("a")
	if !st.Permit.OK || st.Mode != ModeLocalHold {
		t.Fatalf("a during the WAN outage: %+v", st)
	}
	if h.status("b").Permit.OK {
		t.Fatal("b writes during the WAN outage")
	}
	h.setWAN("b", true)
	at := h.run(10*time.Second, h.holds("b"))
	if at < 0 {
		t.Fatalf("b never took over after its WAN returned: %+v / %+v", h.status("a"), h.status("b"))
	}
	t.Logf("b in control %s after its WAN returned", at)
}

func TestWANDownActiveDeadNoLocalPromotionByDefault(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "AllowLocalPromotion"}[allow], func(t *testing.T) {
			h := newPair(t, func(c *Config) { c.AllowLocalPromotion = allow })
			h.start()
			h.setWAN("b", false)
			h.kill("a")
			h.run(2500*time.Millisecond, nil)
			h.peerEvent("b", "a", gossip.PeerDead)
			at := h.run(5*time.Second, h.holds("b"))
			if allow != (at >= 0) {
				t.Fatalf("allow=%v: b in control at %s: %+v", allow, at, h.status("b"))
			}
			if allow {
				if st := h.status("b"); st.Mode != ModeLocalPromoted {
					t.Fatalf("mode %s", st.Mode)
				}
				// The WAN returns: local control ends, the cloud promotes b properly (a is silent).
				h.setWAN("b", true)
				if at := h.run(10*time.Second, func() bool { return h.status("b").Mode == ModeLease }); at < 0 {
					t.Fatalf("b not promoted by the cloud: %+v", h.status("b"))
				}
			}
		})
	}
}

// TestTransferLease: zero-downtime handover. a fences at once, b gets epoch 2, no instant has two writers.
func TestTransferLease(t *testing.T) {
	h := newPair(t, nil)
	h.start()
	if _, err := actors.Request[*Status](h.sys.Root, h.pids["a"], &TransferLease{To: "a"}, time.Second); !errors.Is(err, ErrBadTransfer) {
		t.Fatalf("transfer to itself: %v", err)
	}
	if _, err := actors.Request[*Status](h.sys.Root, h.pids["b"], &TransferLease{To: "a"}, time.Second); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("transfer by the standby: %v", err)
	}
	if _, err := actors.Request[*Status](h.sys.Root, h.pids["a"], &TransferLease{To: "b"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.handles["a"].MayWrite(h.clk.Now()); ok {
		t.Fatal("a still writes after TransferLease")
	}
	at := h.run(5*time.Second, h.holds("b"))
	if at < 0 {
		t.Fatalf("b never got the lease: %+v", h.status("b"))
	}
	t.Logf("handover: b writing %s after the request (drain %s)", at, h.cfg.Drain)
	h.run(5*time.Second, nil)
	if a, b := h.status("a"), h.status("b"); a.Holder != "b" || a.Permit.OK || b.Epoch != 2 || !b.Permit.OK {
		t.Fatalf("after transfer: a %+v b %+v", a, b)
	}
}

func TestReleaseLease(t *testing.T) {
	h := newPair(t, func(c *Config) { c.Standby = true }) // nobody re-acquires on its own
	h.mu.Lock()
	h.mu.Unlock()
	if _, err := actors.Request[*Status](h.sys.Root, h.pids["a"], &ReleaseLease{}, time.Second); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release without a lease: %v", err)
	}
}
