package cloudcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/server/history"
	"github.com/prometheus/client_golang/prometheus"
)

// HistoryMaintainer is the telemetry history's partition upkeep (server/pgstore.Store): daily partitions
// created ahead, whole old ones dropped. Both must be safe when every member runs them at once.
type HistoryMaintainer interface {
	// CreateHistoryPartitions creates the daily partitions of from through through (UTC days), returning
	// the ones this call created.
	CreateHistoryPartitions(from, through time.Time) ([]string, error)
	// ApplyRetention drops the partitions that end at or before now-keep (and older default-partition
	// rows), returning the ones this call dropped.
	ApplyRetention(now time.Time, keep time.Duration) ([]string, error)
}

// RetentionConfig schedules the telemetry history's partition upkeep on each member.
type RetentionConfig struct {
	// Disabled: this member runs no retention actor (another process keeps the partitions). Default false.
	Disabled bool
	// Interval between runs; the first runs when the member starts. Default 1h: a day's partition exists
	// DaysAhead days before it is needed, so a few missed runs cost nothing.
	Interval time.Duration
	// DaysAhead is how many daily partitions are kept created after today's. Default 2.
	DaysAhead int
	// Keep is how long samples are kept: partitions ending at or before now-Keep are dropped. Default the
	// history's raw retention (server/history.DefaultConfig().RawRetention, 24h).
	Keep time.Duration
	// Metrics records the series (NewRetentionMetrics). Nil records nothing.
	Metrics *RetentionMetrics
}

// DefaultRetentionConfig returns the documented defaults.
func DefaultRetentionConfig() RetentionConfig {
	return RetentionConfig{Interval: time.Hour, DaysAhead: 2, Keep: history.DefaultConfig().RawRetention}
}

func (c RetentionConfig) withDefaults() RetentionConfig {
	d := DefaultRetentionConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.DaysAhead == 0 {
		c.DaysAhead = d.DaysAhead
	}
	if c.Keep == 0 {
		c.Keep = d.Keep
	}
	return c
}

// Validate reports a configuration an operator must fix (after defaults).
func (c RetentionConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("%w: history retention interval %s is under a minute", ErrConfig, c.Interval))
	}
	if c.DaysAhead < 0 || c.DaysAhead > 31 {
		errs = append(errs, fmt.Errorf("%w: history partitions ahead %d must be 0..31 days", ErrConfig, c.DaysAhead))
	}
	if c.Keep < time.Hour {
		errs = append(errs, fmt.Errorf("%w: history retention %s is under an hour", ErrConfig, c.Keep))
	}
	return errors.Join(errs...)
}

// retentionWindow is the pure part of a run: the days whose partitions must exist at now (every day
// still inside the retention, through DaysAhead days after today).
func retentionWindow(now time.Time, c RetentionConfig) (from, through time.Time) {
	return now.Add(-c.Keep).UTC(), now.UTC().AddDate(0, 0, c.DaysAhead)
}

// RetentionStatusRequest asks a RetentionActor for its RetentionStatus.
type RetentionStatusRequest struct{}

// RetentionStatus is what a RetentionActor did so far.
type RetentionStatus struct {
	// Runs counts completed runs, failed or not.
	Runs int
	// LastRun is the business time of the latest run; LastErr its error (nil: it succeeded).
	LastRun time.Time
	LastErr error
	// Created and Dropped are the partitions this actor created and dropped, oldest first.
	Created, Dropped []string
}

type retentionTick struct{}

// RetentionActor keeps the telemetry history's daily partitions: on start and then every Interval of
// business time, it creates the partitions from now-Keep through DaysAhead days ahead and drops those past
// the retention. One runs on every member; the store makes concurrent runs harmless.
type RetentionActor struct {
	cfg   RetentionConfig
	store HistoryMaintainer
	clk   clock.Clock
	log   *slog.Logger

	timer  clock.Timer
	status RetentionStatus
}

// RetentionProps returns the Props of a RetentionActor (cfg after defaults; call Validate first).
func RetentionProps(cfg RetentionConfig, st HistoryMaintainer, clk clock.Clock, log *slog.Logger) *actor.Props {
	cfg = cfg.withDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &RetentionActor{cfg: cfg, store: st, clk: clk, log: log.With(slog.String("component", "history-retention"))}
	})
}

// Receive dispatches each message to its handler.
func (r *RetentionActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Send(ctx.Self(), &retentionTick{})
	case *retentionTick:
		r.onTick(ctx)
	case *RetentionStatusRequest:
		st := r.status
		st.Created, st.Dropped = append([]string(nil), st.Created...), append([]string(nil), st.Dropped...)
		ctx.Respond(&st)
	case *actor.Stopping:
		if r.timer != nil {
			r.timer.Stop()
		}
	case *actor.Stopped, *actor.Restarting:
	default:
		r.log.Warn("history retention: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (r *RetentionActor) onTick(ctx actor.Context) {
	now := r.clk.Now()
	created, dropped, err := r.run(now)
	r.status.Runs++
	r.status.LastRun, r.status.LastErr = now, err
	r.status.Created = append(r.status.Created, created...)
	r.status.Dropped = append(r.status.Dropped, dropped...)
	r.cfg.Metrics.observe(now, len(created), len(dropped), err)
	if err != nil {
		r.log.Error("history retention run failed; retrying next interval", slog.Any("err", err),
			slog.Duration("interval", r.cfg.Interval))
	} else if len(created)+len(dropped) > 0 {
		r.log.Info("history partitions maintained", slog.Any("created", created), slog.Any("dropped", dropped),
			slog.Duration("keep", r.cfg.Keep))
	}
	r.timer = actors.SendAfter(r.clk, ctx.ActorSystem(), ctx.Self(), r.cfg.Interval, &retentionTick{})
}

// run creates first (so a failed drop never leaves today without a partition), then drops.
func (r *RetentionActor) run(now time.Time) (created, dropped []string, err error) {
	from, through := retentionWindow(now, r.cfg)
	created, cerr := r.store.CreateHistoryPartitions(from, through)
	if cerr != nil {
		cerr = fmt.Errorf("create history partitions %s..%s: %w", from.Format(time.DateOnly), through.Format(time.DateOnly), cerr)
	}
	dropped, derr := r.store.ApplyRetention(now, r.cfg.Keep)
	if derr != nil {
		derr = fmt.Errorf("history retention %s: %w", r.cfg.Keep, derr)
	}
	return created, dropped, errors.Join(cerr, derr)
}

// RetentionMetrics are the history-retention series. A nil *RetentionMetrics records nothing.
type RetentionMetrics struct {
	created, dropped, errors prometheus.Counter
	lastRun, lastSuccess     prometheus.Gauge
}

// NewRetentionMetrics registers the series on reg (nil: unregistered). Registering twice on one registry
// reuses the first collectors.
func NewRetentionMetrics(reg prometheus.Registerer) *RetentionMetrics {
	return &RetentionMetrics{
		created: registerCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hashfleet_server_history_partitions_created_total", Help: "Daily telemetry-history partitions this member created.",
		})),
		dropped: registerCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hashfleet_server_history_partitions_dropped_total", Help: "Daily telemetry-history partitions this member dropped past the retention.",
		})),
		errors: registerCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hashfleet_server_history_retention_errors_total", Help: "History retention runs that failed (retried next interval).",
		})),
		lastRun: registerCollector(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_server_history_retention_last_run_timestamp_seconds", Help: "When this member last ran history retention, Unix seconds (business clock).",
		})),
		lastSuccess: registerCollector(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hashfleet_server_history_retention_last_success_timestamp_seconds", Help: "When a history retention run last succeeded on this member, Unix seconds (business clock).",
		})),
	}
}

func (m *RetentionMetrics) observe(now time.Time, created, dropped int, err error) {
	if m == nil {
		return
	}
	m.created.Add(float64(created))
	m.dropped.Add(float64(dropped))
	ts := float64(now.UnixMilli()) / 1000
	m.lastRun.Set(ts)
	if err != nil {
		m.errors.Inc()
		return
	}
	m.lastSuccess.Set(ts)
}

// registerCollector registers c on reg, returning the collector already registered under its name if any.
func registerCollector[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
	}
	return c
}
