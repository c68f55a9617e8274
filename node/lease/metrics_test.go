package lease

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if NewMetrics(reg) == nil { // a second node in one process shares the series
		t.Fatal("second registration")
	}
	m.observe(Lease{Holder: "a", Epoch: 3}, Permit{OK: true, Until: t0.Add(time.Second)}, 4.5)
	m.observe(Lease{Holder: "b", Epoch: 4}, Permit{}, 0)
	m.failover("cloud")
	m.request(pb.LeaseOp_LEASE_OP_RENEW, "granted")
	if v := testutil.ToFloat64(m.epoch); v != 4 {
		t.Fatalf("epoch %v", v)
	}
	if v := testutil.ToFloat64(m.fenced); v != 1 {
		t.Fatalf("fenced %v", v)
	}
	if v := testutil.ToFloat64(m.mode.WithLabelValues("standby")); v != 1 {
		t.Fatalf("mode standby %v", v)
	}
	if v := testutil.ToFloat64(m.mode.WithLabelValues("lease")); v != 0 {
		t.Fatalf("mode lease %v", v)
	}
	if n := testutil.CollectAndCount(m.holder); n != 1 {
		t.Fatalf("holder series %d, want only the current one", n)
	}
	if v := testutil.ToFloat64(m.holder.WithLabelValues("b")); v != 1 {
		t.Fatalf("holder b %v", v)
	}
	if v := testutil.ToFloat64(m.requests.WithLabelValues("renew", "granted")); v != 1 {
		t.Fatalf("requests %v", v)
	}
	var nilM *Metrics
	nilM.observe(Lease{}, Permit{}, 0)
	nilM.failover("local")
	nilM.request(pb.LeaseOp_LEASE_OP_RENEW, "denied")
}
