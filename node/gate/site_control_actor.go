package gate

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/hashfleet/hashfleet/node/miner"
)

// SiteControlEnv is what the SiteControl actor is wired to.
type SiteControlEnv struct {
	// Automation installs site policies (the AutomationActor); nil answers UNSUPPORTED.
	Automation *actor.PID
	// Curtail starts and stops curtailment events (the CurtailActor); nil answers UNSUPPORTED.
	Curtail *actor.PID
	// Timeout bounds the wait for either (default 10s).
	Timeout      time.Duration
	Clock        clock.Clock
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
}

// SiteControlProps returns the SiteControl actor's props (kind "site-control"): it runs the gate's verified
// site-policy and curtailment commands on the AutomationActor and the CurtailActor and answers the gate one
// *miner.Result per command: SUCCEEDED, or FAILED with the reason (a policy whose own signature does not
// verify, a stale version, an invalid event). It never blocks: each request's answer re-enters the actor.
func SiteControlProps(env SiteControlEnv) *actor.Props {
	if env.Timeout <= 0 {
		env.Timeout = 10 * time.Second
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return actors.Props("site-control", env.ActorMetrics, func() actor.Actor { return &SiteControl{env: env} })
}

// SiteControl is the SiteControl actor.
type SiteControl struct{ env SiteControlEnv }

// Receive dispatches each message to its handler.
func (s *SiteControl) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *ControlDispatch:
		s.onDispatch(ctx, msg)
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	default:
		s.env.Logger.Warn("site control: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (s *SiteControl) onDispatch(ctx actor.Context, d *ControlDispatch) {
	replyTo := ctx.Sender()
	started := s.env.Clock.Now()
	id := SitePolicyResultID
	if len(d.IDs) > 0 {
		id = d.IDs[0]
	}
	answer := func(code pb.ResultCode, msg string) {
		if replyTo == nil {
			return
		}
		ctx.Send(replyTo, &miner.Result{CommandID: d.CommandID, Result: &pb.MinerResult{MinerId: id, Code: code, Message: msg,
			StartedAtUnixMs: started.UnixMilli(), FinishedAtUnixMs: s.env.Clock.Now().UnixMilli()}})
	}
	var target *actor.PID
	var req any
	switch p := d.Payload; {
	case p.GetSitePolicy() != nil:
		sp := p.GetSitePolicy()
		target = s.env.Automation
		req = &automation.InstallPolicy{Signed: &automation.SignedPolicy{Body: sp.GetBody(), KeyID: sp.GetKeyId(),
			Signature: sp.GetSignature()}, Source: "cloud command " + d.CommandID}
	case p.GetCurtail().GetStop():
		target = s.env.Curtail
		req = &curtail.StopEvent{EventID: p.GetCurtail().GetEventId(), Reason: "stopped by cloud command " + d.CommandID}
	case p.GetCurtail() != nil:
		target = s.env.Curtail
		req = &curtail.StartEvent{Event: curtail.EventFromRequest(p.GetCurtail(), "cloud:"+d.CommandID)}
	default:
		answer(pb.ResultCode_RESULT_CODE_FAILED, "not a site-control command")
		return
	}
	if target == nil {
		answer(pb.ResultCode_RESULT_CODE_UNSUPPORTED, "this node runs no "+actionOf(d.Payload)+" handler")
		return
	}
	f := ctx.RequestFuture(target, req, s.env.Timeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		code, msg := outcome(res, err)
		if code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			s.env.Logger.Warn("site-control command failed", slog.String("command", d.CommandID), slog.String("id", id),
				slog.String("code", code.String()), slog.String("reason", msg))
		}
		answer(code, msg)
	})
}

// outcome maps the AutomationActor's or CurtailActor's answer to a result.
func outcome(res any, err error) (pb.ResultCode, string) {
	if err != nil {
		return pb.ResultCode_RESULT_CODE_FAILED, "no answer: " + err.Error()
	}
	switch r := res.(type) {
	case *automation.InstallReply:
		switch {
		case r.Err != nil:
			return pb.ResultCode_RESULT_CODE_FAILED, r.Err.Error()
		case r.Unchanged:
			return pb.ResultCode_RESULT_CODE_SUCCEEDED, fmt.Sprintf("site policy v%d already installed", r.Version)
		}
		return pb.ResultCode_RESULT_CODE_SUCCEEDED, fmt.Sprintf("site policy v%d installed", r.Version)
	case *curtail.EventReply:
		if r.Err != nil {
			return pb.ResultCode_RESULT_CODE_FAILED, r.Err.Error()
		}
		return pb.ResultCode_RESULT_CODE_SUCCEEDED, r.Status.Describe()
	case error:
		return pb.ResultCode_RESULT_CODE_FAILED, r.Error()
	}
	return pb.ResultCode_RESULT_CODE_FAILED, fmt.Sprintf("unexpected answer %T", res)
}
