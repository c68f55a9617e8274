package lease

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cloud lease series. Labels: pair (few per org), holder (one of the pair's two node ids),
// op and result (small fixed sets). A nil *Metrics records nothing.
type Metrics struct {
	epoch     *prometheus.GaugeVec
	holder    *prometheus.GaugeVec
	expiry    *prometheus.GaugeVec
	failovers *prometheus.CounterVec
	decisions *prometheus.CounterVec
	conflicts prometheus.Counter
	live      *liveSeries

	mu      sync.Mutex
	holders map[string]string // pair → holder label currently set
}

// NewMetrics registers the series on reg (nil: unregistered). Registering twice on one registry reuses the
// first collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		epoch: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_server_lease_epoch", Help: "Current lease epoch (fencing token) of each warm-standby pair.",
		}, []string{"pair"})),
		holder: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_server_lease_holder", Help: "1 for the node holding each pair's lease (label holder); no series while nobody holds it.",
		}, []string{"pair", "holder"})),
		expiry: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_server_lease_expiry_timestamp_seconds", Help: "When each pair's lease expires, Unix seconds on the cloud clock (0: not held).",
		}, []string{"pair"})),
		failovers: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_lease_failovers_total", Help: "Leases taken over from a holder that expired without handing over, by pair.",
		}, []string{"pair"})),
		decisions: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_lease_decisions_total", Help: "Lease requests decided, by op and result (acquired, promoted, extended, renewed, transferred, released, denied).",
		}, []string{"op", "result"})),
		conflicts: register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hashfleet_server_lease_store_conflicts_total", Help: "Compare-and-set conflicts: another activation of a lease grain wrote first.",
		})),
		live:    register(reg, newLiveSeries()),
		holders: map[string]string{},
	}
}

func (m *Metrics) decided(op, result string) {
	if m != nil {
		m.decisions.WithLabelValues(op, result).Inc()
	}
}

func (m *Metrics) conflict() {
	if m != nil {
		m.conflicts.Inc()
	}
}

func (m *Metrics) failover(pair string) {
	if m != nil {
		m.failovers.WithLabelValues(pair).Inc()
	}
}

func (m *Metrics) state(s State) {
	if m == nil {
		return
	}
	m.live.observe(s)
	m.epoch.WithLabelValues(s.PairID).Set(float64(s.Epoch))
	if s.ExpiresAt.IsZero() {
		m.expiry.WithLabelValues(s.PairID).Set(0)
	} else {
		m.expiry.WithLabelValues(s.PairID).Set(float64(s.ExpiresAt.UnixMilli()) / 1000)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.holders[s.PairID]; ok && old != s.Holder {
		m.holder.DeleteLabelValues(s.PairID, old)
		delete(m.holders, s.PairID)
	}
	if s.Holder != "" {
		m.holder.WithLabelValues(s.PairID, s.Holder).Set(1)
		m.holders[s.PairID] = s.Holder
	}
}

func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
