package grains

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// The Node actor's part in commissioning: node-control commands (discovery scans, pairings) are queued,
// signed and re-sent like any command, but their outcome belongs to the Org, and the ownership map a node
// receives carries its devices' sealed logins.

func isControlPayload(p *pb.CommandPayload) bool {
	return p.GetDiscovery() != nil || p.GetPairing() != nil || p.GetSitePolicy() != nil || p.GetCurtail() != nil
}

func (n *Node) onControlAck(ctx actor.Context, a *pb.CommandAck, code pb.ResultCode) {
	if IsFinalResult(code) {
		n.log.Warn("node did not run a control command", slog.String("command", a.GetCommandId()),
			slog.Uint64("seq", a.GetMonotonicSeq()), slog.String("code", ResultCodeName(code)), slog.String("message", a.GetMessage()))
		n.dequeue(ctx, a.GetMonotonicSeq())
	}
	ack := proto.Clone(a).(*pb.CommandAck)
	ack.Code = code
	ctx.Send(ctx.Parent(), &controlOutcome{node: n.id, commandID: a.GetCommandId(), ack: ack})
}

func (n *Node) onControlReport(ctx actor.Context, r *pb.CommandResultReport) {
	if r.GetDone() {
		n.dequeue(ctx, r.GetMonotonicSeq())
	}
	ctx.Send(ctx.Parent(), &controlOutcome{node: n.id, commandID: r.GetCommandId(), report: r})
}

// withLogins returns devs with each device's sealed login attached (copies; the registry's devices carry
// none). Without a vault, or when it cannot be read, devs go as they are: the node then uses the defaults.
func (n *Node) withLogins(devs []*pb.Device) []*pb.Device {
	envs, err := loginEnvelopes(n.cfg.Vault, n.id)
	if err != nil {
		n.log.Error("cannot read the node's sealed logins; its ownership map goes without them", slog.Any("err", err))
		return devs
	}
	if len(envs) == 0 {
		return devs
	}
	out := make([]*pb.Device, len(devs))
	for i, d := range devs {
		if env, ok := envs[d.GetMinerId()]; ok {
			d = proto.Clone(d).(*pb.Device)
			d.LoginEnvelope = env
		}
		out[i] = d
	}
	return out
}
