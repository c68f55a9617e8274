package localui

import (
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the UI's series. A nil *metrics records nothing.
type metrics struct {
	logins   *prometheus.CounterVec
	commands *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		logins: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_localui_logins_total",
			Help: "Local UI login attempts by result (ok, wrong, locked, no_admin, bad_request).",
		}, []string{"result"})),
		commands: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_localui_commands_total",
			Help: "Local commands submitted through the local UI, by action and result (ok, invalid, refused, error).",
		}, []string{"action", "result"})),
		refused: promx.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hashfleet_localui_refused_requests_total",
			Help: "Requests the local UI refused before handling them, by reason (cloud_credential, csrf, origin, no_session).",
		}, []string{"reason"})),
	}
}

func (m *metrics) login(result string) {
	if m != nil {
		m.logins.WithLabelValues(result).Inc()
	}
}

func (m *metrics) command(action, result string) {
	if m != nil {
		m.commands.WithLabelValues(action, result).Inc()
	}
}

func (m *metrics) refuse(reason string) {
	if m != nil {
		m.refused.WithLabelValues(reason).Inc()
	}
}
