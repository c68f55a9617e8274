package curtail

import (
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are curtailment's series. Labels are bounded (phase, state, action, reason, result); never a miner
// or event id. A nil *Metrics records nothing.
type Metrics struct {
	target, measured, reduced, unmet prometheus.Gauge
	achieved                         prometheus.Gauge
	phase, miners                    *prometheus.GaugeVec
	commands, events                 *prometheus.CounterVec
	steps                            prometheus.Counter
}

var (
	phaseLabels = []Phase{PhaseIdle, PhaseScheduled, PhaseCurtailing, PhaseReleasing}
	minerLabels = []string{"curtailed", "pending", "waiting", "releasing", "straggler", "failed"}
)

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		target: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_target_watts",
			Help: "Power ceiling of the curtailment event in progress for its scope (0 when idle or for a full target).",
		})),
		measured: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_measured_watts",
			Help: "Power the curtailment event's scope draws now, as the miners report it.",
		})),
		reduced: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_reduced_watts",
			Help: "Power the curtailment event in progress has shed: its scope's draw before the event minus its draw now.",
		})),
		unmet: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_unmet_watts",
			Help: "Power the target still lacks with no more miners able to be curtailed.",
		})),
		achieved: promx.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_achieved",
			Help: "1 when the curtailment event in progress meets its target within tolerance, else 0.",
		})),
		phase: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_phase",
			Help: "1 for the phase curtailment is in (idle, scheduled, curtailing, releasing), 0 for the others.",
		}, []string{"phase"})),
		miners: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_node_curtail_miners",
			Help: "Miners of the curtailment event by state (curtailed, pending, waiting, releasing, straggler, failed).",
		}, []string{"state"})),
		commands: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_curtail_commands_total",
			Help: "Per-miner curtailment commands, by action (sleep, limit, release) and reason (plan, retry, reverted, release, rebalance).",
		}, []string{"action", "reason"})),
		events: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_node_curtail_events_total",
			Help: "Curtailment event requests and outcomes, by result (started, updated, refused, stopped, completed, cancelled, superseded).",
		}, []string{"result"})),
		steps: promx.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hashfleet_node_curtail_steps_total",
			Help: "Ramp steps commanded.",
		})),
	}
}

func (m *Metrics) event(result string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(result).Inc()
}

func (m *Metrics) actions(as []Action) {
	if m == nil || len(as) == 0 {
		return
	}
	m.steps.Inc()
	for _, a := range as {
		m.commands.WithLabelValues(a.Kind.String(), a.Reason).Inc()
	}
}

func (m *Metrics) status(s Status) {
	if m == nil {
		return
	}
	m.target.Set(s.TargetKW * 1000)
	m.measured.Set(s.MeasuredKW * 1000)
	m.reduced.Set(max(0, s.ReducedKW) * 1000)
	m.unmet.Set(s.UnmetKW * 1000)
	if s.Achieved {
		m.achieved.Set(1)
	} else {
		m.achieved.Set(0)
	}
	for _, p := range phaseLabels {
		v := 0.0
		if p == s.Phase {
			v = 1
		}
		m.phase.WithLabelValues(p.String()).Set(v)
	}
	counts := map[string]int{
		"curtailed": s.MinersCurtailed, "pending": s.MinersPending, "waiting": s.MinersWaiting,
		"releasing": s.MinersReleasing, "straggler": len(s.Stragglers) - len(s.Failed), "failed": len(s.Failed),
	}
	for _, l := range minerLabels {
		m.miners.WithLabelValues(l).Set(float64(counts[l]))
	}
}
