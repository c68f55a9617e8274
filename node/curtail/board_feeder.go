package curtail

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node/site"
)

// FeederEnv is what the BoardFeeder is wired to.
type FeederEnv struct {
	// Site is the SiteSupervisor asked for its miners' statuses (required).
	Site *actor.PID
	// Board receives them (required).
	Board *Board
	// Interval between refreshes (default 2s: well under the CurtailActor's tick and the miners' poll).
	Interval     time.Duration
	Clock        clock.Clock
	ActorMetrics *actors.Metrics
	Logger       *slog.Logger
	// OnRefresh, when set, is called after each refresh (tests wait on it).
	OnRefresh func()
}

type feederTick struct{ gen uint64 }

// FeederProps returns the BoardFeeder's props (kind "curtail-board"): it keeps a Board equal to the site's
// miners' live statuses by asking the SiteSupervisor for its list on the injected clock, never blocking.
func FeederProps(env FeederEnv) *actor.Props {
	if env.Interval <= 0 {
		env.Interval = 2 * time.Second
	}
	if env.Clock == nil {
		env.Clock = clock.Real()
	}
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	return actors.Props("curtail-board", env.ActorMetrics, func() actor.Actor { return &Feeder{env: env} })
}

// Feeder is the BoardFeeder actor.
type Feeder struct {
	env   FeederEnv
	timer clock.Timer
	gen   uint64
}

// Receive dispatches each message to its handler.
func (f *Feeder) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		f.refresh(ctx)
	case feederTick:
		if msg.gen == f.gen {
			f.timer = nil
			f.refresh(ctx)
		}
	case *site.List:
		f.env.Board.Replace(msg.Miners)
		if f.env.OnRefresh != nil {
			f.env.OnRefresh()
		}
	case *actor.Stopping, *actor.Restarting:
		if f.timer != nil {
			f.timer.Stop()
			f.timer = nil
		}
	case *actor.Stopped:
	case *actor.DeadLetterResponse:
	default:
		f.env.Logger.Warn("curtail board feeder: unexpected message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (f *Feeder) refresh(ctx actor.Context) {
	ctx.Request(f.env.Site, &site.ListRequest{})
	f.gen++
	f.timer = actors.SendAfter(f.env.Clock, ctx.ActorSystem(), ctx.Self(), f.env.Interval, feederTick{gen: f.gen})
}
