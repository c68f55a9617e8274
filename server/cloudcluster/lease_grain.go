package cloudcluster

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
)

// KindLease is the cluster kind of Lease grains (identity: the pair id).
const KindLease = "lease"

// LeaseGrain is one warm-standby pair's lease as a cluster grain: it runs the pair's lease.LeaseActor as
// its child and forwards requests to it (the requester gets the child's answer directly). The child decides
// with lease.Decide and persists by compare-and-set in the shared store, so two activations of one pair's
// grain (protoactor cluster allows that around a membership change) still cannot both grant an epoch.
type LeaseGrain struct {
	env   *env
	pair  string
	child *actor.PID
	log   *slog.Logger
}

func newLeaseGrain(e *env) actor.Actor { return &LeaseGrain{env: e} }

// Receive dispatches each message to its handler.
func (g *LeaseGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.onStarted(ctx)
	case *cluster.ClusterInit:
	case *pb.LeaseRequest:
		if m.GetPairId() != g.pair {
			ctx.Respond(&pb.LeaseDenied{PairId: m.GetPairId(), RequestId: m.GetRequestId(),
				Reason: fmt.Sprintf("%v: request for pair %q reached the grain of %q", lease.ErrInvalidRequest, m.GetPairId(), g.pair)})
			return
		}
		ctx.Forward(g.child)
	case *actor.Stopping, *actor.Stopped, *actor.Restarting, *actor.Terminated:
	default:
		g.env.log.Warn("lease grain: unexpected message", slog.String("pair", g.pair), slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (g *LeaseGrain) onStarted(ctx actor.Context) {
	g.pair = cluster.GetClusterIdentity(ctx).Identity
	g.log = g.env.log.With(slog.String("pair", g.pair), slog.String("grain", "lease"))
	var members [2]string
	if f := g.env.cfg.PairMembers; f != nil {
		m, err := f(g.pair)
		if err != nil {
			g.log.Warn("pair members unknown; the stored lease state must name them", slog.Any("err", err))
		}
		members = m
	}
	g.child = ctx.Spawn(lease.Props(g.pair, g.env.cfg.Lease, lease.Env{Store: g.env.cfg.LeaseStore, Members: members,
		Clock: g.env.cfg.Clock, Logger: g.env.log, Metrics: g.env.leaseMetrics}))
}
