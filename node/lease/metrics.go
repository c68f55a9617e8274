package lease

import (
	"strings"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the node's lease series. Labels: holder (one of the pair's two node ids), op and result
// (small fixed sets), kind (cloud, local). A nil *Metrics records nothing.
type Metrics struct {
	epoch     prometheus.Gauge
	holder    *prometheus.GaugeVec
	fenceIn   prometheus.Gauge
	fenced    prometheus.Gauge
	mode      *prometheus.GaugeVec
	failovers *prometheus.CounterVec
	requests  *prometheus.CounterVec

	mu         sync.Mutex
	holderSeen string
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		epoch: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_lease_epoch", Help: "Highest lease epoch this node has heard for its pair.",
		})),
		holder: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_lease_holder", Help: "1 for the pair's lease holder as this node last heard it (label holder).",
		}, []string{"holder"})),
		fenceIn: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_lease_expiry_seconds", Help: "Seconds until this node must stop writing (its fence deadline); 0 when it may not write.",
		})),
		fenced: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_lease_fenced", Help: "1 while this node may not write to miners (standby, lapsed lease, handover).",
		})),
		mode: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_lease_mode", Help: "1 for this node's current write mode (standby, lease, fenced, local_hold, local_promoted, confirming), 0 for the others.",
		}, []string{"mode"})),
		failovers: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_lease_failovers_total", Help: "Times this node took control by promotion, by kind (cloud, local).",
		}, []string{"kind"})),
		requests: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_lease_requests_total", Help: "Lease requests, by op and result (granted, denied, timeout, send_error).",
		}, []string{"op", "result"})),
	}
}

func opLabel(op pb.LeaseOp) string {
	return strings.ToLower(strings.TrimPrefix(op.String(), "LEASE_OP_"))
}

func (m *Metrics) request(op pb.LeaseOp, result string) {
	if m != nil {
		m.requests.WithLabelValues(opLabel(op), result).Inc()
	}
}

func (m *Metrics) failover(kind string) {
	if m != nil {
		m.failovers.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) observe(l Lease, p Permit, secondsLeft float64) {
	if m == nil {
		return
	}
	m.epoch.Set(float64(l.Epoch))
	for md := ModeStandby; md <= ModeConfirming; md++ {
		v := 0.0
		if md == p.Mode {
			v = 1
		}
		m.mode.WithLabelValues(md.String()).Set(v)
	}
	if p.OK {
		m.fenced.Set(0)
		m.fenceIn.Set(secondsLeft)
	} else {
		m.fenced.Set(1)
		m.fenceIn.Set(0)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holderSeen != l.Holder {
		if m.holderSeen != "" {
			m.holder.DeleteLabelValues(m.holderSeen)
		}
		if l.Holder != "" {
			m.holder.WithLabelValues(l.Holder).Set(1)
		}
		m.holderSeen = l.Holder
	}
}
