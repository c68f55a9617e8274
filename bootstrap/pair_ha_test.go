package bootstrap

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/lease"
)

// TestPairStatusHA reads /status/ha from both members of a real pair over HTTP: the active answers role
// active with a future lease expiry, the standby names the active, ?active=1 tells them apart (200 / 503),
// and after the active dies the standby reports itself active under a higher epoch.
func TestPairStatusHA(t *testing.T) {
	p := startPairWith(t, 2, func(_ string, o *NodeRunOptions) {
		o.Metrics = &MetricsConfig{Listen: "127.0.0.1:0"}
	})
	a, b := p.nodes["a"], p.nodes["b"]
	ha := func(n *pairNode, query string) (int, *HAStatus) {
		t.Helper()
		r := metricsGet(t, metricsClient(), "http://"+n.proc.MetricsAddr()+"/status/ha"+query, "", "")
		var body struct {
			Pair *HAStatus `json:"pair"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil {
			t.Fatalf("/status/ha of %s: %v: %q", n.name, err, r.body)
		}
		return r.code, body.Pair
	}
	code, st := ha(a, "")
	if code != 200 || st == nil || st.Role != "active" || st.Self != a.id || st.Active != a.id || st.Peer != b.id ||
		st.PairID != p.pairID || st.Epoch == 0 || !st.LeaseExpiry.After(time.Now()) {
		t.Fatalf("active's /status/ha: HTTP %d %+v", code, st)
	}
	epoch := st.Epoch
	if code, st = ha(b, ""); code != 200 || st == nil || st.Role != "standby" || st.Active != a.id || st.Self != b.id {
		t.Fatalf("standby's /status/ha: HTTP %d %+v", code, st)
	}
	if code, _ = ha(a, "?active=1"); code != 200 {
		t.Fatalf("active ?active=1: HTTP %d", code)
	}
	if code, _ = ha(b, "?active=1"); code != 503 {
		t.Fatalf("standby ?active=1: HTTP %d, want 503", code)
	}
	p.stop("a", true)
	waitFor(t, 2*failoverTarget, "b reports itself active", func() bool {
		code, st := ha(b, "?active=1")
		return code == 200 && st != nil && st.Role == "active" && st.Active == b.id && st.Epoch > epoch
	})
}

// TestHAStatusMapping: the lease holder's modes map onto /status/ha's roles.
func TestHAStatusMapping(t *testing.T) {
	until := time.Unix(1_800_000_000, 0)
	if haStatus(node.PairStatus{}) != nil {
		t.Fatal("a lone node must answer no pair")
	}
	pending := haStatus(node.PairStatus{Paired: true, Pending: true, PairID: "p"})
	if pending == nil || pending.Role != "unknown" {
		t.Fatalf("pending: %+v", pending)
	}
	for mode, want := range map[lease.Mode]string{lease.ModeLease: "active", lease.ModeLocalHold: "active",
		lease.ModeLocalPromoted: "active", lease.ModeFenced: "fenced", lease.ModeConfirming: "fenced", lease.ModeStandby: "standby"} {
		st := node.PairStatus{Paired: true, PairID: "p", Peer: "b", Holder: "a",
			Lease: lease.Status{NodeID: "a", Epoch: 4, Mode: mode, Permit: lease.Permit{Until: until}}}
		got := haStatus(st)
		if got.Role != want || got.Epoch != 4 || got.Self != "a" || got.Peer != "b" || got.Active != "a" {
			t.Errorf("%s: %+v, want role %s", mode, got, want)
		}
		if (want == "active") != got.LeaseExpiry.Equal(until) {
			t.Errorf("%s: lease expiry %v", mode, got.LeaseExpiry)
		}
	}
}
