package discovery

import (
	"errors"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are discovery's series. Labels are bounded (probe kind, result, protocol), never an address.
// A nil *Metrics records nothing.
type Metrics struct {
	probes   *prometheus.CounterVec
	scans    *prometheus.CounterVec
	found    *prometheus.CounterVec
	duration prometheus.Histogram
	running  prometheus.Gauge
	targets  prometheus.Gauge
	probed   prometheus.Gauge
}

// NewMetrics registers the series on reg (nil: unregistered). Registering twice on one registry reuses the
// series already there.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		probes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_discovery_probes_total",
			Help: "Discovery probes by kind (cgminer, web) and result (identified, silent, not_miner, hostile).",
		}, []string{"probe", "result"})),
		scans: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_discovery_scans_total",
			Help: "Discovery scans by outcome (done, canceled).",
		}, []string{"result"})),
		found: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_discovery_devices_found_total",
			Help: "Devices discovered, by protocol (a device found by two scans counts twice).",
		}, []string{"protocol"})),
		duration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hashfleet_discovery_scan_duration_seconds",
			Help:    "Wall time of discovery scans.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		})),
		// Progress of the scans running now (a DiscoveryActor's): probed / addresses is how far they are.
		running: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_discovery_running_scans",
			Help: "Discovery scans running now.",
		})),
		targets: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_discovery_scan_addresses",
			Help: "Addresses the running discovery scans cover.",
		})),
		probed: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_discovery_scan_probed_addresses",
			Help: "Addresses the running discovery scans have finished probing (progress: this / hashfleet_discovery_scan_addresses).",
		})),
	}
}

// progress sets the running scans' progress gauges.
func (m *Metrics) progress(running, addresses, probed int) {
	if m == nil {
		return
	}
	m.running.Set(float64(running))
	m.targets.Set(float64(addresses))
	m.probed.Set(float64(probed))
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

func (m *Metrics) probe(kind string, identified bool, err error) {
	if m == nil {
		return
	}
	result := "identified"
	switch {
	case identified:
	case err == nil || errors.Is(err, errSilent):
		result = "silent"
	case errors.Is(err, ErrNotMiner):
		result = "not_miner"
	default:
		result = "hostile"
	}
	m.probes.WithLabelValues(kind, result).Inc()
}

func (m *Metrics) scan(res *Result, took time.Duration) {
	if m == nil {
		return
	}
	outcome := "done"
	if res.Canceled {
		outcome = "canceled"
	}
	m.scans.WithLabelValues(outcome).Inc()
	m.duration.Observe(took.Seconds())
	for _, f := range res.Found {
		m.found.WithLabelValues(protocolLabel(f.Device.GetProtocol())).Inc()
	}
}

// protocolLabel is "cgminer", "antminer" or "proto".
func protocolLabel(p pb.Protocol) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROTOCOL_"))
}
