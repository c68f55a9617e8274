package cloudcluster

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
)

// KindMiner is the cluster kind of Miner grains (identity: the miner id).
const KindMiner = "miner"

// MinerGrain owns one miner's results of org commands: its row of each command in the shared store, which
// no other grain writes. Node grains forward what the miner's node reported (ClusterMinerUpdate); the grain
// folds it in with server/grains' rules (decideMinerUpdate) and writes the row only if it changed and is
// not final in the store (a second activation around a membership change cannot regress it). A command's
// deadline marks the miner TIMEOUT (decideTimeout) when it has no final result by then. It also answers
// "get miner": the latest telemetry from the store and its commands in flight.
//
//	NodeGrain ──ClusterMinerUpdate──▶ MinerGrain ──PutMinerResult (row, WHERE NOT final)──▶ Postgres
//	OrgGrain ──ClusterMinerTrack (deadline)──┘ │ the write giving a command its last final result
//	API ──ClusterMinerGet──────────────────────┘   also writes the finished record
type MinerGrain struct {
	env    *env
	id     string
	member string
	log    *slog.Logger

	open    map[string]*pgstore.MinerCommand // commands without a final result for this miner
	timer   clock.Timer
	timerAt time.Time
}

// minerTick: the earliest open command's deadline passed (business clock).
type minerTick struct{}

func newMinerGrain(e *env) actor.Actor {
	return &MinerGrain{env: e, open: map[string]*pgstore.MinerCommand{}}
}

// Receive dispatches each message to its handler.
func (g *MinerGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.onStarted(ctx)
	case *cluster.ClusterInit:
	case *pb.ClusterMinerUpdate:
		g.onUpdate(ctx, m)
	case *pb.ClusterMinerTrack:
		g.onTrack(ctx, m)
	case *pb.ClusterMinerGet:
		g.onGet(ctx)
	case *minerTick:
		g.onTick(ctx)
	case *actor.Stopping:
		g.stopTimer()
	case *actor.Stopped, *actor.Restarting, *actor.Terminated:
	default:
		g.env.log.Warn("miner grain: unexpected message", slog.String("miner", g.id), slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (g *MinerGrain) onStarted(ctx actor.Context) {
	g.id = cluster.GetClusterIdentity(ctx).Identity
	g.member = ctx.ActorSystem().ID
	g.log = g.env.log.With(slog.String("miner", g.id), slog.String("grain", "miner"))
	g.load(ctx, "")
}

// load reads the miner's open commands (one command, or all when commandID is "") and re-arms the timer.
func (g *MinerGrain) load(ctx actor.Context, commandID string) {
	cs := g.env.commands
	if cs == nil {
		return
	}
	cmds, err := cs.MinerCommands(g.id, commandID, true)
	if err != nil {
		g.log.Error("load commands in flight", slog.String("command", commandID), slog.Any("err", err))
		return
	}
	for _, c := range cmds {
		if g.open[c.CommandID] == nil {
			g.open[c.CommandID] = &c
		}
	}
	g.arm(ctx)
}

// arm keeps one timer at the earliest open deadline.
func (g *MinerGrain) arm(ctx actor.Context) {
	at, ok := nextDeadline(g.open)
	if !ok {
		g.stopTimer()
		return
	}
	if g.timer != nil && g.timerAt.Equal(at) {
		return
	}
	g.stopTimer()
	g.timerAt = at
	g.timer = selfAfter(g.env.cfg.Clock, ctx, at.Sub(g.env.cfg.Clock.Now()), &minerTick{})
}

func (g *MinerGrain) stopTimer() {
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
}

func (g *MinerGrain) onTrack(ctx actor.Context, m *pb.ClusterMinerTrack) {
	defer ctx.Respond(&pb.ClusterMinerUpdateReply{})
	if m.GetMinerId() != g.id {
		return
	}
	g.load(ctx, m.GetCommandId()) // an overdue command's timer fires at once
}

func (g *MinerGrain) onUpdate(ctx actor.Context, m *pb.ClusterMinerUpdate) {
	reply := &pb.ClusterMinerUpdateReply{}
	defer func() { ctx.Respond(reply) }()
	if g.env.commands == nil || m.GetMinerId() != g.id {
		g.log.Warn("miner update refused: wrong grain or no store", slog.String("named_miner", m.GetMinerId()))
		return
	}
	c := g.open[m.GetCommandId()]
	if c == nil {
		g.load(ctx, m.GetCommandId())
		if c = g.open[m.GetCommandId()]; c == nil {
			g.log.Debug("update for a command without an open result for this miner ignored", slog.String("command", m.GetCommandId()))
			return
		}
	}
	if c.NodeID != m.GetNodeId() {
		g.log.Warn("update from a node that does not own this miner's part ignored", slog.String("command", m.GetCommandId()),
			slog.String("node", m.GetNodeId()), slog.String("owner", c.NodeID))
		return
	}
	next, changed := decideMinerUpdate(c.Result, m, g.env.cfg.Clock.Now())
	if !changed {
		return
	}
	applied, err := g.write(c, next)
	g.arm(ctx)
	if err != nil {
		reply.Error = err.Error() // the forwarding Node grain's call retries
		return
	}
	reply.Applied = applied
}

func (g *MinerGrain) onTick(ctx actor.Context) {
	g.timer = nil
	now := g.env.cfg.Clock.Now()
	failed := false
	for _, id := range dueCommands(g.open, now) {
		c := g.open[id]
		next, changed := decideTimeout(c.Result, g.env.cfg.CommandTimeout, now)
		if !changed {
			delete(g.open, id)
			continue
		}
		if _, err := g.write(c, next); err != nil {
			failed = true
		}
	}
	if failed { // the store failed: try again after a backoff, not at once
		g.stopTimer()
		g.timerAt = now.Add(g.env.cfg.ReattachBackoff)
		g.timer = selfAfter(g.env.cfg.Clock, ctx, g.env.cfg.ReattachBackoff, &minerTick{})
		return
	}
	g.arm(ctx)
}

// write persists a miner's new result of c. applied=false: the store had a final result already (written
// by another activation); the open entry is dropped either way once final.
func (g *MinerGrain) write(c *pgstore.MinerCommand, next *pb.MinerResult) (bool, error) {
	final := grains.IsFinalResult(next.GetCode())
	applied, finished, err := g.env.commands.PutMinerResult(c.CommandID, next, final, settleAt(g.env.cfg.Clock.Now()))
	if err != nil {
		g.log.Error("write result", slog.String("command", c.CommandID), slog.Any("err", err))
		return false, err
	}
	switch {
	case !applied:
		delete(g.open, c.CommandID) // final in the store already
	case final:
		delete(g.open, c.CommandID)
		g.log.Debug("final result", slog.String("command", c.CommandID), slog.String("code", next.GetCode().String()))
	default:
		c.Result = next
	}
	if finished {
		g.log.Info("command finished", slog.String("command", c.CommandID))
	}
	return applied, nil
}

func (g *MinerGrain) onGet(ctx actor.Context) {
	reply := &pb.ClusterMinerReply{MinerId: g.id, GrainMember: g.member}
	cs := g.env.commands
	if cs == nil {
		reply.Error = ErrUnavailable.Error()
		ctx.Respond(reply)
		return
	}
	g.load(ctx, "") // commands recorded since activation that no update reached yet
	owners, err := cs.MinerOwners([]string{g.id})
	if err != nil {
		reply.Error = err.Error()
		ctx.Respond(reply)
		return
	}
	if o, ok := owners[g.id]; ok {
		reply.Known, reply.NodeId, reply.OrgId = true, o.NodeID, o.OrgID
	}
	t, err := cs.MinerTelemetry(g.id)
	switch {
	case err == nil:
		reply.Latest = t
	case !errors.Is(err, store.ErrNotFound):
		reply.Error = err.Error()
	}
	ids := make([]string, 0, len(g.open))
	for id := range g.open {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c := g.open[id]
		reply.InFlight = append(reply.InFlight, &pb.ClusterMinerCommand{CommandId: id, NodeId: c.NodeID, Result: c.Result,
			CreatedAtUnixMs: c.Created.UnixMilli(), DeadlineUnixMs: c.Deadline.UnixMilli()})
	}
	ctx.Respond(reply)
}
