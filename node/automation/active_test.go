package automation

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// TestInactiveNodeEvaluatesNothing: a warm-standby pair's standby keeps the policy (the pool guard stays
// armed) but fires no rule; once it may act, the rules run.
func TestInactiveNodeEvaluatesNothing(t *testing.T) {
	k := newKeys(t, "org-1")
	sp, err := SignPolicy(samplePolicy(3), k.issuer, t0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	nd := newNode(t, start, 10, sp, k)
	nd.inactive.Store(true)
	nd.s.set("m-0002", func(m *simMiner) { m.tempC = 97 })
	nd.advanceTo(start.Add(5 * time.Minute))
	if a := nd.auditsWhere(func(*pb.AuditRecord) bool { return true }); len(a) != 0 {
		t.Fatalf("inactive node acted: %v", a)
	}
	if ok, _ := nd.guard.Allows("stratum+tcp://evil.example.net:3333"); ok {
		t.Fatal("pool guard disarmed on the standby")
	}
	nd.inactive.Store(false)
	nd.advanceTo(start.Add(6 * time.Minute))
	if nd.s.commandsOf("m-0002", pb.Action_ACTION_CURTAIL) != 1 {
		t.Fatal("the rule did not fire once the node may act")
	}
}
