package gateway

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the gateway's series. A nil *Metrics records nothing.
type Metrics struct {
	streams  *prometheus.GaugeVec
	rejected *prometheus.CounterVec
	goaways  *prometheus.CounterVec
}

// NewMetrics registers the gateway's series on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_server_streams_connected",
			Help: "Node streams open on the gateway, by kind (control, telemetry, events, heartbeat).",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_gateway_rejected_total",
			Help: "Streams and frames the gateway refused, by kind and reason (unauthenticated, client_cert, malformed, too_large, protocol, draining, slow).",
		}, []string{"kind", "reason"}),
		goaways: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_goaways_total",
			Help: "ControlGoaway frames sent, by reason (drain, replaced, restart, slow).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.rejected, m.goaways)
	}
	return m
}

func (m *Metrics) stream(kind string, delta float64) {
	if m != nil {
		m.streams.WithLabelValues(kind).Add(delta)
	}
}

func (m *Metrics) reject(kind, reason string) {
	if m != nil {
		m.rejected.WithLabelValues(kind, reason).Inc()
	}
}

func (m *Metrics) goaway(reason string) {
	if m != nil {
		m.goaways.WithLabelValues(reason).Inc()
	}
}
