package gossip

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gossip series. Labels are small fixed sets. A nil *Metrics records nothing.
type Metrics struct {
	peersAlive prometheus.Gauge
	events     *prometheus.CounterVec
	joins      *prometheus.CounterVec
}

// NewMetrics registers the series on reg (nil: unregistered); registering twice reuses the first.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		peersAlive: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_gossip_peers_alive", Help: "Pair peers this member sees alive in gossip (0 or 1 for a pair).",
		})),
		events: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_gossip_peer_events_total", Help: "Peer state changes seen, by new state (alive, suspect, dead, left).",
		}, []string{"state"})),
		joins: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_gossip_join_attempts_total", Help: "Join and rejoin attempts to known peers, by result (joined, failed).",
		}, []string{"result"})),
	}
}

func (m *Metrics) alive(n int) {
	if m != nil {
		m.peersAlive.Set(float64(n))
	}
}

func (m *Metrics) event(s PeerState) {
	if m != nil {
		m.events.WithLabelValues(s.String()).Inc()
	}
}

func (m *Metrics) rejoined(result string) {
	if m != nil {
		m.joins.WithLabelValues(result).Inc()
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
