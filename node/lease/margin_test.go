package lease

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	cloud "github.com/hashfleet/hashfleet/server/lease"
)

// TestMarginArithmetic checks Margin_node + Margin_cloud ≥ 2·ρ·TTL + W with the real decisions: the
// holder's node clock runs slow and the cloud's fast by ρ (the worst pairing), the renewal reaches the
// cloud after a WAN delay, and the holder's last write lands W after its last allowed instant. The cloud's
// first moment to grant another node must come after that landing.
func TestMarginArithmetic(t *testing.T) {
	ncfg, ccfg := DefaultConfig(), cloud.DefaultConfig()
	for _, tc := range []struct {
		rho   float64
		delay time.Duration // node → cloud
		w     time.Duration // longest write landing time
		safe  bool
	}{
		{0, 0, 1900 * time.Millisecond, true},
		{1e-4, 300 * time.Millisecond, 1900 * time.Millisecond, true},
		{1e-3, 2 * time.Second, 1980 * time.Millisecond, true},
		{1e-3, 0, 2100 * time.Millisecond, false}, // W beyond the margins: the check must fail
	} {
		realStart := time.Unix(1_700_000_000, 0)
		nodeClock := func(real time.Duration) time.Time { // slow node clock
			return realStart.Add(time.Duration(float64(real) * (1 - tc.rho)))
		}
		cloudClock := func(real time.Duration) time.Time { // fast cloud clock
			return realStart.Add(time.Duration(float64(real) * (1 + tc.rho)))
		}
		// The node sends at real 0; the cloud grants at real `delay`.
		s := cloud.NewState("p", [2]string{"a", "b"})
		sentAt := nodeClock(0)
		s, r, err := cloud.Decide(ccfg, s, &pb.LeaseRequest{PairId: "p", NodeId: "a", Op: pb.LeaseOp_LEASE_OP_ACQUIRE}, cloudClock(tc.delay))
		if err != nil {
			t.Fatal(err)
		}
		l, _ := ApplyGrant(ncfg, "a", Lease{}, r.Grant, &sentAt, time.Time{})
		// The node's fence in real time: local elapsed FenceAt−start at a slow rate.
		fenceReal := time.Duration(float64(l.FenceAt.Sub(realStart)) / (1 - tc.rho))
		lastLanding := fenceReal + tc.w
		// The cloud's first takeover instant: ExpiresAt + Margin on its clock (heartbeats long lapsed).
		s.LastHeartbeat["a"] = time.Time{}
		var takeoverReal time.Duration
		for real := time.Duration(0); real < time.Minute; real += time.Millisecond {
			if _, _, err := cloud.Decide(ccfg, s, &pb.LeaseRequest{PairId: "p", NodeId: "b", Op: pb.LeaseOp_LEASE_OP_PROMOTE, Epoch: 1}, cloudClock(real)); err == nil {
				takeoverReal = real
				break
			}
		}
		if got := lastLanding < takeoverReal; got != tc.safe {
			t.Errorf("ρ=%g delay=%s W=%s: last landing %s, takeover %s: safe=%v, want %v", tc.rho, tc.delay, tc.w, lastLanding, takeoverReal, got, tc.safe)
		}
	}
}
