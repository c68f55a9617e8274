package miner

import (
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the MinerActors' series. Labels are bounded (result, driver, action, state), never a miner id.
// A nil *Metrics records nothing.
type Metrics struct {
	polls       *prometheus.CounterVec
	pollLatency *prometheus.HistogramVec
	commands    *prometheus.CounterVec
	transitions *prometheus.CounterVec
	inFlight    prometheus.Gauge
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		polls: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_polls_total",
			Help: "Miner polls by driver (cgminer, antminer, proto) and result (ok, unreachable, timeout, malformed, error, panic, no_driver).",
		}, []string{"driver", "result"})),
		pollLatency: promx.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hashfleet_node_poll_latency_seconds",
			Help:    "Miner poll latency (driver I/O only, not the wait for a connection slot), by driver.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"driver"})),
		commands: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_miner_commands_total",
			Help: "Commands run on miners, by action and result code (one per miner).",
		}, []string{"action", "result"})),
		transitions: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_miner_state_changes_total",
			Help: "Miner state changes, by the state entered.",
		}, []string{"to"})),
		inFlight: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_driver_inflight_operations",
			Help: "Driver operations (open connections) in flight across the site, bounded by MaxInFlight for polls and MaxCommandsInFlight while commands run.",
		})),
	}
}

func (m *Metrics) command(action, result string) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(action, result).Inc()
}

func (m *Metrics) transition(to string) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(to).Inc()
}

// InFlightGauge returns the gauge a site's Limiter reports to, nil when m is nil.
func (m *Metrics) InFlightGauge() prometheus.Gauge {
	if m == nil {
		return nil
	}
	return m.inFlight
}
