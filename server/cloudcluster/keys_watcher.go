package cloudcluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
)

type keysTick struct{}

// KeyWatcher keeps a member's command keys current: on start and then every interval of business time it
// reads the shared key row and installs it when its version is newer than the one the member signs with
// (a rotation or revocation made on another member). One runs on every member with shared keys.
type KeyWatcher struct {
	signer   *OrgSigner
	clk      clock.Clock
	interval time.Duration
	log      *slog.Logger

	timer  clock.Timer
	failed bool // the last read failed (logged once until it recovers)
}

// KeyWatcherProps returns the Props of a KeyWatcher.
func KeyWatcherProps(s *OrgSigner, clk clock.Clock, interval time.Duration, log *slog.Logger) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &KeyWatcher{signer: s, clk: clk, interval: interval, log: log.With(slog.String("component", "command-keys"))}
	})
}

// Receive dispatches each message to its handler.
func (w *KeyWatcher) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		ctx.Send(ctx.Self(), &keysTick{})
	case *keysTick:
		w.onTick(ctx)
	case *actor.Stopping:
		if w.timer != nil {
			w.timer.Stop()
		}
	case *actor.Stopped, *actor.Restarting:
	default:
		w.log.Warn("key watcher: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (w *KeyWatcher) onTick(ctx actor.Context) {
	before := w.signer.Version()
	changed, err := w.signer.Refresh()
	switch {
	case err != nil && !w.failed:
		w.failed = true
		w.log.Error("cannot read the shared command keys; signing with the ones loaded before", slog.Any("err", err),
			slog.Int64("version", before))
	case err == nil && w.failed:
		w.failed = false
		w.log.Info("shared command keys readable again", slog.Int64("version", w.signer.Version()))
	}
	if changed && before != 0 {
		w.log.Info("command keys changed on another member; now signing with the new set", slog.Int64("from_version", before),
			slog.Int64("version", w.signer.Version()))
	}
	w.timer = actors.SendAfter(w.clk, ctx.ActorSystem(), ctx.Self(), w.interval, &keysTick{})
}
