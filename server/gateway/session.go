package gateway

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bridge joins a NodeSession actor and the ControlStream handler goroutine that owns the stream. The actor
// only enqueues (never blocks); the handler is the stream's only writer.
type bridge struct {
	out  chan *pb.CloudToNode
	once sync.Once
	done chan struct{}
	err  error // status the handler returns; set before done is closed
}

func newBridge(size int) *bridge {
	return &bridge{out: make(chan *pb.CloudToNode, size), done: make(chan struct{})}
}

// close ends the stream after the frames already queued; err is what the handler returns (nil: OK).
func (b *bridge) close(err error) {
	b.once.Do(func() {
		b.err = err
		close(b.done)
	})
}

// inbound is a frame the stream's reader received.
type inbound struct{ frame *pb.NodeToCloud }

// streamEnded tells the session its stream is gone (node closed it, network, drain).
type streamEnded struct{ reason string }

// NodeSession bridges one ControlStream into the actors: it attaches to the node's Node actor, forwards the
// node's acks and results to it, and writes what the Node actor sends (hello_ack, commands, goaway) to the
// stream through the handler. It stops when the stream ends or it is told to go away.
type NodeSession struct {
	node    string
	nodePID *actor.PID
	hello   *pb.ControlHello
	b       *bridge
	log     *slog.Logger
	metrics *Metrics
	gone    bool
}

func newNodeSession(node string, nodePID *actor.PID, hello *pb.ControlHello, b *bridge, log *slog.Logger, m *Metrics) *NodeSession {
	return &NodeSession{node: node, nodePID: nodePID, hello: hello, b: b, log: log.With(slog.String("node", node)), metrics: m}
}

func (s *NodeSession) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if !s.gone {
			ctx.Send(s.nodePID, &grains.AttachSession{Session: ctx.Self(), Hello: s.hello})
		}
	case *actor.Stopping:
		s.end(ctx, "session stopping", nil)
	case *actor.Stopped, *actor.Restarting:
	case *inbound:
		ctx.Send(s.nodePID, &grains.SessionFrame{Session: ctx.Self(), Frame: m.frame})
	case *grains.SendFrame:
		s.write(ctx, m.Frame)
	case *grains.Goaway:
		s.metrics.goaway("node")
		s.write(ctx, goawayFrame(m.Reason, m.ReconnectAfter.Milliseconds()))
		s.log.Info("control stream told to go away", slog.String("reason", m.Reason))
		s.end(ctx, "goaway: "+m.Reason, nil)
		ctx.Stop(ctx.Self())
	case *streamEnded:
		s.end(ctx, m.reason, nil)
		ctx.Stop(ctx.Self())
	default:
		s.log.Warn("node session: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

// write queues a frame for the stream; a node too slow to read a full queue loses its stream (it
// reconnects and gets its queued commands again).
func (s *NodeSession) write(ctx actor.Context, f *pb.CloudToNode) {
	if s.gone {
		return
	}
	select {
	case s.b.out <- f:
	default:
		s.metrics.reject("control", "slow")
		s.log.Warn("node is not reading its control stream; closing it", slog.Int("queued", cap(s.b.out)))
		s.end(ctx, "outbound queue full", status.Errorf(codes.ResourceExhausted,
			"node did not read %d queued frames; reconnect", cap(s.b.out)))
		ctx.Stop(ctx.Self())
	}
}

// end detaches from the Node actor once and closes the stream after what is queued.
func (s *NodeSession) end(ctx actor.Context, reason string, err error) {
	if s.gone {
		return
	}
	s.gone = true
	ctx.Send(s.nodePID, &grains.DetachSession{Session: ctx.Self(), Reason: reason})
	s.b.close(err)
}

func goawayFrame(reason string, afterMs int64) *pb.CloudToNode {
	return &pb.CloudToNode{Msg: &pb.CloudToNode_Goaway{Goaway: &pb.ControlGoaway{Reason: reason, ReconnectAfterMs: afterMs}}}
}
