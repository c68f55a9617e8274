package cloudcluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// CommandSweeper runs on every member: every period (business clock) it asks the shared store for orgs
// with a command still open past its deadline and wakes their Org grains (ClusterOrgWake), which resume
// the org's unfinished commands and time out their stragglers. An Org grain's own deadline timer dies with
// its member; this makes the deadline hold without waiting for the next request to the org. Every member
// sweeping is redundant on purpose: waking a grain twice is harmless, and no member is special.
type CommandSweeper struct {
	env    *env
	period time.Duration
	timer  clock.Timer
}

// sweepTick: time to look for overdue commands.
type sweepTick struct{}

// sweepPeriod is how often members look for overdue commands: half the command timeout, within [1s, 30s].
func sweepPeriod(commandTimeout time.Duration) time.Duration {
	return min(max(commandTimeout/2, time.Second), 30*time.Second)
}

func newCommandSweeper(e *env) actor.Actor {
	return &CommandSweeper{env: e, period: sweepPeriod(e.cfg.CommandTimeout)}
}

// Receive dispatches each message to its handler.
func (s *CommandSweeper) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.schedule(ctx)
	case *sweepTick:
		s.onTick(ctx)
	case *actor.Stopping:
		if s.timer != nil {
			s.timer.Stop()
		}
	case *actor.Stopped, *actor.Restarting:
	default:
		s.env.log.Warn("command sweeper: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (s *CommandSweeper) schedule(ctx actor.Context) {
	s.timer = actors.SendAfter(s.env.cfg.Clock, ctx.ActorSystem(), ctx.Self(), s.period, &sweepTick{})
}

func (s *CommandSweeper) onTick(ctx actor.Context) {
	defer s.schedule(ctx)
	now := s.env.cfg.Clock.Now()
	orgs, err := s.env.commands.OverdueOrgs(now)
	if err != nil {
		s.env.log.Error("command sweeper: load overdue orgs", slog.Any("err", err))
		return
	}
	for _, org := range orgs {
		s.env.caller.Go(call{identity: org, kind: KindOrg, msg: &pb.ClusterOrgWake{OrgId: org}, until: now.Add(s.period)})
	}
	if len(orgs) > 0 {
		s.env.log.Debug("woke org grains with overdue commands", slog.Int("orgs", len(orgs)))
	}
}
