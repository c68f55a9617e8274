package cloudcluster

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
)

// KindNode is the cluster kind of Node grains (identity: the node id).
const KindNode = "node"

// replacedReconnectAfterMs is what a link replaced by a newer stream tells its node.
const replacedReconnectAfterMs = 5000

// NodeGrain is one node's cloud side in a multi-member cloud: which member's link holds the node's live
// control stream, and the node's command queue with its seq counter, both in the shared store. It is
// activated on one member (found by identity) and may move: everything it needs is reloaded from the store
// at activation and at each attach, so a second activation during a membership change can only ever send a
// command under a seq the store allocated to it (AllocSeq), never reuse one (Enqueue refuses).
//
//	link on member A ──ClusterAttachStream──▶ NodeGrain (member C) ◀──ClusterIssueCommand── API on member B
//	                 ◀──ClusterDeliver(command)──┘   │ AllocSeq + Enqueue (shared store) before sending
type NodeGrain struct {
	env    *env
	id     string
	log    *slog.Logger
	member string

	link    *actor.PID
	linkRef *pb.ClusterLinkRef
	hello   *pb.ControlHello
}

func newNodeGrain(e *env) actor.Actor { return &NodeGrain{env: e} }

// Receive dispatches each message to its handler.
func (g *NodeGrain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.onStarted(ctx)
	case *cluster.ClusterInit:
	case *pb.ClusterAttachStream:
		g.onAttach(ctx, m)
	case *pb.ClusterDetachStream:
		g.onDetach(ctx, m)
	case *pb.ClusterNodeFrame:
		g.onFrame(ctx, m)
	case *pb.ClusterIssueCommand:
		g.onIssue(ctx, m)
	case *pb.ClusterIngestTelemetry:
		g.onIngest(ctx, m)
	case *pb.ClusterNodeStatus:
		g.onStatus(ctx)
	case *actor.Terminated:
		g.onTerminated(m)
	case *actor.Stopping, *actor.Stopped, *actor.Restarting:
	default:
		g.env.log.Warn("node grain: unexpected message", slog.String("node", g.id), slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (g *NodeGrain) onStarted(ctx actor.Context) {
	g.id = cluster.GetClusterIdentity(ctx).Identity
	g.member = ctx.ActorSystem().ID
	g.log = g.env.log.With(slog.String("node", g.id), slog.String("grain", "node"))
	g.log.Debug("node grain activated", slog.String("member", g.member))
}

func (g *NodeGrain) onAttach(ctx actor.Context, m *pb.ClusterAttachStream) {
	pid := linkPID(m.GetLink())
	if pid == nil || m.GetNodeId() != g.id {
		ctx.Respond(&pb.ClusterAttachReply{GrainMember: g.member})
		g.log.Warn("attach refused: malformed", slog.String("named_node", m.GetNodeId()))
		return
	}
	if g.link != nil && !g.link.Equal(pid) {
		g.log.Info("newer control stream replaces the current one", slog.String("old_member", g.linkRef.GetMember()),
			slog.String("new_member", m.GetLink().GetMember()))
		ctx.Send(g.link, &pb.ClusterGoaway{Reason: "replaced by a newer control stream", ReconnectAfterMs: replacedReconnectAfterMs})
		ctx.Unwatch(g.link)
	}
	if g.link == nil || !g.link.Equal(pid) {
		ctx.Watch(pid)
	}
	g.link, g.linkRef, g.hello = pid, m.GetLink(), m.GetHello()
	st := g.env.cfg.Store
	last, queue, err := st.NodeQueue(g.id)
	if err != nil {
		g.log.Error("load queue on attach", slog.Any("err", err))
	}
	if nl := m.GetHello().GetLastSeq(); nl > last {
		g.log.Warn("node's seq mark is ahead of the shared counter; raising the counter", slog.Uint64("node_last_seq", nl),
			slog.Uint64("cloud_last_seq", last))
		if err := st.RaiseSeq(g.id, nl); err != nil {
			g.log.Error("raise seq counter", slog.Any("err", err))
		}
		last = nl
	}
	ctx.Respond(&pb.ClusterAttachReply{LastSeq: last, GrainMember: g.member})
	ack := &pb.HelloAck{NodeId: g.id, NextSeq: last + 1}
	if s := g.env.cfg.Signer; s != nil {
		ack.CommandKeys = s.Keys()
	}
	ctx.Send(pid, &pb.ClusterDeliver{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_HelloAck{HelloAck: ack}}})
	resent := 0
	for _, c := range resendAfter(queue, m.GetHello().GetLastSeq()) {
		ctx.Send(pid, deliver(c))
		resent++
	}
	g.log.Info("control stream attached", slog.String("stream_member", m.GetLink().GetMember()),
		slog.Uint64("node_last_seq", m.GetHello().GetLastSeq()), slog.Int("resent", resent))
}

// resendAfter returns the queued commands above the node's mark, ascending by seq.
func resendAfter(queue []*pb.ControlCommand, last uint64) []*pb.ControlCommand {
	var out []*pb.ControlCommand
	for _, c := range queue {
		if c.GetMonotonicSeq() > last {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *pb.ControlCommand) int {
		switch {
		case a.GetMonotonicSeq() < b.GetMonotonicSeq():
			return -1
		case a.GetMonotonicSeq() > b.GetMonotonicSeq():
			return 1
		}
		return 0
	})
	return out
}

func deliver(c *pb.ControlCommand) *pb.ClusterDeliver {
	return &pb.ClusterDeliver{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: c}}}
}

func (g *NodeGrain) current(ref *pb.ClusterLinkRef) bool {
	pid := linkPID(ref)
	return g.link != nil && pid != nil && g.link.Equal(pid)
}

func (g *NodeGrain) onDetach(ctx actor.Context, m *pb.ClusterDetachStream) {
	if !g.current(m.GetLink()) {
		return
	}
	g.log.Info("control stream detached", slog.String("reason", m.GetReason()), slog.String("stream_member", g.linkRef.GetMember()))
	ctx.Unwatch(g.link)
	g.link, g.linkRef = nil, nil
}

// onTerminated: the link's member died (or the link stopped); the node reconnects to another member.
func (g *NodeGrain) onTerminated(m *actor.Terminated) {
	if g.link != nil && g.link.Equal(m.Who) {
		g.log.Info("stream link gone", slog.String("stream_member", g.linkRef.GetMember()), slog.String("why", m.Why.String()))
		g.link, g.linkRef = nil, nil
	}
}

func (g *NodeGrain) onFrame(_ actor.Context, m *pb.ClusterNodeFrame) {
	if !g.current(m.GetLink()) {
		return
	}
	g.forwardResults(m.GetFrame()) // per-miner results of org commands (commands_forward.go)
	var seq uint64
	switch f := m.GetFrame().GetMsg().(type) {
	case *pb.NodeToCloud_Ack:
		if !final(f.Ack.GetCode()) {
			return
		}
		g.log.Info("node refused or finished command at ack", slog.String("command", f.Ack.GetCommandId()),
			slog.Uint64("seq", f.Ack.GetMonotonicSeq()), slog.String("code", f.Ack.GetCode().String()))
		seq = f.Ack.GetMonotonicSeq()
	case *pb.NodeToCloud_Result:
		if !f.Result.GetDone() {
			return
		}
		seq = f.Result.GetMonotonicSeq()
	default:
		g.log.Warn("node grain: unexpected frame", slog.String("type", fmt.Sprintf("%T", f)))
		return
	}
	if err := g.env.cfg.Store.Dequeue(g.id, seq); err != nil {
		g.log.Error("dequeue", slog.Uint64("seq", seq), slog.Any("err", err))
	}
}

func final(c pb.ResultCode) bool {
	switch c {
	case pb.ResultCode_RESULT_CODE_UNSPECIFIED, pb.ResultCode_RESULT_CODE_PENDING, pb.ResultCode_RESULT_CODE_RUNNING,
		pb.ResultCode_RESULT_CODE_DUPLICATE:
		return false
	}
	return true
}

func (g *NodeGrain) onIssue(ctx actor.Context, m *pb.ClusterIssueCommand) {
	reply := &pb.ClusterIssueReply{GrainMember: g.member}
	if err := store.ValidID(m.GetCommandId()); err != nil || m.GetNodeId() != g.id {
		reply.Error = fmt.Sprintf("%v: command id %q for node %q", ErrInvalid, m.GetCommandId(), m.GetNodeId())
		ctx.Respond(reply)
		return
	}
	sign, err := keyCommandSigner(g.env.cfg.Signer, m.GetPayload()) // keys.go: announcements signed by the key they retire
	if err != nil {
		g.log.Warn("command refused before queueing", slog.String("command", m.GetCommandId()), slog.Any("err", err))
		reply.Error = err.Error()
		ctx.Respond(reply)
		return
	}
	cmd, existed, err := g.env.cfg.Store.IssueOnce(g.id, m.GetCommandId(), func(seq uint64) (*pb.ControlCommand, error) {
		cmd := &pb.ControlCommand{CommandId: m.GetCommandId(), Actor: m.GetActor(), NodeId: g.id, MonotonicSeq: seq,
			LeaseEpoch: g.hello.GetLeaseEpoch(), IdempotencyKey: m.GetCommandId(), Payload: m.GetPayload(),
			IssuedAtUnixMs: m.GetIssuedAtUnixMs()}
		if sign != nil {
			if err := sign(cmd); err != nil {
				return nil, fmt.Errorf("sign: %w", err)
			}
		}
		return cmd, nil
	})
	if err != nil {
		g.log.Error("could not queue command", slog.String("command", m.GetCommandId()), slog.Any("err", err))
		reply.Error = err.Error()
		ctx.Respond(reply)
		return
	}
	reply.Seq = cmd.GetMonotonicSeq()
	// A command issued again (its first answer was lost) is not sent again: it is in the queue and the
	// node's next hello gets it if the first send did not arrive.
	if g.link != nil && !existed {
		ctx.Send(g.link, deliver(cmd))
		reply.Sent, reply.StreamMember = true, g.linkRef.GetMember()
	}
	g.log.Info("command queued", slog.String("command", m.GetCommandId()), slog.Uint64("seq", reply.Seq),
		slog.Bool("sent", reply.Sent), slog.Bool("issued_before", existed), slog.String("stream_member", reply.StreamMember))
	ctx.Respond(reply)
}

func (g *NodeGrain) onIngest(ctx actor.Context, m *pb.ClusterIngestTelemetry) {
	b := m.GetBatch()
	reply := &pb.ClusterIngestReply{}
	var samples []*pb.Telemetry
	for _, t := range b.GetSamples() {
		if store.ValidID(t.GetMinerId()) != nil {
			reply.Rejected++
			continue
		}
		samples = append(samples, t)
	}
	dup, err := g.env.cfg.Store.ApplyOnce(store.Batch{Telemetry: samples,
		Mark: &store.Mark{Node: g.id, Kind: store.KindTelemetry, Seq: b.GetBatchSeq()}})
	switch {
	case err != nil:
		reply.Error = err.Error()
		g.log.Error("ingest telemetry", slog.Uint64("batch_seq", b.GetBatchSeq()), slog.Any("err", err))
	case dup:
		reply.Duplicate = true
	default:
		reply.Applied = int32(len(samples))
	}
	ctx.Respond(reply)
}

func (g *NodeGrain) onStatus(ctx actor.Context) {
	last, _, err := g.env.cfg.Store.NodeQueue(g.id)
	if err != nil {
		g.log.Error("status: load seq", slog.Any("err", err))
	}
	ctx.Respond(&pb.ClusterNodeStatusReply{NodeId: g.id, GrainMember: g.member, StreamMember: g.linkRef.GetMember(),
		LastSeq: last, Connected: g.link != nil})
}

// linkPID returns the PID a link reference names; nil when malformed.
func linkPID(r *pb.ClusterLinkRef) *actor.PID {
	if r.GetAddress() == "" || r.GetId() == "" {
		return nil
	}
	return actor.NewPID(r.GetAddress(), r.GetId())
}
