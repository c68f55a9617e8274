package curtail

import (
	"testing"
	"time"
)

// TestInactiveNodeHoldsEventsWithoutActing: a warm-standby pair's standby accepts and keeps an event but
// commands nothing; promoted, it curtails at once.
func TestInactiveNodeHoldsEventsWithoutActing(t *testing.T) {
	f := randomFleet(3, 40)
	h := newActorHarness(t, f, testConfig())
	h.inactive.Store(true)
	if r := h.start(Event{ID: "e", Target: ShedKW(30), Source: "cloud"}); r.Err != nil || r.Status.Phase != PhaseScheduled {
		t.Fatalf("start: %+v", r)
	}
	for range 20 {
		h.tick()
	}
	h.mu.Lock()
	n := len(h.commands)
	h.mu.Unlock()
	if n != 0 || len(f.curtailedSet()) != 0 {
		t.Fatalf("inactive node sent %d commands", n)
	}
	h.inactive.Store(false)
	s := h.until(30*time.Minute, func(s Status) bool { return s.Achieved && s.MinersPending == 0 })
	if s.Event.ID != "e" || len(f.curtailedSet()) == 0 {
		t.Fatalf("after promotion: %+v", s)
	}
}
