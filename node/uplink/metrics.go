package uplink

import (
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the uplink's series. A nil *Metrics records nothing.
type Metrics struct {
	up          *prometheus.GaugeVec
	attempts    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	pending     prometheus.Gauge
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		up: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_stream_up",
			Help: "1 while the stream to the cloud is up, by stream (control, telemetry, events, heartbeat).",
		}, []string{"stream"})),
		attempts: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_stream_connects_total",
			Help: "Connection attempts to the cloud gateway, by result (connected, failed).",
		}, []string{"result"})),
		disconnects: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_stream_disconnects_total",
			Help: "Sessions ended, by reason (stream_error, heartbeat, goaway, stalled, stopped).",
		}, []string{"reason"})),
		pending: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_uplink_pending_results_messages",
			Help: "Command acks and results waiting for the link to the cloud.",
		})),
	}
}

func (m *Metrics) setUp(up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	for _, s := range []Stream{StreamControl, StreamTelemetry, StreamEvents, StreamHeartbeat} {
		m.up.WithLabelValues(s.String()).Set(v)
	}
}

func (m *Metrics) attempt(result string) {
	if m != nil {
		m.attempts.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) disconnect(reason string) {
	if m != nil {
		m.disconnects.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) setPending(n int) {
	if m != nil {
		m.pending.Set(float64(n))
	}
}
