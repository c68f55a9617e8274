package cloudcluster

import (
	"log/slog"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// forwardResults hands what a node reported about its part of an org command (an ack, a result report) to
// the Miner grains of the part's miners, one update per miner, through the member's caller (retried until
// the command's timeout; a Miner grain applies each once). Frames of commands issued to the node directly
// (no org command part) and frames naming another seq than the part's are not forwarded.
func (g *NodeGrain) forwardResults(f *pb.NodeToCloud) {
	cs, k := g.env.commands, g.env.caller
	if cs == nil || k == nil {
		return
	}
	var id string
	var seq uint64
	switch x := f.GetMsg().(type) {
	case *pb.NodeToCloud_Ack:
		id, seq = x.Ack.GetCommandId(), x.Ack.GetMonotonicSeq()
	case *pb.NodeToCloud_Result:
		id, seq = x.Result.GetCommandId(), x.Result.GetMonotonicSeq()
	default:
		return
	}
	if store.ValidID(id) != nil {
		return
	}
	part, ok, err := cs.Part(id, g.id)
	if err != nil {
		g.log.Error("results not forwarded: load the command's part", slog.String("command", id), slog.Any("err", err))
		return
	}
	if !ok {
		return
	}
	if part.Seq != 0 && part.Seq != seq {
		g.log.Warn("frame names another seq than the command's part; not forwarded", slog.String("command", id),
			slog.Uint64("seq", seq), slog.Uint64("part_seq", part.Seq))
		return
	}
	until := g.env.cfg.Clock.Now().Add(g.env.cfg.CommandTimeout)
	for _, u := range minerUpdates(g.id, part, f) {
		if !k.Go(call{identity: u.GetMinerId(), kind: KindMiner, msg: u, until: until}) {
			g.log.Warn("results not forwarded: member stopping", slog.String("command", id))
			return
		}
	}
}
