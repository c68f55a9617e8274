package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts actors by kind. Labels are kinds ("miner", "site", "node-session"), never actor ids.
// A nil *Metrics is valid and records nothing.
type Metrics struct {
	alive    *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	mailbox  *prometheus.GaugeVec
	messages *prometheus.CounterVec

	mu     sync.Mutex
	byKind map[string]*kindMetrics
}

type kindMetrics struct {
	alive, mailbox prometheus.Gauge
	messages       prometheus.Counter
}

// NewMetrics registers the actor series on reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		alive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_actors_alive", Help: "Actors currently running, by kind.",
		}, []string{"kind"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_actors_restarts_total", Help: "Supervisor decisions after an actor failure, by kind and outcome (restarted, stopped).",
		}, []string{"kind", "outcome"}),
		mailbox: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hashfleet_actors_mailbox_depth_messages", Help: "Messages waiting in mailboxes, summed by actor kind.",
		}, []string{"kind"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_actors_messages_total", Help: "Messages processed, by actor kind.",
		}, []string{"kind"}),
		byKind: map[string]*kindMetrics{},
	}
	if reg != nil {
		reg.MustRegister(m.alive, m.restarts, m.mailbox, m.messages)
	}
	return m
}

func (m *Metrics) kind(k string) *kindMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	km, ok := m.byKind[k]
	if !ok {
		km = &kindMetrics{alive: m.alive.WithLabelValues(k), mailbox: m.mailbox.WithLabelValues(k), messages: m.messages.WithLabelValues(k)}
		m.byKind[k] = km
	}
	return km
}

func (m *Metrics) restarted(kind, outcome string) {
	if m == nil {
		return
	}
	m.restarts.WithLabelValues(kind, outcome).Inc()
}

// receiverMiddleware keeps the alive gauge and message counter of one kind.
func (m *Metrics) receiverMiddleware(kind string) actor.ReceiverMiddleware {
	km := m.kind(kind)
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			switch env.Message.(type) {
			case *actor.Started:
				km.alive.Inc()
			case *actor.Stopped:
				km.alive.Dec()
			case *actor.Restarting:
				km.alive.Dec() // Started follows the restart
			default:
				km.messages.Inc()
			}
			next(c, env)
		}
	}
}

// mailboxStats tracks mailbox depth of one kind.
type mailboxStats struct{ g prometheus.Gauge }

func (s mailboxStats) MailboxStarted()             {}
func (s mailboxStats) MessagePosted(interface{})   { s.g.Inc() }
func (s mailboxStats) MessageReceived(interface{}) { s.g.Dec() }
func (s mailboxStats) MailboxEmpty()               {}
