// Package procmetrics forwards a node's own process metrics to the cloud (node --forward-metrics, off by
// default): every Interval the Forwarder actor takes a Snapshot of the node's Prometheus registry (CPU
// seconds, resident memory, goroutines, open file descriptors, miners by state, spool depth) and the Go
// runtime's GC pause histogram, and sends it to the telemetry batcher as an EVENT_KIND_NODE_METRICS event,
// which travels the events stream (and the spool while the cloud is away, shed before anything else). The
// cloud keeps the latest snapshot per node and shows it in GET /api/v1/nodes.
//
// It reads the registry rather than /proc so the figures are the ones the node's own /metrics shows, on every
// platform the Prometheus process collector supports (zero where it reports nothing).
package procmetrics

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultInterval is how often a snapshot is forwarded unless configured otherwise.
const DefaultInterval = 30 * time.Second

// ErrConfig: a forwarder setting that cannot work.
var ErrConfig = errors.New("procmetrics: config")

// gcPauses is the runtime/metrics histogram of stop-the-world GC pauses.
const gcPauses = "/sched/pauses/total/gc:seconds"

// loaded is when this package was initialised: the process start, near enough, where the process collector
// does not report process_start_time_seconds.
var loaded = time.Now()

// Snapshot reads one NodeMetrics from g (the node's registry) and the Go runtime; version is the node's
// software version. A collector that fails costs its figures, not the snapshot.
func Snapshot(g prometheus.Gatherer, now time.Time, version string) *pb.NodeMetrics {
	m := &pb.NodeMetrics{AtUnixMs: now.UnixMilli(), SoftwareVersion: version, GcPauseP99Seconds: gcPauseQuantile(0.99)}
	fams, _ := g.Gather() // partial results on error: take what there is
	spool, outbox, started := false, uint64(0), loaded
	for _, f := range fams {
		switch f.GetName() {
		case "process_start_time_seconds":
			if v := first(f); v > 0 {
				started = time.Unix(0, int64(v*1e9))
			}
		case "process_cpu_seconds_total":
			m.CpuSeconds = first(f)
		case "process_resident_memory_bytes":
			m.ResidentMemoryBytes = uint64(first(f))
		case "process_open_fds":
			m.OpenFds = uint32(first(f))
		case "go_goroutines":
			m.Goroutines = uint32(first(f))
		case "hashfleet_node_miners":
			for _, s := range f.GetMetric() {
				if n := value(s); n > 0 {
					if m.MinersByState == nil {
						m.MinersByState = map[string]uint32{}
					}
					m.MinersByState[label(s, "state")] += uint32(n)
				}
			}
		case "hashfleet_node_spool_items":
			spool = true
			m.SpoolItems = uint64(sum(f))
		case "hashfleet_node_spool_bytes":
			m.SpoolBytes = uint64(sum(f))
		case "hashfleet_node_outbox_items":
			outbox = uint64(sum(f))
		}
	}
	if !spool {
		m.SpoolItems = outbox
	}
	m.UptimeSeconds = max(now.Sub(started).Seconds(), 0)
	return m
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func first(f *dto.MetricFamily) float64 {
	if ms := f.GetMetric(); len(ms) > 0 {
		return value(ms[0])
	}
	return 0
}

func sum(f *dto.MetricFamily) float64 {
	v := 0.0
	for _, m := range f.GetMetric() {
		v += value(m)
	}
	return v
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return strings.ToLower(l.GetValue())
		}
	}
	return ""
}

// gcPauseQuantile estimates quantile q of the GC pauses since the process started (the upper bound of the
// bucket it falls in); 0 before the first GC.
func gcPauseQuantile(q float64) float64 {
	s := []metrics.Sample{{Name: gcPauses}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return 0
	}
	h := s[0].Value.Float64Histogram()
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			hi := h.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = h.Buckets[i]
			}
			return hi
		}
	}
	return 0
}

// Config configures a Forwarder.
type Config struct {
	// NodeID names the node in event ids and logs.
	NodeID string
	// Interval between snapshots. Default DefaultInterval; the first is sent one Interval after start.
	Interval time.Duration
	// Version is the node's software version, carried in each snapshot.
	Version string
}

// Validate reports what cannot work.
func (c Config) Validate() error {
	if c.Interval < 0 {
		return fmt.Errorf("%w: Interval %s is negative", ErrConfig, c.Interval)
	}
	return nil
}

// Env is what a Forwarder is wired to.
type Env struct {
	// Gatherer is the node's registry. Required.
	Gatherer prometheus.Gatherer
	// Sink receives the *pb.Event (the node's telemetry batcher). Required.
	Sink   *actor.PID
	Clock  clock.Clock
	Logger *slog.Logger
}

type tick struct{}

// Props returns the Forwarder's props, counted as kind "metrics-forwarder".
func Props(cfg Config, env Env, am *actors.Metrics) *actor.Props {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return actors.Props("metrics-forwarder", am, func() actor.Actor { return &Forwarder{cfg: cfg, env: env} })
}

// Forwarder sends a NodeMetrics event to its sink every Interval.
type Forwarder struct {
	cfg   Config
	env   Env
	timer clock.Timer
	sent  uint64
}

// Receive handles the ticks.
func (f *Forwarder) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		f.env.Logger.Info("forwarding this node's process metrics to the cloud", slog.String("node", f.cfg.NodeID),
			slog.Duration("every", f.cfg.Interval))
		f.arm(ctx)
	case *actor.Stopping, *actor.Restarting:
		if f.timer != nil {
			f.timer.Stop()
		}
	case *tick:
		now := f.env.Clock.Now()
		m := Snapshot(f.env.Gatherer, now, f.cfg.Version)
		f.sent++
		ctx.Send(f.env.Sink, &pb.Event{EventId: fmt.Sprintf("node-metrics/%s/%d/%d", f.cfg.NodeID, now.UnixMilli(), f.sent),
			Kind: pb.EventKind_EVENT_KIND_NODE_METRICS, AtUnixMs: now.UnixMilli(), NodeMetrics: m})
		f.arm(ctx)
	}
}

func (f *Forwarder) arm(ctx actor.Context) {
	f.timer = actors.SendAfter(f.env.Clock, ctx.ActorSystem(), ctx.Self(), f.cfg.Interval, &tick{})
}
