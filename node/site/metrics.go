package site

import (
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/promx"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the site's series. A nil *Metrics records nothing.
type Metrics struct {
	miners *prometheus.GaugeVec
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{miners: promx.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hashfleet_node_miners",
		Help: "Miners run by this node, by state (unspecified until the first poll).",
	}, []string{"state"}))}
}

func stateLabel(s pb.MinerState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "MINER_STATE_"))
}

func (m *Metrics) move(from, to pb.MinerState, fromCounted bool) {
	if m == nil {
		return
	}
	if fromCounted {
		m.miners.WithLabelValues(stateLabel(from)).Dec()
	}
	m.miners.WithLabelValues(stateLabel(to)).Inc()
}

func (m *Metrics) drop(s pb.MinerState) {
	if m == nil {
		return
	}
	m.miners.WithLabelValues(stateLabel(s)).Dec()
}
