package grains

import (
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
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
	duration       *prometheus.HistogramVec
	refused        *prometheus.CounterVec
	nodeSampleCnt  *prometheus.CounterVec
	process        *processCollector
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
			"hashfleet_server_node_heartbeat_age_seconds", "Seconds since the node's last heartbeat, or since its control stream attached when that is later.", []string{"node"}, nil)},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hashfleet_server_command_duration_seconds",
			Help:    "Operator command latency from issue to final result on every miner named, by overall result (succeeded, failed, timeout).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_commands_refused_total",
			Help: "Commands a node's CommandGate refused (a final code in its ack), by the node's code (refused_signature, refused_key, refused_seq, refused_node, refused_epoch, refused_ownership, refused_policy, fenced, failed, ...).",
		}, []string{"reason"}),
		nodeSampleCnt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_server_node_telemetry_samples_total",
			Help: "Telemetry samples applied, by the node that sent them (the per-node ingest rate).",
		}, []string{"node"}),
		process: newProcessCollector(clk),
	}
	if reg != nil {
		reg.MustRegister(m.samples, m.batches, m.events, m.issued, m.commands, m.minerResults, m.devices,
			m.nodesConnected, m.queued, m.heartbeat, m.duration, m.refused, m.nodeSampleCnt, m.process)
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

func (m *Metrics) commandFinished(result string, perMiner map[string]int, took time.Duration) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(result).Inc()
	m.duration.WithLabelValues(result).Observe(max(took, 0).Seconds())
	for r, n := range perMiner {
		m.minerResults.WithLabelValues(r).Add(float64(n))
	}
}

func (m *Metrics) commandRefused(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) nodeSamples(node string, n int) {
	if m != nil && n > 0 {
		m.nodeSampleCnt.WithLabelValues(node).Add(float64(n))
	}
}

func (m *Metrics) nodeProcess(node string, nm *pb.NodeMetrics, at time.Time) {
	if m != nil {
		m.process.set(node, nm, at)
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

// processCollector reports each node's latest forwarded process snapshot (node --forward-metrics) at scrape
// time, labelled by node. Node actors write into it; nothing but the scraper reads it.
type processCollector struct {
	clk                                                     clock.Clock
	mu                                                      sync.Mutex
	last                                                    map[string]processSnapshot
	cpu, rss, goroutines, fds, gcP99, spoolItems, age, mnrs *prometheus.Desc
}

type processSnapshot struct {
	m  *pb.NodeMetrics
	at time.Time
}

func newProcessCollector(clk clock.Clock) *processCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append([]string{"node"}, labels...), nil)
	}
	return &processCollector{clk: clk, last: map[string]processSnapshot{},
		cpu:        d("hashfleet_server_node_process_cpu_seconds_total", "CPU seconds the node's process used, as it last forwarded (--forward-metrics)."),
		rss:        d("hashfleet_server_node_process_resident_memory_bytes", "Resident memory of the node's process, as it last forwarded."),
		goroutines: d("hashfleet_server_node_goroutines", "Goroutines of the node's process, as it last forwarded."),
		fds:        d("hashfleet_server_node_process_open_fds", "Open file descriptors of the node's process, as it last forwarded."),
		gcP99:      d("hashfleet_server_node_gc_pause_p99_seconds", "99th percentile GC pause of the node's process since it started, as it last forwarded."),
		spoolItems: d("hashfleet_server_node_spool_items", "Samples and events the node holds for the cloud, as it last forwarded."),
		mnrs:       d("hashfleet_server_node_reported_miners", "Miners the node runs by state, as it last forwarded.", "state"),
		age:        d("hashfleet_server_node_process_snapshot_age_seconds", "Seconds since the node's last forwarded process snapshot arrived."),
	}
}

func (p *processCollector) set(node string, m *pb.NodeMetrics, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[node] = processSnapshot{m: m, at: at}
}

func (p *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{p.cpu, p.rss, p.goroutines, p.fds, p.gcP99, p.spoolItems, p.mnrs, p.age} {
		ch <- d
	}
}

func (p *processCollector) Collect(ch chan<- prometheus.Metric) {
	now := p.clk.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, s := range p.last {
		m := s.m
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{node}, labels...)...)
		}
		ch <- prometheus.MustNewConstMetric(p.cpu, prometheus.CounterValue, m.GetCpuSeconds(), node)
		gauge(p.rss, float64(m.GetResidentMemoryBytes()))
		gauge(p.goroutines, float64(m.GetGoroutines()))
		gauge(p.fds, float64(m.GetOpenFds()))
		gauge(p.gcP99, m.GetGcPauseP99Seconds())
		gauge(p.spoolItems, float64(m.GetSpoolItems()))
		for state, n := range m.GetMinersByState() {
			if knownStateLabel(state) { // a node's map keys become label values: only the bounded set
				gauge(p.mnrs, float64(n), state)
			}
		}
		gauge(p.age, now.Sub(s.at).Seconds())
	}
}

// knownStateLabel reports whether s is a miner state's lower-case name ("mining", "unreachable", ...).
func knownStateLabel(s string) bool {
	for name := range pb.MinerState_value {
		if strings.EqualFold(strings.TrimPrefix(name, "MINER_STATE_"), s) && strings.ToLower(s) == s {
			return true
		}
	}
	return false
}
