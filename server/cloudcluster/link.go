package cloudcluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/protobuf/proto"
)

// reattach is the link's own tick: try attaching to the Node grain again.
type reattach struct{}

// attachResult carries a Node grain's answer back into the link.
type attachResult struct {
	grain *actor.PID
	reply any
	err   error
}

// leaseResult carries a Lease grain's answer back into the link.
type leaseResult struct {
	reply any
	err   error
}

// StreamLink is the member-local end of one node's control stream: the gateway's NodeSession talks to it
// as it would to a local Node actor (AttachSession, SessionFrame, DetachSession in; SendFrame, Goaway
// out), and it relays to the node's Node grain wherever the cluster placed it. It watches the grain: when
// the grain's member dies it attaches again (the grain re-activates on a live member) with backoff, telling
// the grain the highest seq the node has reported so only newer commands are resent.
type StreamLink struct {
	env  *env
	node string
	log  *slog.Logger
	ref  *pb.ClusterLinkRef

	session  *actor.PID
	hello    *pb.ControlHello
	reported uint64 // highest seq the node acked or reported on this member
	grain    *actor.PID
	backoff  time.Duration
	timer    clock.Timer
}

func newStreamLink(e *env, node string) *StreamLink {
	return &StreamLink{env: e, node: node, log: e.log.With(slog.String("node", node), slog.String("actor", "stream-link"))}
}

// Receive dispatches each message to its handler.
func (l *StreamLink) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		l.ref = &pb.ClusterLinkRef{Address: ctx.Self().Address, Id: ctx.Self().Id, Member: ctx.ActorSystem().ID}
	case *grains.AttachSession:
		l.onSession(ctx, m)
	case *grains.SessionFrame:
		l.onSessionFrame(ctx, m)
	case *grains.DetachSession:
		l.onSessionGone(ctx, m)
	case *grains.Heartbeat:
	case *pb.ClusterDeliver:
		l.onDeliver(ctx, m)
	case *pb.ClusterGoaway:
		l.onGoaway(ctx, m)
	case *actor.Terminated:
		l.onGrainGone(ctx, m)
	case *reattach:
		l.attach(ctx)
	case *attachResult:
		l.onAttached(ctx, m)
	case *leaseResult:
		l.onLeaseResult(ctx, m)
	case *actor.Stopping:
		l.stopTimer()
	case *actor.Stopped, *actor.Restarting:
	default:
		l.log.Warn("stream link: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (l *StreamLink) onSession(ctx actor.Context, m *grains.AttachSession) {
	if l.session != nil && !l.session.Equal(m.Session) {
		ctx.Send(l.session, &grains.Goaway{Reason: "replaced by a newer control stream", ReconnectAfter: replacedReconnectAfterMs * time.Millisecond})
	}
	l.session, l.hello = m.Session, m.Hello
	l.reported = m.Hello.GetLastSeq()
	l.backoff = 0
	l.attach(ctx)
}

// attach asks the Node grain to take this link as the node's stream. The lookup may activate the grain on
// another member; the reply comes back as attachResult.
func (l *StreamLink) attach(ctx actor.Context) {
	l.stopTimer()
	if l.session == nil {
		return
	}
	c := l.env.cluster
	pid := c.Get(l.node, KindNode)
	if pid == nil {
		l.retry(ctx, fmt.Errorf("no member can host node grain %s", l.node))
		return
	}
	hello := proto.Clone(l.hello).(*pb.ControlHello)
	hello.LastSeq = max(hello.GetLastSeq(), l.reported)
	f := ctx.RequestFuture(pid, &pb.ClusterAttachStream{NodeId: l.node, Link: l.ref, Hello: hello}, l.env.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res any, err error) {
		ctx.Send(ctx.Self(), &attachResult{grain: pid, reply: res, err: err})
	})
}

func (l *StreamLink) onAttached(ctx actor.Context, m *attachResult) {
	if l.session == nil {
		return
	}
	if m.err != nil {
		l.env.cluster.PidCache.Remove(l.node, KindNode)
		l.retry(ctx, m.err)
		return
	}
	r, ok := m.reply.(*pb.ClusterAttachReply)
	if !ok {
		l.retry(ctx, fmt.Errorf("node grain answered %T", m.reply))
		return
	}
	if l.grain != nil && !l.grain.Equal(m.grain) {
		ctx.Unwatch(l.grain)
	}
	l.grain, l.backoff = m.grain, 0
	ctx.Watch(m.grain)
	l.log.Info("attached to node grain", slog.String("grain_member", r.GetGrainMember()), slog.Uint64("last_seq", r.GetLastSeq()))
}

func (l *StreamLink) retry(ctx actor.Context, err error) {
	base := l.env.cfg.ReattachBackoff
	switch {
	case l.backoff == 0:
		l.backoff = base
	case l.backoff < 8*base:
		l.backoff *= 2
	}
	l.log.Warn("attach to node grain failed; retrying", slog.Duration("after", l.backoff), slog.Any("err", err))
	l.stopTimer()
	l.timer = actors.SendAfter(l.env.cfg.Clock, ctx.ActorSystem(), ctx.Self(), l.backoff, &reattach{})
}

func (l *StreamLink) stopTimer() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// onGrainGone: the Node grain stopped or its member died; attach to the next activation.
func (l *StreamLink) onGrainGone(ctx actor.Context, m *actor.Terminated) {
	if l.grain == nil || !l.grain.Equal(m.Who) {
		return
	}
	l.grain = nil
	l.env.cluster.PidCache.Remove(l.node, KindNode)
	if l.session == nil {
		return
	}
	l.log.Info("node grain gone; attaching to its next activation", slog.String("why", m.Why.String()))
	l.retry(ctx, fmt.Errorf("grain terminated: %s", m.Why))
}

func (l *StreamLink) onSessionFrame(ctx actor.Context, m *grains.SessionFrame) {
	if l.session == nil || !l.session.Equal(m.Session) {
		return
	}
	switch f := m.Frame.GetMsg().(type) {
	case *pb.NodeToCloud_Ack:
		l.reported = max(l.reported, f.Ack.GetMonotonicSeq())
	case *pb.NodeToCloud_Result:
		l.reported = max(l.reported, f.Result.GetMonotonicSeq())
	case *pb.NodeToCloud_LeaseRequest:
		l.lease(ctx, f.LeaseRequest)
		return
	}
	if l.grain == nil {
		l.log.Debug("frame while not attached; the node grain resends what is unreported", slog.String("type", fmt.Sprintf("%T", m.Frame.GetMsg())))
		return
	}
	ctx.Send(l.grain, &pb.ClusterNodeFrame{NodeId: l.node, Link: l.ref, Frame: m.Frame})
}

// lease relays a node's lease request to the pair's Lease grain and its answer back to the stream.
func (l *StreamLink) lease(ctx actor.Context, req *pb.LeaseRequest) {
	if req.GetNodeId() != l.node || req.GetPairId() == "" {
		l.log.Warn("lease request for another node or no pair refused", slog.String("named_node", req.GetNodeId()))
		return
	}
	pid := l.env.cluster.Get(req.GetPairId(), KindLease)
	if pid == nil {
		ctx.Send(l.session, &grains.SendFrame{Frame: &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseDenied{LeaseDenied: &pb.LeaseDenied{
			PairId: req.GetPairId(), RequestId: req.GetRequestId(), Reason: "no member can host the pair's lease grain"}}}})
		return
	}
	f := ctx.RequestFuture(pid, req, l.env.cfg.RequestTimeout)
	ctx.ReenterAfter(f, func(res any, err error) { ctx.Send(ctx.Self(), &leaseResult{reply: res, err: err}) })
}

func (l *StreamLink) onLeaseResult(ctx actor.Context, m *leaseResult) {
	if l.session == nil {
		return
	}
	var frame *pb.CloudToNode
	switch r := m.reply.(type) {
	case *pb.LeaseGrant:
		frame = &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseGrant{LeaseGrant: r}}
	case *pb.LeaseDenied:
		frame = &pb.CloudToNode{Msg: &pb.CloudToNode_LeaseDenied{LeaseDenied: r}}
	default:
		l.log.Warn("lease request not answered; the node retries", slog.Any("err", m.err), slog.String("reply", fmt.Sprintf("%T", m.reply)))
		return
	}
	ctx.Send(l.session, &grains.SendFrame{Frame: frame})
}

func (l *StreamLink) onSessionGone(ctx actor.Context, m *grains.DetachSession) {
	if l.session == nil || !l.session.Equal(m.Session) {
		return
	}
	l.session = nil
	l.stopTimer()
	if l.grain != nil {
		ctx.Send(l.grain, &pb.ClusterDetachStream{NodeId: l.node, Link: l.ref, Reason: m.Reason})
		ctx.Unwatch(l.grain)
		l.grain = nil
	}
}

func (l *StreamLink) onDeliver(ctx actor.Context, m *pb.ClusterDeliver) {
	if l.session == nil {
		return // the grain sees the detach, or the node's next hello gets the command again
	}
	ctx.Send(l.session, &grains.SendFrame{Frame: m.GetFrame()})
}

func (l *StreamLink) onGoaway(ctx actor.Context, m *pb.ClusterGoaway) {
	if l.session == nil {
		return
	}
	ctx.Send(l.session, &grains.Goaway{Reason: m.GetReason(), ReconnectAfter: time.Duration(m.GetReconnectAfterMs()) * time.Millisecond})
	l.session = nil
	l.stopTimer()
	if l.grain != nil {
		ctx.Unwatch(l.grain)
		l.grain = nil
	}
}
