package actors

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors/clock"
)

// SupervisorConfig bounds how a parent restarts a failing child.
type SupervisorConfig struct {
	// InitialBackoff is the delay before the first restart; each further failure inside Window doubles it.
	// Default 100ms. Zero restarts at once.
	InitialBackoff time.Duration
	// MaxBackoff caps the delay. Default 10s.
	MaxBackoff time.Duration
	// MaxRestarts is how many failures inside Window a child may have before it is stopped for good.
	// Default 10.
	MaxRestarts int
	// Window is the sliding window failures are counted in; a child that stays healthy for Window starts
	// again from InitialBackoff. Default 1 minute.
	Window time.Duration
}

// DefaultSupervisorConfig returns the defaults documented on SupervisorConfig.
func DefaultSupervisorConfig() SupervisorConfig {
	return SupervisorConfig{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, MaxRestarts: 10, Window: time.Minute}
}

// Validate reports a configuration an operator must fix.
func (c SupervisorConfig) Validate() error {
	switch {
	case c.InitialBackoff < 0:
		return fmt.Errorf("supervisor: initial backoff %s is negative", c.InitialBackoff)
	case c.MaxBackoff < c.InitialBackoff:
		return fmt.Errorf("supervisor: max backoff %s is below initial backoff %s", c.MaxBackoff, c.InitialBackoff)
	case c.MaxRestarts < 1:
		return fmt.Errorf("supervisor: max restarts %d must be at least 1", c.MaxRestarts)
	case c.Window <= 0:
		return fmt.Errorf("supervisor: window %s must be positive", c.Window)
	}
	return nil
}

// Backoff is the pure restart decision: given how many failures the child had inside the window (this one
// included), whether to restart and after how long.
func (c SupervisorConfig) Backoff(failuresInWindow int) (restart bool, delay time.Duration) {
	if failuresInWindow > c.MaxRestarts {
		return false, 0
	}
	delay = c.InitialBackoff
	for i := 1; i < failuresInWindow && delay < c.MaxBackoff; i++ {
		delay *= 2
	}
	return true, min(delay, c.MaxBackoff)
}

// NewSupervisor returns a one-for-one strategy: only the failing child is restarted, after Backoff, on clk.
// kind labels the children in metrics and logs ("miner", "node").
func NewSupervisor(cfg SupervisorConfig, clk clock.Clock, m *Metrics, kind string) actor.SupervisorStrategy {
	return &backoffSupervisor{cfg: cfg, clk: clk, metrics: m, kind: kind}
}

type backoffSupervisor struct {
	cfg     SupervisorConfig
	clk     clock.Clock
	metrics *Metrics
	kind    string
}

func (s *backoffSupervisor) HandleFailure(system *actor.ActorSystem, sup actor.Supervisor, child *actor.PID,
	rs *actor.RestartStatistics, reason interface{}, _ interface{}) {
	rs.Fail()
	restart, delay := s.cfg.Backoff(rs.NumberOfFailures(s.cfg.Window))
	log := system.Logger().With(slog.String("kind", s.kind), slog.String("actor", child.Id), slog.Any("reason", reason))
	if !restart {
		log.Error("actor failed too often, stopping it", slog.Int("max_restarts", s.cfg.MaxRestarts), slog.Duration("window", s.cfg.Window))
		s.metrics.restarted(s.kind, "stopped")
		publish(system, child, reason, actor.StopDirective)
		sup.StopChildren(child)
		return
	}
	log.Warn("actor failed, restarting", slog.Duration("after", delay))
	s.metrics.restarted(s.kind, "restarted")
	publish(system, child, reason, actor.RestartDirective)
	if delay == 0 {
		sup.RestartChildren(child)
		return
	}
	s.clk.AfterFunc(delay, func() { sup.RestartChildren(child) })
}

func publish(system *actor.ActorSystem, child *actor.PID, reason interface{}, d actor.Directive) {
	system.EventStream.Publish(&actor.SupervisorEvent{Child: child, Reason: reason, Directive: d})
}
