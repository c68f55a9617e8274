package grains

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/lease"
	"google.golang.org/protobuf/proto"
)

// The Node actor's part in warm-standby pairs: it relays its node's lease requests to the pair's
// LeaseActor and the answers back to the same stream, counts heartbeats for the lease, carries the pair in
// its HelloAck, and, when its node loses the lease, gives back the commands its node never started.

// nodePair is the pair a Node is a member of.
type nodePair struct {
	info    *pb.PairInfo
	lease   *actor.PID
	devices map[string]*pb.Device
}

func (n *Node) onPairMessage(ctx actor.Context, msg any) {
	switch m := msg.(type) {
	case *setNodePair:
		n.onSetPair(ctx, m)
	case *deliverGrant:
		if n.session == nil {
			n.log.Info("lease grant not delivered: node not connected; it learns the epoch from its next lease answer",
				slog.Uint64("epoch", m.grant.GetEpoch()))
			return
		}
		n.log.Info("lease handed to this node by transfer", slog.String("pair", m.grant.GetPairId()), slog.Uint64("epoch", m.grant.GetEpoch()))
		n.sendLease(ctx, &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseGrant{LeaseGrant: m.grant}})
		n.resendBounced(ctx, m.grant)
	case *withdrawPair:
		n.onWithdraw(ctx, m)
	case *pb.LeaseGrant:
		n.sendLease(ctx, &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseGrant{LeaseGrant: m}})
		n.resendBounced(ctx, m)
	case *pb.LeaseDenied:
		n.sendLease(ctx, &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseDenied{LeaseDenied: m}})
	case *actor.DeadLetterResponse:
		n.log.Warn("lease request not answered: the pair's lease grain is gone (pair deleted?)")
	}
}

func (n *Node) sendLease(ctx actor.Context, f *pb.CloudToNode) {
	if n.session != nil {
		ctx.Send(n.session, &SendFrame{Frame: f})
	}
}

func (n *Node) onSetPair(ctx actor.Context, m *setNodePair) {
	if m.info == nil {
		if n.pair != nil {
			n.log.Info("node left its pair", slog.String("pair", n.pair.info.GetPairId()))
		}
		n.pair = nil
		for _, q := range n.queue {
			q.pair = ""
		}
		n.sendOwnership(ctx)
		n.pushStatus(ctx)
		return
	}
	devs := make(map[string]*pb.Device, len(m.devices))
	for _, d := range m.devices {
		devs[d.GetMinerId()] = d
	}
	n.pair = &nodePair{info: m.info, lease: m.lease, devices: devs}
	// Commands loaded from the store at start do not know their pair: those naming only the pair's devices
	// keep the epoch they were signed with.
	for _, q := range n.queue {
		if !q.key && !q.control && len(q.minerIDs) > 0 && !slices.ContainsFunc(q.minerIDs, func(id string) bool { return devs[id] == nil }) {
			q.pair = m.info.GetPairId()
		}
	}
	n.sendOwnership(ctx)
	n.pushStatus(ctx)
}

// partnerDevices are the pair's devices this node does not own itself (registered to its partner).
func (n *Node) partnerDevices() []*pb.Device {
	if n.pair == nil {
		return nil
	}
	var out []*pb.Device
	for id, d := range n.pair.devices {
		if _, own := n.devices[id]; !own {
			out = append(out, d)
		}
	}
	return out
}

// pairAttached reports the node's gossip address to the Org and counts the new stream as a sign of life.
func (n *Node) pairAttached(ctx actor.Context) {
	ctx.Send(ctx.Parent(), &memberGossip{node: n.id, addr: n.hello.GetGossipAddr()})
	n.pairHeard(ctx)
}

func (n *Node) pairHeard(ctx actor.Context) {
	if n.pair != nil && n.pair.lease != nil {
		ctx.Send(n.pair.lease, &lease.Heartbeat{NodeID: n.id})
	}
}

// onLeaseRequest relays a node's lease request to its pair's LeaseActor; the answer comes back to this
// actor (onPairMessage) and goes to the node's current stream.
func (n *Node) onLeaseRequest(ctx actor.Context, lr *pb.LeaseRequest) {
	deny := func(reason string) {
		n.log.Warn("lease request refused before the lease grain", slog.String("pair", lr.GetPairId()), slog.String("reason", reason))
		n.sendLease(ctx, &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseDenied{LeaseDenied: &pb.LeaseDenied{
			PairId: lr.GetPairId(), RequestId: lr.GetRequestId(), Reason: reason}}})
	}
	switch {
	case lr.GetNodeId() != "" && lr.GetNodeId() != n.id:
		deny(fmt.Sprintf("node_id %q is not this stream's node %q", lr.GetNodeId(), n.id))
		return
	case n.pair == nil:
		deny(fmt.Sprintf("node %s is not a member of any pair", n.id))
		return
	case lr.GetPairId() != n.pair.info.GetPairId():
		deny(fmt.Sprintf("node %s is not a member of pair %q", n.id, lr.GetPairId()))
		return
	case n.pair.lease == nil:
		deny("the pair's lease is not available")
		return
	}
	req := proto.Clone(lr).(*pb.LeaseRequest)
	req.NodeId = n.id
	ctx.Request(n.pair.lease, req)
}

// onWithdraw gives up this node's queued commands for the pair's devices after it lost the lease: those
// it never started go back to the Org for the new holder, those it started end INTERRUPTED.
func (n *Node) onWithdraw(ctx actor.Context, m *withdrawPair) {
	mark := n.hello.GetLastSeq()
	seqs := make([]uint64, 0, len(n.queue))
	for seq := range n.queue {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	var moved []pairCommand
	interrupted := 0
	for _, seq := range seqs {
		q := n.queue[seq]
		if q.key || q.control {
			continue
		}
		switch decideWithdraw(q.minerIDs, m.devices, q.running, seq, mark) {
		case keepQueued:
			continue
		case moveToHolder:
			moved = append(moved, pairCommandOf(q))
		case interruptIt:
			interrupted++
			ctx.Send(n.tracker, &commandAcked{commandID: q.cmd.GetCommandId(), node: n.id, minerIDs: q.minerIDs,
				code: pb.ResultCode_RESULT_CODE_INTERRUPTED, message: interruptedMessage(m.from, m.to, m.epoch, m.failover)})
		}
		n.dequeue(ctx, seq)
	}
	n.log.Info("lease lost: pair commands withdrawn", slog.String("pair", m.pairID), slog.String("to", m.to),
		slog.Uint64("epoch", m.epoch), slog.Int("moved", len(moved)), slog.Int("interrupted", interrupted))
	if len(moved) > 0 {
		ctx.Send(ctx.Parent(), &pairCommandsMoved{pairID: m.pairID, cmds: moved})
	}
}

// pairBounced handles a holder's FENCED or REFUSED_EPOCH answer to a pair command: the gate did not consume
// the seq, so the command stays queued (pending for the operator) and goes out again once the node holds the
// lease at its epoch, or moves with the lease. It reports whether the ack was taken.
func (n *Node) pairBounced(q *queued, code pb.ResultCode, msg string) bool {
	if q.pair == "" || (code != pb.ResultCode_RESULT_CODE_FENCED && code != pb.ResultCode_RESULT_CODE_REFUSED_EPOCH) {
		return false
	}
	q.bounced, q.running = true, false
	n.log.Info("holder refused a pair command for its lease; it waits for the lease", slog.String("command", q.cmd.GetCommandId()),
		slog.Uint64("seq", q.cmd.GetMonotonicSeq()), slog.Uint64("epoch", q.cmd.GetLeaseEpoch()), slog.String("code", ResultCodeName(code)),
		slog.String("message", msg))
	return true
}

// moveFenced takes out of a pair command's report the miners its node answered FENCED: the node accepted
// the command but lost the lease (a transfer, a lapse) before those writes started, so they never reached
// the miner and are not results. They move to the pair's holder like a command the node never started (same
// command id and idempotency key, the holder's seq and epoch), and the tracker keeps them pending until the
// holder reports. It returns the miners and results left for the tracker.
func (n *Node) moveFenced(ctx actor.Context, q *queued, minerIDs []string, results []*pb.MinerResult) ([]string, []*pb.MinerResult) {
	if q.pair == "" {
		return minerIDs, results
	}
	var fenced []string
	kept := results[:0:0]
	for _, r := range results {
		if r.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
			kept = append(kept, r)
			continue
		}
		if !q.fencedMoved[r.GetMinerId()] {
			fenced = append(fenced, r.GetMinerId())
		}
	}
	if len(kept) == len(results) {
		return minerIDs, results
	}
	if q.fencedMoved == nil {
		q.fencedMoved = map[string]bool{}
	}
	for _, id := range fenced {
		q.fencedMoved[id] = true
	}
	left := make([]string, 0, len(minerIDs))
	for _, id := range minerIDs {
		if !q.fencedMoved[id] {
			left = append(left, id)
		}
	}
	if len(fenced) > 0 {
		c := pairCommandOf(q)
		c.minerIDs = fenced
		n.log.Info("pair command fenced at the node before its writes: moved to the holder", slog.String("command", c.commandID),
			slog.String("pair", q.pair), slog.Int("miners", len(fenced)))
		ctx.Send(ctx.Parent(), &pairCommandsMoved{pairID: q.pair, cmds: []pairCommand{c}})
	}
	return left, kept
}

// resendBounced sends again the pair commands the node refused while fenced, once it is granted their epoch.
// Each goes out under a fresh seq (same command id and idempotency key): the refusal did not consume its old
// seq, but commands queued after it may have run meanwhile and raised the node's mark above it, and the old
// seq would then be refused as a replay.
func (n *Node) resendBounced(ctx actor.Context, g *pb.LeaseGrant) {
	if g.GetHolder() != n.id || n.session == nil {
		return
	}
	seqs := make([]uint64, 0, len(n.queue))
	for seq, q := range n.queue {
		if q.bounced && q.cmd.GetLeaseEpoch() == g.GetEpoch() {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		q := n.queue[seq]
		c := pairCommandOf(q)
		n.dequeue(ctx, seq)
		n.onEnqueue(ctx, &enqueueCommand{commandID: c.commandID, actor: c.actor, minerIDs: c.minerIDs, spec: c.spec,
			issuedAt: c.issuedAt, pair: q.pair, epoch: q.cmd.GetLeaseEpoch(), watermark: q.cmd.GetLocalWatermark(), stamped: true})
	}
}

func pairCommandOf(q *queued) pairCommand {
	var p pb.CommandPayload
	_ = proto.Unmarshal(q.cmd.GetPayload(), &p) // queued payloads were marshalled by this actor or checked at load
	return pairCommand{commandID: q.cmd.GetCommandId(), actor: q.cmd.GetActor(), minerIDs: slices.Clone(q.minerIDs),
		spec: p.GetSpec(), issuedAt: time.UnixMilli(q.cmd.GetIssuedAtUnixMs())}
}
