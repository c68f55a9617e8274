package automation

import (
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are automation's series. Labels are bounded (rule kind, action name, refusal reason), never a miner
// or rule id. A nil *Metrics records nothing.
type Metrics struct {
	actions  *prometheus.CounterVec
	refusals *prometheus.CounterVec
	version  prometheus.Gauge
	held     prometheus.Gauge
	deferred *prometheus.GaugeVec
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		actions: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_automation_actions_total",
			Help: "Automatic actions taken, by rule kind (overheat, hashrate_drop, unreachable, schedule) and action (curtail, stop, resume, reboot, notify, start_event, stop_event).",
		}, []string{"rule", "action"})),
		refusals: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_automation_policy_refusals_total",
			Help: "Site policies refused, by reason (unsigned, signature, key, malformed, invalid, wrong_site, stale, store).",
		}, []string{"reason"})),
		version: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_automation_policy_version",
			Help: "Version of the installed site policy (0: none).",
		})),
		held: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_automation_overheat_held_miners",
			Help: "Miners an overheat rule holds curtailed or stopped.",
		})),
		deferred: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_automation_reboots_deferred",
			Help: "Reboot candidates not rebooted at the last evaluation, by reason (cap, rate_limit, site_wide).",
		}, []string{"reason"})),
	}
}

func (m *Metrics) action(rule, name string) {
	if m == nil {
		return
	}
	m.actions.WithLabelValues(rule, name).Inc()
}

func (m *Metrics) refused(reason string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(reason).Inc()
}

func (m *Metrics) state(version uint64, st State) {
	if m == nil {
		return
	}
	m.version.Set(float64(version))
	m.held.Set(float64(len(st.Held)))
	m.deferred.WithLabelValues("cap").Set(float64(st.Deferred.Cap))
	m.deferred.WithLabelValues("rate_limit").Set(float64(st.Deferred.RateLimited))
	m.deferred.WithLabelValues("site_wide").Set(float64(st.Deferred.Suppressed))
}
