package grains

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// CommandTracker owns the CommandRecord of every operator command until it finishes: it folds node acks and
// result reports into per-miner results, marks what has no final result after CommandTimeout as timeout,
// and persists. Final states are written at once; progress of a running command is flushed every
// FlushInterval. When a command finishes it tells each node that queued it to drop it. A node announcing a
// command the tracker no longer tracks (finished, unknown) is told to drop it.
type CommandTracker struct {
	cfg    *Config
	log    *slog.Logger
	active map[string]*activeCommand
	flush  clock.Timer
	org    *actor.PID // the Org, for transfer completions (trackerOrg)
}

type activeCommand struct {
	rec   *pb.CommandRecord
	timer clock.Timer
	nodes map[string]nodeRef // node → the Node actor that queued it and the seq it used
	dirty bool
}

type nodeRef struct {
	pid *actor.PID
	seq uint64
}

func newCommandTracker(cfg *Config) *CommandTracker {
	return &CommandTracker{cfg: cfg, log: cfg.Logger, active: map[string]*activeCommand{}}
}

func (t *CommandTracker) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		t.onStarted(ctx)
	case *actor.Stopping, *actor.Restarting:
		t.onStopping()
	case *actor.Stopped:
	case *trackCommand:
		t.onTrack(ctx, m)
	case *commandIssued:
		t.onIssued(ctx, m)
	case *commandAcked:
		t.onAcked(ctx, m)
	case *commandReport:
		t.onReport(ctx, m)
	case *commandTimedOut:
		t.onTimedOut(ctx, m)
	case *flushTick:
		t.flush = nil
		t.flushDirty()
	case *getCommand:
		t.onGet(ctx, m)
	case *getCommandView:
		t.onGetView(ctx, m)
	case *trackerOrg:
		t.org = m.pid
	default:
		t.log.Warn("command tracker: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

// onStarted resumes every command that had no final status, with its timeout counted from its creation.
func (t *CommandTracker) onStarted(ctx actor.Context) {
	recs, err := t.cfg.Store.ActiveCommands()
	if err != nil {
		panic(fmt.Errorf("command tracker: load active commands: %w", err))
	}
	for _, rec := range recs {
		t.track(ctx, rec)
	}
	if len(recs) > 0 {
		t.log.Info("resumed unfinished commands", slog.Int("commands", len(recs)))
	}
}

func (t *CommandTracker) onStopping() {
	t.flushDirty()
	for _, a := range t.active {
		a.timer.Stop()
	}
	if t.flush != nil {
		t.flush.Stop()
		t.flush = nil
	}
}

func (t *CommandTracker) track(ctx actor.Context, rec *pb.CommandRecord) {
	if rec.NodeSeqs == nil {
		rec.NodeSeqs = map[string]uint64{}
	}
	a := &activeCommand{rec: rec, nodes: map[string]nodeRef{}}
	t.active[rec.GetCommandId()] = a
	timedOut := &commandTimedOut{commandID: rec.GetCommandId()}
	wait := timeMs(rec.GetCreatedAtUnixMs()).Add(t.cfg.CommandTimeout).Sub(t.cfg.Clock.Now())
	if wait <= 0 { // overdue (the server was down): now, not at the clock's next tick
		a.timer = stoppedTimer{}
		ctx.Send(ctx.Self(), timedOut)
		return
	}
	a.timer = actors.SendAfter(t.cfg.Clock, ctx.ActorSystem(), ctx.Self(), wait, timedOut)
}

// stoppedTimer stands in for a timer that was never armed.
type stoppedTimer struct{}

func (stoppedTimer) C() <-chan time.Time      { return nil }
func (stoppedTimer) Stop() bool               { return false }
func (stoppedTimer) Reset(time.Duration) bool { return false }

func (t *CommandTracker) onTrack(ctx actor.Context, m *trackCommand) {
	t.track(ctx, m.rec)
}

func (t *CommandTracker) onIssued(ctx actor.Context, m *commandIssued) {
	a := t.active[m.commandID]
	if a == nil {
		// Finished (or never known): the node should not keep it.
		if ctx.Sender() != nil {
			ctx.Respond(&dropCommand{commandID: m.commandID, seq: m.seq})
		}
		return
	}
	a.nodes[m.node] = nodeRef{pid: ctx.Sender(), seq: m.seq}
	if a.rec.NodeSeqs[m.node] != m.seq {
		a.rec.NodeSeqs[m.node] = m.seq
		t.markDirty(ctx, a)
	}
}

func (t *CommandTracker) onAcked(ctx actor.Context, m *commandAcked) {
	a := t.active[m.commandID]
	if a == nil {
		t.log.Debug("ack for a finished command", slog.String("command", m.commandID), slog.String("node", m.node))
		return
	}
	t.changed(ctx, a, ApplyAck(a.rec, m.minerIDs, m.code, m.message, t.cfg.Clock.Now()))
}

func (t *CommandTracker) onReport(ctx actor.Context, m *commandReport) {
	a := t.active[m.commandID]
	if a == nil {
		t.log.Info("result for a finished command ignored", slog.String("command", m.commandID), slog.String("node", m.node),
			slog.Int("results", len(m.results)))
		return
	}
	t.takeResealed(ctx, a.rec, m)
	t.changed(ctx, a, ApplyReport(a.rec, m.minerIDs, m.results, m.done, t.cfg.Clock.Now()))
	t.promoteLogins(a.rec, m.results)
	t.completeRotations(a.rec, m.node, m.results)
}

func (t *CommandTracker) onTimedOut(ctx actor.Context, m *commandTimedOut) {
	a := t.active[m.commandID]
	if a == nil {
		return
	}
	now := t.cfg.Clock.Now()
	if ApplyTimeout(a.rec, t.cfg.CommandTimeout, now) {
		t.log.Warn("command timed out", slog.String("command", m.commandID), slog.Duration("after", t.cfg.CommandTimeout))
	}
	t.changed(ctx, a, true)
}

// changed settles the record after a change: finished records are persisted and released, others are
// flushed later.
func (t *CommandTracker) changed(ctx actor.Context, a *activeCommand, changed bool) {
	if !changed {
		return
	}
	now := t.cfg.Clock.Now()
	before := a.rec.GetStatus()
	if !SettleRecord(a.rec, now) {
		if a.rec.GetStatus() != before {
			t.persist(a) // status changes (pending → running) are worth writing at once
			return
		}
		t.markDirty(ctx, a)
		return
	}
	a.timer.Stop()
	t.persist(a)
	delete(t.active, a.rec.GetCommandId())
	status := ResultName(a.rec.GetStatus())
	t.cfg.Metrics.commandFinished(status, resultCounts(a.rec), now.Sub(timeMs(a.rec.GetCreatedAtUnixMs())))
	t.log.Info("command finished", slog.String("command", a.rec.GetCommandId()), slog.String("status", status),
		slog.Int("miners", len(a.rec.GetResults())))
	for _, ref := range a.nodes {
		if ref.pid != nil {
			ctx.Send(ref.pid, &dropCommand{commandID: a.rec.GetCommandId(), seq: ref.seq})
		}
	}
}

func (t *CommandTracker) markDirty(ctx actor.Context, a *activeCommand) {
	a.dirty = true
	if t.flush == nil {
		t.flush = actors.SendAfter(t.cfg.Clock, ctx.ActorSystem(), ctx.Self(), t.cfg.FlushInterval, &flushTick{})
	}
}

func (t *CommandTracker) flushDirty() {
	for _, a := range t.active {
		if a.dirty {
			t.persist(a)
		}
	}
}

func (t *CommandTracker) persist(a *activeCommand) {
	if err := t.cfg.Store.PutCommand(a.rec); err != nil {
		t.log.Error("persist command record", slog.String("command", a.rec.GetCommandId()), slog.Any("err", err))
		a.dirty = true
		return
	}
	a.dirty = false
}

func (t *CommandTracker) onGet(ctx actor.Context, m *getCommand) {
	if a := t.active[m.id]; a != nil {
		ctx.Respond(proto.Clone(a.rec).(*pb.CommandRecord))
		return
	}
	rec, err := t.cfg.Store.Command(m.id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		ctx.Respond(fmt.Errorf("command %q: %w", m.id, ErrUnknownCommand))
	case err != nil:
		ctx.Respond(fmt.Errorf("command %q: %w: %v", m.id, ErrStore, err))
	default:
		ctx.Respond(rec)
	}
}

// onGetView answers a view of a command (command_view.go): from the live record without cloning it, else
// from the store.
func (t *CommandTracker) onGetView(ctx actor.Context, m *getCommandView) {
	var rec *pb.CommandRecord
	if a := t.active[m.id]; a != nil {
		rec = a.rec
	} else {
		var err error
		rec, err = t.cfg.Store.Command(m.id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			ctx.Respond(fmt.Errorf("command %q: %w", m.id, ErrUnknownCommand))
			return
		case err != nil:
			ctx.Respond(fmt.Errorf("command %q: %w: %v", m.id, ErrStore, err))
			return
		}
	}
	v, err := ViewCommand(rec, m.q)
	if err != nil {
		ctx.Respond(err)
		return
	}
	ctx.Respond(v)
}
