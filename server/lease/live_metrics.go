package lease

import (
	"maps"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// liveSeries are the series whose value is an age or a remaining time: they are computed at scrape time
// from what the LeaseActors last recorded, on the metrics' clock, so they move between decisions.
//
//	hashfleet_server_lease_expires_in_seconds{pair}          ExpiresAt − now (negative once expired; 0 when nobody holds it)
//	hashfleet_server_lease_heartbeat_age_seconds{pair,node}  now − when the cloud last heard the member
type liveSeries struct {
	expiresIn *prometheus.Desc
	hbAge     *prometheus.Desc

	mu    sync.Mutex
	clk   clock.Clock
	pairs map[string]livePair
}

type livePair struct {
	expiresAt time.Time
	heard     map[string]time.Time
}

func newLiveSeries() *liveSeries {
	return &liveSeries{
		expiresIn: prometheus.NewDesc("hashfleet_server_lease_expires_in_seconds",
			"Seconds until each pair's lease expires on the cloud clock (negative: expired; 0: nobody holds it).", []string{"pair"}, nil),
		hbAge: prometheus.NewDesc("hashfleet_server_lease_heartbeat_age_seconds",
			"Seconds since the cloud last heard each pair member (a heartbeat or a lease request).", []string{"pair", "node"}, nil),
		clk:   clock.Real(),
		pairs: map[string]livePair{},
	}
}

// Describe implements prometheus.Collector.
func (l *liveSeries) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.expiresIn
	ch <- l.hbAge
}

// Collect implements prometheus.Collector.
func (l *liveSeries) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.Now()
	for pair, p := range l.pairs {
		in := 0.0
		if !p.expiresAt.IsZero() {
			in = p.expiresAt.Sub(now).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(l.expiresIn, prometheus.GaugeValue, in, pair)
		for node, at := range p.heard {
			ch <- prometheus.MustNewConstMetric(l.hbAge, prometheus.GaugeValue, max(now.Sub(at).Seconds(), 0), pair, node)
		}
	}
}

func (l *liveSeries) observe(s State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	exp := s.ExpiresAt
	if s.Holder == "" {
		exp = time.Time{}
	}
	l.pairs[s.PairID] = livePair{expiresAt: exp, heard: maps.Clone(s.LastHeartbeat)}
}

// SetClock makes the age and remaining-time series read clk (the LeaseActors' clock). Default the wall clock.
func (m *Metrics) SetClock(clk clock.Clock) {
	if m == nil || clk == nil {
		return
	}
	m.live.mu.Lock()
	m.live.clk = clk
	m.live.mu.Unlock()
}

// Forget drops a pair's series (the pair was deleted).
func (m *Metrics) Forget(pair string) {
	if m == nil {
		return
	}
	m.live.mu.Lock()
	delete(m.live.pairs, pair)
	m.live.mu.Unlock()
	m.epoch.DeleteLabelValues(pair)
	m.expiry.DeleteLabelValues(pair)
	m.mu.Lock()
	if h, ok := m.holders[pair]; ok {
		m.holder.DeleteLabelValues(pair, h)
		delete(m.holders, pair)
	}
	m.mu.Unlock()
}

func (m *Metrics) observe(s State) {
	if m != nil {
		m.live.observe(s)
	}
}
