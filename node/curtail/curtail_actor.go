package curtail

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node/miner"
)

// Env is what the CurtailActor is wired to.
type Env struct {
	NodeID string
	// Commander sends the commands (required).
	Commander Commander
	// Snapshots gives the site's miners (required).
	Snapshots Snapshots
	Clock     clock.Clock
	// Initial is a state restored from the node's store (nil: idle).
	Initial *State
	// Persist, when set, is called with the state after every start, stop, ramp step and phase change, for
	// the node to keep in its store so a restarted node resumes the event. It must not block for long.
	Persist func(State)
	// OnStatus, when set, is called with the status after every start, stop and reconcile (every tick while
	// an event runs), for the node to report it to the cloud and the local UI. It must not block.
	OnStatus func(Status)
	// Active, when set, says whether this node may command miners now (a warm-standby pair's lease holder):
	// while it says no, events are accepted and kept but nothing is reconciled or commanded, so the standby
	// of a pair holds the same event and takes it over when promoted. Nil: always active.
	Active       func() bool
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// holder keeps the state across restarts of the actor (a panic in a handler restarts it with the last state
// a handler completed, never a half-updated one: transitions are pure and assigned whole).
type holder struct{ st State }

// Props returns the CurtailActor's props (kind "curtail").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	h := &holder{st: NewState(cfg)}
	if env.Initial != nil {
		h.st = env.Initial.clone()
	}
	return actors.Props("curtail", env.ActorMetrics, func() actor.Actor {
		return &Actor{cfg: cfg, env: env, h: h, log: env.Logger.With(slog.String("node", env.NodeID))}
	})
}

// Actor is the CurtailActor: it gathers snapshots and command results, calls the pure Begin / End /
// Reconcile, and sends the commands they return. It ticks on the injected clock.
type Actor struct {
	cfg     Config
	env     Env
	h       *holder
	log     *slog.Logger
	timer   clock.Timer
	gen     uint64
	results []Result
	ticks   uint64
}

// Receive dispatches each message to its handler.
func (a *Actor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted(ctx)
	case tick:
		a.onTick(ctx, msg)
	case *StartEvent:
		a.onStart(ctx, msg)
	case *StopEvent:
		a.onStop(ctx, msg)
	case *StatusRequest:
		ctx.Respond(a.h.st.Status())
	case *miner.Result:
		a.onResult(msg)
	case *actor.Stopping, *actor.Restarting:
		a.stopTimer()
	case *actor.Stopped:
	default:
		a.log.Warn("curtail actor: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *Actor) onStarted(ctx actor.Context) {
	a.env.Metrics.status(a.h.st.Status())
	a.schedule(ctx)
}

func (a *Actor) schedule(ctx actor.Context) {
	a.stopTimer()
	a.gen++
	a.timer = actors.SendAfter(a.env.Clock, ctx.ActorSystem(), ctx.Self(), a.cfg.TickInterval, tick{gen: a.gen})
}

func (a *Actor) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
}

func (a *Actor) onTick(ctx actor.Context, t tick) {
	if t.gen != a.gen {
		return
	}
	a.timer = nil
	a.ticks++
	a.reconcile(ctx)
	a.schedule(ctx)
}

// reconcile runs one Reconcile with fresh snapshots and the results gathered since the last one.
func (a *Actor) reconcile(ctx actor.Context) {
	prev := a.h.st
	if prev.Phase == PhaseIdle || (a.env.Active != nil && !a.env.Active()) {
		a.results = nil
		return
	}
	obs := Observations{Miners: a.env.Snapshots.Snapshots(), Results: a.results}
	a.results = nil
	actions, next := Reconcile(prev, obs, a.env.Clock.Now())
	a.h.st = next
	a.send(ctx, next, actions)
	a.after(prev, next, len(actions) > 0)
}

func (a *Actor) send(ctx actor.Context, st State, actions []Action) {
	if len(actions) == 0 {
		return
	}
	for _, c := range Commands("curtail:"+st.Event.ID, actions) {
		a.env.Commander.Dispatch(c, ctx.Self())
	}
	a.env.Metrics.actions(actions)
	down, up := 0.0, 0.0
	for _, x := range actions {
		if x.DeltaW < 0 {
			down -= x.DeltaW
		} else {
			up += x.DeltaW
		}
	}
	a.log.Info("curtailment ramp step", slog.String("event", st.Event.ID), slog.Int("step", actions[0].Step),
		slog.Int("miners", len(actions)), slog.Float64("down_kw", down/1000), slog.Float64("up_kw", up/1000))
}

// after reports what changed between two states: metrics always, logs and persistence on changes.
func (a *Actor) after(prev, next State, stepped bool) {
	s := next.Status()
	a.env.Metrics.status(s)
	if a.env.OnStatus != nil {
		a.env.OnStatus(s)
	}
	if next.Last != prev.Last && next.Last != nil {
		o := next.Last
		a.env.Metrics.event(o.Result)
		a.log.Info("curtailment event over", slog.String("event", o.EventID), slog.String("result", o.Result),
			slog.String("reason", o.Reason), slog.Int("released", o.Released), slog.Any("not_released", o.NotReleased))
	}
	if next.Phase != prev.Phase {
		a.log.Info("curtailment phase", slog.String("event", next.Event.ID), slog.String("from", prev.Phase.String()),
			slog.String("to", next.Phase.String()))
	}
	if next.Achieved && !prev.Achieved {
		a.log.Info("curtailment target met", slog.String("event", next.Event.ID), slog.Float64("target_kw", s.TargetKW),
			slog.Float64("measured_kw", s.MeasuredKW), slog.Int("curtailed", s.MinersCurtailed))
	}
	if a.env.Persist != nil && (stepped || next.Phase != prev.Phase || next.Last != prev.Last || next.Event.ID != prev.Event.ID) {
		a.env.Persist(next.clone())
	}
}

func (a *Actor) onStart(ctx actor.Context, m *StartEvent) {
	prev := a.h.st
	next, err := Begin(prev, m.Event, a.env.Clock.Now())
	if err != nil {
		a.env.Metrics.event("refused")
		a.log.Warn("curtailment event refused", slog.String("event", m.Event.ID), slog.Any("error", err))
		ctx.Respond(&EventReply{EventID: m.Event.ID, Err: err, Status: prev.Status()})
		return
	}
	switch {
	case prev.Phase != PhaseIdle && prev.Event.sameRun(next.Event) && prev.Phase == next.Phase:
		// a re-sent start: nothing changes
	case prev.Phase != PhaseIdle && prev.Event.ID == m.Event.ID:
		a.env.Metrics.event("updated")
	default:
		a.env.Metrics.event("started")
		a.log.Info("curtailment event accepted", slog.String("event", m.Event.ID), slog.String("target", m.Event.Target.String()),
			slog.String("mode", m.Event.Mode.String()), slog.String("source", m.Event.Source))
	}
	a.h.st = next
	a.after(prev, next, false)
	a.reconcile(ctx)
	ctx.Respond(&EventReply{EventID: m.Event.ID, Status: a.h.st.Status()})
}

func (a *Actor) onStop(ctx actor.Context, m *StopEvent) {
	prev := a.h.st
	next, err := End(prev, m.EventID, m.Reason, a.env.Clock.Now())
	if err != nil {
		ctx.Respond(&EventReply{EventID: m.EventID, Err: err, Status: prev.Status()})
		return
	}
	if prev.Phase != next.Phase {
		a.env.Metrics.event("stopped")
		a.log.Info("curtailment event stopped", slog.String("event", m.EventID), slog.String("reason", m.Reason))
	}
	a.h.st = next
	a.after(prev, next, false)
	a.reconcile(ctx)
	ctx.Respond(&EventReply{EventID: m.EventID, Status: a.h.st.Status()})
}

func (a *Actor) onResult(r *miner.Result) {
	res := r.Result
	if res == nil {
		return
	}
	if failed(res.GetCode()) {
		a.log.Warn("curtailment command failed on miner", slog.String("command", r.CommandID), slog.String("miner", res.GetMinerId()),
			slog.String("code", res.GetCode().String()), slog.String("error", res.GetMessage()))
	}
	if len(a.results) >= 100_000 { // a runaway sender must not grow the actor without bound
		return
	}
	a.results = append(a.results, Result{CommandID: r.CommandID, MinerID: res.GetMinerId(), Code: res.GetCode(), Message: res.GetMessage()})
}
