package cloudcluster

import (
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// authActor is a member's end of cluster-wide revocation: named authActorName on every member, it ends a
// revoked node's streams on this member's gateways when any member asks (Auth.Revoke).
type authActor struct {
	a   *Auth
	log *slog.Logger
}

func newAuthActor(a *Auth) *authActor { return &authActor{a: a, log: a.log} }

// Receive implements actor.Actor.
func (x *authActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.ClusterCutNode:
		x.onCut(ctx, m)
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	default:
		x.log.Warn("auth actor: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (x *authActor) onCut(ctx actor.Context, m *pb.ClusterCutNode) {
	n := 0
	if m.GetNodeId() != "" {
		n = x.a.cutLocal(m.GetNodeId(), m.GetReason())
	}
	ctx.Respond(&pb.ClusterCutNodeReply{Streams: int32(n), Member: x.a.m.system.ID})
}
