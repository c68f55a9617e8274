package grains

import (
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the fleet's Prometheus series. Labels are bounded: results, kinds and node ids (nodes are
// few), never miner ids. A nil *Metrics records nothing.
type Metrics struct {
	samples        *prometheus.CounterVec
	batches        *prometheus.CounterVec
	events         *prometheus.CounterVec
	issued         prometheus.Counter
	commands       *prometheus.CounterVec
	minerResults   *prometheus.CounterVec
	devices        prometheus.Gauge
	nodesConnected prometheus.Gauge
	queued         *prometheus.GaugeVec
	heartbeat      *heartbeatCollector
}

// NewMetrics registers the fleet's series on reg (nil: not registered). clk computes heartbeat ages at
// scrape time (nil: the wall clock).
func NewMetrics(reg prometheus.Registerer, clk clock.Clock) *Metrics {
	if clk == nil {
		clk = clock.Real()
	}
	m := &Metrics{
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_telemetry_samples_total",
			Help: "Telemetry samples received from nodes, by result (applied, duplicate, stale, unowned, invalid).",
		}, []string{"result"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_ingest_batches_total",
			Help: "Telemetry and event batches received, by stream kind and result (applied, duplicate, failed).",
		}, []string{"kind", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_events_total",
			Help: "Node events received, by result (applied, unowned, unpaired, ignored, invalid).",
		}, []string{"result"}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hashfleet_server_commands_issued_total", Help: "Operator commands accepted for issuance.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_commands_total",
			Help: "Operator commands finished, by overall result (succeeded, failed, timeout).",
		}, []string{"result"}),
		minerResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_command_miner_results_total",
			Help: "Final per-miner command results, by result (succeeded, failed, timeout).",
		}, []string{"result"}),
		devices: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_server_devices", Help: "Devices registered in the org.",
		}),
		nodesConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_server_nodes_connected", Help: "Nodes with a live control stream.",
		}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_server_node_queued_commands", Help: "Commands queued for a node without a final report.",
		}, []string{"node"}),
		heartbeat: &heartbeatCollector{clk: clk, last: map[string]time.Time{}, desc: prometheus.NewDesc(
			"hashfleet_server_node_heartbeat_age_seconds", "Seconds since the node's last heartbeat.", []string{"node"}, nil)},
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.batches, m.events, m.issued, m.commands, m.minerResults, m.devices,
			m.nodesConnected, m.queued, m.heartbeat)
	}
	return m
}

func (m *Metrics) sample(result string, n int) {
	if m != nil && n > 0 {
		m.samples.WithLabelValues(result).Add(float64(n))
	}
}

func (m *Metrics) batch(kind, result string) {
	if m != nil {
		m.batches.WithLabelValues(kind, result).Inc()
	}
}

func (m *Metrics) event(result string, n int) {
	if m != nil && n > 0 {
		m.events.WithLabelValues(result).Add(float64(n))
	}
}

func (m *Metrics) commandIssued() {
	if m != nil {
		m.issued.Inc()
	}
}

func (m *Metrics) commandFinished(result string, perMiner map[string]int) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(result).Inc()
	for r, n := range perMiner {
		m.minerResults.WithLabelValues(r).Add(float64(n))
	}
}

func (m *Metrics) setDevices(n int) {
	if m != nil {
		m.devices.Set(float64(n))
	}
}

func (m *Metrics) nodeConnected(delta int) {
	if m != nil {
		m.nodesConnected.Add(float64(delta))
	}
}

func (m *Metrics) setQueued(node string, n int) {
	if m != nil {
		m.queued.WithLabelValues(node).Set(float64(n))
	}
}

func (m *Metrics) heartbeatAt(node string, at time.Time) {
	if m != nil {
		m.heartbeat.set(node, at)
	}
}

// heartbeatCollector reports each node's heartbeat age at scrape time. Node actors write into it; it is a
// metrics sink, read by nothing but the scraper.
type heartbeatCollector struct {
	clk  clock.Clock
	desc *prometheus.Desc
	mu   sync.Mutex
	last map[string]time.Time
}

func (h *heartbeatCollector) set(node string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last[node] = at
}

func (h *heartbeatCollector) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *heartbeatCollector) Collect(ch chan<- prometheus.Metric) {
	now := h.clk.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for node, at := range h.last {
		ch <- prometheus.MustNewConstMetric(h.desc, prometheus.GaugeValue, now.Sub(at).Seconds(), node)
	}
}

// BatchesCounter is the ingest batch counter of one kind and result (tests, dashboards).
func (m *Metrics) BatchesCounter(kind, result string) prometheus.Counter {
	return m.batches.WithLabelValues(kind, result)
}
