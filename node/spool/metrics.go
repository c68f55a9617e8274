package spool

import (
	"sync"

	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a sample or event leaves the spool without the cloud's ack.
const (
	// ReasonDownsampled: raw samples folded into a per-miner minute aggregate (counted as input minus output).
	ReasonDownsampled = "downsampled"
	// ReasonFull: the oldest batches dropped because the spool was at MaxBytes with nothing left to downsample.
	ReasonFull = "full"
	// ReasonRefused: new telemetry refused because events that are never dropped fill the spool.
	ReasonRefused = "refused"
	// ReasonCorrupt: a stored batch that could not be read back (set aside so the stream goes on).
	ReasonCorrupt = "corrupt"
)

type metrics struct {
	droppedSamples *prometheus.CounterVec
	droppedEvents  *prometheus.CounterVec
	depth          *prometheus.GaugeVec
	items          *prometheus.GaugeVec
	bytes          prometheus.Gauge
	age            *ageCollector
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		droppedSamples: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_spool_dropped_samples_total",
			Help: "Telemetry samples the spool let go without the cloud's ack, by reason: downsampled (folded into per-miner minute aggregates), full (oldest dropped at the size bound), refused (new telemetry refused: command log and audit events fill the spool), corrupt (unreadable on disk).",
		}, []string{"reason"})),
		droppedEvents: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_spool_dropped_events_total",
			Help: "Events (never command audit or local command events) the spool dropped at its size bound, by reason.",
		}, []string{"reason"})),
		depth: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_spool_depth_batches",
			Help: "Batches held in the spool until the cloud acks them, by kind (telemetry, events).",
		}, []string{"kind"})),
		items: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_spool_items",
			Help: "Samples or events held in the spool, by kind.",
		}, []string{"kind"})),
		bytes: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_spool_bytes",
			Help: "Bytes the spool holds (batches, keys and meta records; the size bound applies to this).",
		})),
		age: promx.Register(reg, newAgeCollector()),
	}
	for _, r := range []string{ReasonDownsampled, ReasonFull, ReasonRefused, ReasonCorrupt} {
		m.droppedSamples.WithLabelValues(r)
	}
	m.droppedEvents.WithLabelValues(ReasonFull)
	m.droppedEvents.WithLabelValues(ReasonCorrupt)
	return m
}

// ageCollector exports the age of the oldest entry, computed at scrape time. A spool reopened in the same
// process (same registry) re-points the registered collector at itself.
type ageCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	fn   func() (float64, bool)
}

func newAgeCollector() *ageCollector {
	return &ageCollector{desc: prometheus.NewDesc("hashfleet_node_spool_oldest_age_seconds",
		"Age of the oldest batch held in the spool (0 when empty).", nil, nil)}
}

func (c *ageCollector) set(fn func() (float64, bool)) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
}

func (c *ageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *ageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	fn := c.fn
	c.mu.Unlock()
	v := 0.0
	if fn != nil {
		if age, ok := fn(); ok {
			v = age
		}
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v)
}
