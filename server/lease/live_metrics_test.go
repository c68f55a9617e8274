package lease

import (
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLiveSeriesFollowTheClock: the remaining time and heartbeat ages are computed at scrape time on the
// lease clock, so they move between decisions; a forgotten pair has no series left.
func TestLiveSeriesFollowTheClock(t *testing.T) {
	h := newHarness(t, NewMemory())
	h.metrics.SetClock(h.clk)
	pid := h.spawn()
	if g, _ := h.ask(pid, "a", pb.LeaseOp_LEASE_OP_ACQUIRE, 0, ""); g == nil {
		t.Fatal("acquire denied")
	}
	h.clk.Advance(2 * time.Second)
	h.sys.Root.Send(pid, &Heartbeat{NodeID: "b"})
	if _, err := actors.Request[*Status](h.sys.Root, pid, &StatusRequest{}, time.Second); err != nil { // the heartbeat is in
		t.Fatal(err)
	}
	h.clk.Advance(time.Second)
	want := `
# HELP hashfleet_server_lease_expires_in_seconds Seconds until each pair's lease expires on the cloud clock (negative: expired; 0: nobody holds it).
# TYPE hashfleet_server_lease_expires_in_seconds gauge
hashfleet_server_lease_expires_in_seconds{pair="p"} 3
# HELP hashfleet_server_lease_heartbeat_age_seconds Seconds since the cloud last heard each pair member (a heartbeat or a lease request).
# TYPE hashfleet_server_lease_heartbeat_age_seconds gauge
hashfleet_server_lease_heartbeat_age_seconds{node="a",pair="p"} 3
hashfleet_server_lease_heartbeat_age_seconds{node="b",pair="p"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "hashfleet_server_lease_expires_in_seconds",
		"hashfleet_server_lease_heartbeat_age_seconds"); err != nil {
		t.Fatal(err)
	}
	h.metrics.Forget("p")
	if n, err := testutil.GatherAndCount(h.reg, "hashfleet_server_lease_expires_in_seconds", "hashfleet_server_lease_heartbeat_age_seconds",
		"hashfleet_server_lease_epoch", "hashfleet_server_lease_holder"); err != nil || n != 0 {
		t.Fatalf("after Forget: %d series (%v)", n, err)
	}
}
