package gate

import (
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the gate's series. A nil *Metrics records nothing.
type Metrics struct {
	decisions *prometheus.CounterVec
	results   *prometheus.CounterVec
	duration  prometheus.Histogram
	mark      prometheus.Gauge
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		decisions: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_gate_decisions_total",
			Help: "Cloud commands decided by the CommandGate, by code (running, duplicate, refused_*, failed, unsupported).",
		}, []string{"code"})),
		results: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_commands_total",
			Help: "Per-miner results of dispatched cloud commands, by result code.",
		}, []string{"result"})),
		duration: promx.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hashfleet_node_command_duration_seconds",
			Help:    "Time from a command's acceptance to its final result on every miner named.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10),
		})),
		mark: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_seq_high_water_mark",
			Help: "The persisted command seq high-water mark.",
		})),
	}
}

func codeLabel(c pb.ResultCode) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "RESULT_CODE_"))
}

func (m *Metrics) decision(c pb.ResultCode) {
	if m != nil {
		m.decisions.WithLabelValues(codeLabel(c)).Inc()
	}
}

func (m *Metrics) result(c pb.ResultCode) {
	if m != nil {
		m.results.WithLabelValues(codeLabel(c)).Inc()
	}
}

func (m *Metrics) finished(seconds float64) {
	if m != nil {
		m.duration.Observe(seconds)
	}
}

func (m *Metrics) setMark(seq uint64) {
	if m != nil {
		m.mark.Set(float64(seq))
	}
}
