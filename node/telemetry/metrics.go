package telemetry

import (
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the batcher's series. A nil *Metrics records nothing.
type Metrics struct {
	batches *prometheus.CounterVec
	backlog *prometheus.GaugeVec
	dropped *prometheus.CounterVec
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		batches: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_upload_batches_total",
			Help: "Upload batches by kind (telemetry, events) and outcome (created, sent, acked, refused, dropped).",
		}, []string{"kind", "outcome"})),
		backlog: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_outbox_items",
			Help: "Samples or events held unacked in the outbox, by kind.",
		}, []string{"kind"})),
		dropped: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_outbox_dropped_items_total",
			Help: "Samples or events dropped because the outbox was full, by kind.",
		}, []string{"kind"})),
	}
}

func (m *Metrics) batch(k Kind, outcome string) {
	if m != nil {
		m.batches.WithLabelValues(k.String(), outcome).Inc()
	}
}

func (m *Metrics) setBacklog(k Kind, items int) {
	if m != nil {
		m.backlog.WithLabelValues(k.String()).Set(float64(items))
	}
}

func (m *Metrics) drop(k Kind, items int) {
	if m != nil {
		m.dropped.WithLabelValues(k.String()).Add(float64(items))
	}
}
