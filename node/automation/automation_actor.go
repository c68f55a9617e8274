package automation

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/hashfleet/hashfleet/node/miner"
)

// Env is what the AutomationActor is wired to.
type Env struct {
	// Commander sends rule commands to miners (required): the same one the CurtailActor uses.
	Commander curtail.Commander
	// Snapshots gives the site's miners (required): the same Board the CurtailActor reads.
	Snapshots curtail.Snapshots
	// Curtail is the CurtailActor that schedules start and stop events on; nil: schedules are audited but
	// nothing is curtailed (logged).
	Curtail *actor.PID
	// Auditor records every automatic action (required).
	Auditor Auditor
	// Store keeps the installed policy; nil keeps it in memory only.
	Store PolicyStore
	// Keys is the node's trust store of org command keys (*signing.Keyring), required to install policies.
	Keys KeySource
	// PoolGuard, when set, is updated with each installed policy's trusted pools, for the CommandGate.
	PoolGuard *PoolGuard
	// Active, when set, says whether this node may act on miners now (a warm-standby pair's lease holder):
	// while it says no, rules are not evaluated (the holder runs them). Nil: always active.
	Active       func() bool
	Clock        clock.Clock
	Metrics      *Metrics
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// holder keeps the policy and state across restarts of the actor; transitions are assigned whole.
type holder struct {
	loaded  bool
	policy  *Policy
	signed  *SignedPolicy
	loadErr string
	st      State
}

// Props returns the AutomationActor's props (kind "automation").
func Props(cfg Config, env Env) *actor.Props {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	h := &holder{st: NewState(cfg)}
	return actors.Props("automation", env.ActorMetrics, func() actor.Actor {
		return &Actor{cfg: cfg, env: env, h: h, log: env.Logger.With(slog.String("node", cfg.NodeID))}
	})
}

// Actor is the AutomationActor: it loads the signed site policy from the node's store, installs newer ones,
// evaluates the rules on ticks of the injected clock (and exactly at schedule boundaries), and performs and
// audits what Evaluate returns. It needs no cloud.
type Actor struct {
	cfg   Config
	env   Env
	h     *holder
	log   *slog.Logger
	timer clock.Timer
	gen   uint64
}

// Receive dispatches each message to its handler.
func (a *Actor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted(ctx)
	case tick:
		a.onTick(ctx, msg)
	case *InstallPolicy:
		a.onInstall(ctx, msg)
	case *StatusRequest:
		ctx.Respond(a.status())
	case *curtail.EventReply:
		a.onEventReply(msg)
	case *miner.Result:
		a.onResult(msg)
	case *actor.Stopping, *actor.Restarting:
		a.stopTimer()
	case *actor.Stopped:
	default:
		a.log.Warn("automation actor: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (a *Actor) onStarted(ctx actor.Context) {
	if !a.h.loaded {
		a.h.loaded = true
		a.load()
	}
	a.evaluate(ctx)
	a.schedule(ctx)
}

// load installs the policy kept in the store, re-verified (a tampered store installs nothing).
func (a *Actor) load() {
	if a.env.Store == nil {
		return
	}
	sp, err := a.env.Store.LoadPolicy()
	if err == nil && sp == nil {
		return
	}
	var p Policy
	if err == nil {
		p, err = VerifyStoredPolicy(sp, a.env.Keys, a.cfg.Site)
	}
	if err != nil {
		a.h.loadErr = err.Error()
		a.env.Metrics.refused(refusalReason(err))
		a.log.Error("stored site policy not loaded: automation runs without one until the cloud sends it again", slog.Any("error", err))
		return
	}
	a.install(p, sp, "store")
}

func (a *Actor) install(p Policy, sp *SignedPolicy, source string) {
	a.h.policy, a.h.signed, a.h.loadErr = &p, sp, ""
	a.env.PoolGuard.set(p.Version, p.TrustedPools)
	a.env.Metrics.state(p.Version, a.h.st)
	a.log.Info("site policy installed", slog.Uint64("version", p.Version), slog.String("site", p.Site), slog.String("source", source),
		slog.Int("overheat_rules", len(p.Rules.Overheat)), slog.Int("hashrate_rules", len(p.Rules.HashrateDrop)),
		slog.Int("unreachable_rules", len(p.Rules.Unreachable)), slog.Int("schedules", len(p.Schedules)),
		slog.Int("trusted_pools", len(p.TrustedPools.Patterns())))
}

func (a *Actor) onInstall(ctx actor.Context, m *InstallPolicy) {
	reply := func(r *InstallReply) {
		if r.Err != nil {
			a.env.Metrics.refused(refusalReason(r.Err))
			a.log.Warn("site policy refused", slog.String("source", m.Source), slog.Any("error", r.Err))
		}
		ctx.Respond(r)
	}
	p, err := VerifyPolicy(m.Signed, a.env.Keys, a.cfg.Site, a.env.Clock.Now())
	if err != nil {
		reply(&InstallReply{Err: err})
		return
	}
	if cur := a.h.policy; cur != nil && cur.Version == p.Version && bytes.Equal(a.h.signed.Body, m.Signed.Body) {
		ctx.Respond(&InstallReply{Version: p.Version, Unchanged: true})
		return
	}
	if err := Replaces(a.h.policy, p); err != nil {
		reply(&InstallReply{Version: p.Version, Err: err})
		return
	}
	if a.env.Store != nil {
		if err := a.env.Store.SavePolicy(m.Signed); err != nil {
			reply(&InstallReply{Version: p.Version, Err: fmt.Errorf("store policy v%d: %w", p.Version, err)})
			return
		}
	}
	a.install(p, m.Signed, m.Source)
	a.evaluate(ctx)
	a.schedule(ctx)
	ctx.Respond(&InstallReply{Version: p.Version})
}

func refusalReason(err error) string {
	switch {
	case errors.Is(err, ErrUnsignedPolicy):
		return "unsigned"
	case errors.Is(err, ErrBadPolicySignature):
		return "signature"
	case errors.Is(err, ErrPolicyKey):
		return "key"
	case errors.Is(err, ErrMalformedPolicy):
		return "malformed"
	case errors.Is(err, ErrInvalidPolicy):
		return "invalid"
	case errors.Is(err, ErrWrongSite):
		return "wrong_site"
	case errors.Is(err, ErrStalePolicy):
		return "stale"
	}
	return "store"
}

func (a *Actor) schedule(ctx actor.Context) {
	a.stopTimer()
	a.gen++
	d := a.cfg.TickInterval
	if p := a.h.policy; p != nil {
		now := a.env.Clock.Now()
		if next, ok := NextScheduleChange(*p, now); ok && next.Sub(now) < d {
			d = next.Sub(now) // wake exactly at the boundary
		}
	}
	a.timer = actors.SendAfter(a.env.Clock, ctx.ActorSystem(), ctx.Self(), d, tick{gen: a.gen})
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
	a.evaluate(ctx)
	a.schedule(ctx)
}

// evaluate runs the rules once and performs what they decide.
func (a *Actor) evaluate(ctx actor.Context) {
	p := a.h.policy
	if p == nil || (a.env.Active != nil && !a.env.Active()) {
		return
	}
	now := a.env.Clock.Now()
	actions, next := Evaluate(*p, a.h.st, Observations{Miners: a.env.Snapshots.Snapshots()}, now)
	a.h.st = next
	for _, act := range actions {
		a.perform(ctx, act)
		rec := AuditRecord(a.cfg.NodeID, act, now)
		if a.env.Auditor != nil {
			a.env.Auditor.Audit(rec)
		}
		a.env.Metrics.action(act.RuleKind, act.Name)
		a.log.Info("automation rule fired", slog.String("rule", act.RuleID), slog.String("kind", act.RuleKind),
			slog.String("action", act.Name), slog.Any("miners", act.MinerIDs), slog.String("message", act.Message))
	}
	a.env.Metrics.state(p.Version, next)
}

func (a *Actor) perform(ctx actor.Context, act Action) {
	switch act.Kind {
	case ActCommand:
		a.env.Commander.Dispatch(curtail.Command{CommandID: act.ID, IdempotencyKey: act.ID, Actor: "automation:" + act.RuleID,
			MinerIDs: act.MinerIDs, Spec: act.Spec}, ctx.Self())
	case ActStartEvent:
		if a.env.Curtail == nil {
			a.log.Warn("schedule fired but no curtailment actor is wired", slog.String("event", act.Event.ID))
			return
		}
		ctx.Request(a.env.Curtail, &curtail.StartEvent{Event: act.Event})
	case ActStopEvent:
		if a.env.Curtail == nil {
			return
		}
		ctx.Request(a.env.Curtail, &curtail.StopEvent{EventID: act.EventID, Reason: act.Message})
	}
}

func (a *Actor) onEventReply(r *curtail.EventReply) {
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, curtail.ErrUnknownEvent):
		// The event ended by its own end time, or an operator replaced it: nothing to stop.
		a.log.Debug("schedule stop: event already over", slog.String("event", r.EventID))
	default:
		a.log.Warn("curtailment event request failed", slog.String("event", r.EventID), slog.Any("error", r.Err))
	}
}

func (a *Actor) onResult(r *miner.Result) {
	res := r.Result
	if res == nil {
		return
	}
	switch res.GetCode() {
	case pb.ResultCode_RESULT_CODE_SUCCEEDED, pb.ResultCode_RESULT_CODE_DUPLICATE, pb.ResultCode_RESULT_CODE_PENDING,
		pb.ResultCode_RESULT_CODE_RUNNING:
	default:
		a.log.Warn("automation command failed on miner", slog.String("command", r.CommandID), slog.String("miner", res.GetMinerId()),
			slog.String("code", res.GetCode().String()), slog.String("error", res.GetMessage()))
	}
}

func (a *Actor) status() Status {
	s := Status{PolicyError: a.h.loadErr, Deferred: a.h.st.Deferred, Site: a.cfg.Site}
	if p := a.h.policy; p != nil {
		s.PolicyVersion, s.Site, s.TrustedPools = p.Version, p.Site, p.TrustedPools.Patterns()
	}
	for id := range a.h.st.Held {
		s.Held = append(s.Held, id)
	}
	for id := range a.h.st.Rebooting {
		s.Rebooting = append(s.Rebooting, id)
	}
	slices.Sort(s.Held)
	slices.Sort(s.Rebooting)
	if a.h.st.Schedule != nil {
		as := *a.h.st.Schedule
		s.Schedule = &as
	}
	return s
}
