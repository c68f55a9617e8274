package history

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Sample results, the label of hashfleet_history_samples_total.
const (
	resWritten   = "written"
	resExpired   = "expired"
	resLate      = "late"
	resDuplicate = "duplicate"
	resInvalid   = "invalid"
)

type metrics struct {
	samples *prometheus.CounterVec
	closed  *prometheus.CounterVec
	append  prometheus.Histogram
	miners  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		samples: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_history_samples_total",
			Help: "Telemetry samples offered to the history, by result: written (raw and rollups), expired (older than the raw retention: rollups only), late (raw only: the minute was closed), duplicate, invalid.",
		}, []string{"result"})),
		closed: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_history_buckets_closed_total",
			Help: "Per-miner rollup buckets closed and written, by resolution (1m, 1h).",
		}, []string{"resolution"})),
		append: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hashfleet_history_append_duration_seconds",
			Help:    "Time to apply one Append (one WriteBatch), including its Badger flush.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		})),
		miners: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_history_miners",
			Help: "Miners the history holds open rollups or a recent sample for.",
		})),
	}
}

func (m *metrics) result(r AppendResult) {
	for res, n := range map[string]int{resWritten: r.Written, resExpired: r.Expired, resLate: r.Late,
		resDuplicate: r.Duplicate, resInvalid: r.Invalid} {
		if n > 0 {
			m.samples.WithLabelValues(res).Add(float64(n))
		}
	}
}

// register registers c on reg, or returns the identical collector registered earlier (two Histories on one
// registry in a test process). A nil reg registers nothing.
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
