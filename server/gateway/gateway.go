package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Fleet is what the gateway needs from the actors. *grains.Fleet implements it.
type Fleet interface {
	System() *actor.ActorSystem
	NodePID(ctx context.Context, nodeID string) (*actor.PID, error)
	IngestTelemetry(ctx context.Context, nodeID string, b *pb.TelemetryBatch) (grains.IngestResult, error)
	IngestEvents(ctx context.Context, nodeID string, b *pb.EventBatch) (grains.IngestResult, error)
}

// Gateway is the cloud half of the node ↔ cloud wire (docs/GATEWAY.md): pb.GatewayServer. Every stream
// handler and every reader goroutine it starts is counted, and Drain waits for them.
type Gateway struct {
	pb.UnimplementedGatewayServer

	cfg   Config
	fleet Fleet
	log   *slog.Logger
	clk   clock.Clock

	mu       sync.Mutex
	draining bool
	// drainControl is closed first: control streams send ControlGoaway and end. drain is closed once they
	// have (plus DrainGrace for nodes to close their other streams themselves): the rest end Unavailable.
	drainControl chan struct{}
	drain        chan struct{}
	control      sync.WaitGroup // control stream handlers
	wg           sync.WaitGroup // every handler and reader
	sess         *sessions
}

var _ pb.GatewayServer = (*Gateway)(nil)

// New returns a gateway over fleet.
func New(cfg Config, fleet Fleet) (*Gateway, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fleet == nil {
		return nil, errors.New("gateway: fleet is required")
	}
	return &Gateway{cfg: cfg, fleet: fleet, log: cfg.Logger, clk: cfg.Clock, drainControl: make(chan struct{}),
		drain: make(chan struct{}), sess: newSessions()}, nil
}

// enter counts a stream handler in, unless the gateway drains.
func (g *Gateway) enter(kind string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		g.cfg.Metrics.reject(kind, "draining")
		return status.Errorf(codes.Unavailable, "%v: server shutting down, reconnect to another member or later", ErrDraining)
	}
	g.wg.Add(1)
	if kind == kindControl {
		g.control.Add(1)
	}
	g.cfg.Metrics.stream(kind, 1)
	return nil
}

func (g *Gateway) leave(kind string) {
	g.cfg.Metrics.stream(kind, -1)
	if kind == kindControl {
		g.control.Done()
	}
	g.wg.Done()
}

const kindControl = "control"

// Drain sends ControlGoaway to every control stream and waits for them to end; gives nodes DrainGrace to
// close their upload and heartbeat streams themselves (a node drops its whole session on goaway, so it sees
// the goaway rather than a stream error); then ends what is left with Unavailable and waits for every
// handler and reader, or for ctx. New streams are refused from the start. The bootstrap calls it (through
// Server.Stop) before stopping its grpc.Server.
func (g *Gateway) Drain(ctx context.Context) error {
	g.mu.Lock()
	if !g.draining {
		g.draining = true
		close(g.drainControl)
	}
	g.mu.Unlock()
	if err := wait(ctx, &g.control); err != nil {
		return fmt.Errorf("gateway drain: control streams: %w", err)
	}
	grace, cancel := context.WithTimeout(ctx, g.cfg.DrainGrace)
	_ = wait(grace, &g.wg)
	cancel()
	g.mu.Lock()
	select {
	case <-g.drain:
	default:
		close(g.drain)
	}
	g.mu.Unlock()
	if err := wait(ctx, &g.wg); err != nil {
		return fmt.Errorf("gateway drain: %w", err)
	}
	return nil
}

// wait waits for wg or ctx. The goroutine it starts ends when wg does (every counted goroutine is stopping).
func wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gateway) authenticate(ctx context.Context, kind string) (string, error) {
	node, err := g.cfg.Authenticator.Authenticate(ctx)
	if err == nil {
		if err := g.checkClientCert(ctx, kind, node); err != nil {
			return "", err
		}
		return node, nil
	}
	g.cfg.Metrics.reject(kind, "unauthenticated")
	g.log.Warn("node stream refused", slog.String("stream", kind), slog.Any("err", err))
	if _, ok := status.FromError(err); ok {
		return "", err
	}
	return "", status.Error(codes.Unauthenticated, err.Error())
}

// reader receives frames on its own goroutine so the handler can select on them, its outbound queue and
// drain. It stops when Recv fails (the stream ended, which happens once the handler returns) or stop is
// closed.
type reader[T any] struct {
	frames chan *T
	errc   chan error
	stop   chan struct{}
}

func startReader[T any](g *Gateway, recv func() (*T, error)) *reader[T] {
	r := &reader[T]{frames: make(chan *T), errc: make(chan error, 1), stop: make(chan struct{})}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			m, err := recv()
			if err != nil {
				r.errc <- err
				return
			}
			select {
			case r.frames <- m:
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

// recvError turns a reader's error into the handler's return value: nil for a clean end, otherwise a
// status with a clear message.
func (g *Gateway) recvError(kind, node string, err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded:
		return nil
	case codes.ResourceExhausted:
		g.cfg.Metrics.reject(kind, "too_large")
		g.log.Warn("node frame too large", slog.String("node", node), slog.String("stream", kind), slog.String("err", st.Message()))
		return status.Errorf(codes.ResourceExhausted, "%s frame too large (limit %d bytes): %s", kind, g.cfg.MaxRecvMsgSize, st.Message())
	case codes.Internal:
		g.cfg.Metrics.reject(kind, "malformed")
		g.log.Warn("node frame malformed", slog.String("node", node), slog.String("stream", kind), slog.String("err", st.Message()))
		return status.Errorf(codes.InvalidArgument, "malformed %s frame: %s", kind, st.Message())
	}
	g.log.Info("node stream ended", slog.String("node", node), slog.String("stream", kind), slog.Any("err", err))
	return err
}

func (g *Gateway) protocolError(kind, node string, code codes.Code, format string, args ...any) error {
	g.cfg.Metrics.reject(kind, "protocol")
	msg := fmt.Sprintf(format, args...)
	g.log.Warn("node broke the gateway protocol", slog.String("node", node), slog.String("stream", kind), slog.String("err", msg))
	return status.Errorf(code, "%v: %s", ErrProtocol, msg)
}

// ControlStream: hello → NodeSession attached to the Node actor → commands out, acks and results in.
func (g *Gateway) ControlStream(stream grpc.BidiStreamingServer[pb.NodeToCloud, pb.CloudToNode]) error {
	const kind = kindControl
	if err := g.enter(kind); err != nil {
		return err
	}
	defer g.leave(kind)
	ctx := stream.Context()
	node, err := g.authenticate(ctx, kind)
	if err != nil {
		return err
	}
	w, err := g.watch(ctx, node)
	if err != nil {
		return err
	}
	defer w.stop()
	rd := startReader(g, stream.Recv)
	defer close(rd.stop)

	hello, err := g.awaitHello(ctx, rd, node)
	if err != nil {
		return err
	}
	if err := g.refresh(ctx, kind, node, hello.GetSessionToken()); err != nil {
		return err
	}
	if g.cfg.Hello != nil {
		if err := g.cfg.Hello(ctx, node, hello); err != nil {
			return g.protocolError(kind, node, codes.PermissionDenied, "hello refused: %v", err)
		}
	}
	nodePID, err := g.fleet.NodePID(ctx, node)
	if err != nil {
		return status.Errorf(codes.Unavailable, "node %s: %v", node, err)
	}
	b := newBridge(g.cfg.OutboundQueue)
	root := g.fleet.System().Root
	session := root.Spawn(actors.Props("node-session", g.cfg.ActorMetrics, func() actor.Actor {
		return newNodeSession(node, nodePID, hello, b, g.log, g.cfg.Metrics)
	}))
	g.log.Info("control stream open", slog.String("node", node), slog.Uint64("last_seq", hello.GetLastSeq()),
		slog.String("version", hello.GetSoftwareVersion()))

	end := func(reason string) { root.Send(session, &streamEnded{reason: reason}) }
	for {
		select {
		case f := <-rd.frames:
			if err := g.checkFrame(kind, node, f); err != nil {
				end(err.Error())
				return err
			}
			// Acks, results and lease requests go to the Node actor, which answers lease requests on this
			// stream through the session (warm-standby pairs, docs/GATEWAY.md).
			root.Send(session, &inbound{frame: f})
		case m := <-b.out:
			if err := stream.Send(m); err != nil {
				end("send failed")
				return err
			}
		case <-b.done:
			if err := flush(stream, b); err != nil {
				return err
			}
			return b.err
		case err := <-rd.errc:
			end("stream ended")
			return g.recvError(kind, node, err)
		case <-w.C():
			if err := w.expired(kind); err != nil {
				end("session expired")
				return err
			}
		case <-g.drainControl:
			end("server draining")
			if err := flush(stream, b); err != nil {
				return err
			}
			g.cfg.Metrics.goaway("drain")
			return stream.Send(goawayFrame("server shutting down", g.cfg.DrainReconnectAfter.Milliseconds()))
		case <-ctx.Done():
			end("context done")
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// flush writes what is already queued (a goaway queued before the bridge closed, commands before drain).
func flush(stream grpc.BidiStreamingServer[pb.NodeToCloud, pb.CloudToNode], b *bridge) error {
	for {
		select {
		case m := <-b.out:
			if err := stream.Send(m); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (g *Gateway) awaitHello(ctx context.Context, rd *reader[pb.NodeToCloud], node string) (*pb.ControlHello, error) {
	const kind = kindControl
	t := time.NewTimer(g.cfg.HelloTimeout)
	defer t.Stop()
	select {
	case f := <-rd.frames:
		h := f.GetHello()
		if h == nil {
			return nil, g.protocolError(kind, node, codes.InvalidArgument, "first control frame must be hello, got %s", frameName(f))
		}
		if h.GetNodeId() != "" && h.GetNodeId() != node {
			return nil, g.protocolError(kind, node, codes.PermissionDenied, "hello names node %q but the stream is authenticated as %q", h.GetNodeId(), node)
		}
		return h, nil
	case err := <-rd.errc:
		return nil, g.recvError(kind, node, err)
	case <-t.C:
		return nil, g.protocolError(kind, node, codes.DeadlineExceeded, "no hello within %s", g.cfg.HelloTimeout)
	case <-g.drainControl:
		return nil, status.Errorf(codes.Unavailable, "%v: server shutting down", ErrDraining)
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

func (g *Gateway) checkFrame(kind, node string, f *pb.NodeToCloud) error {
	switch f.GetMsg().(type) {
	case nil:
		return g.protocolError(kind, node, codes.InvalidArgument, "empty control frame (no hello, ack, result or lease_request)")
	case *pb.NodeToCloud_Hello:
		return g.protocolError(kind, node, codes.InvalidArgument, "hello sent twice on one stream")
	}
	return nil
}

func frameName(f *pb.NodeToCloud) string {
	switch f.GetMsg().(type) {
	case *pb.NodeToCloud_Ack:
		return "ack"
	case *pb.NodeToCloud_Result:
		return "result"
	case *pb.NodeToCloud_LeaseRequest:
		return "lease_request"
	case *pb.NodeToCloud_Hello:
		return "hello"
	}
	return "an empty frame"
}

// UploadTelemetry applies each batch and acks it by batch_seq once applied (a duplicate is acked again and
// not applied twice). A batch the store could not take is answered FAILED so the node keeps it.
// Frames are received with each sample's bytes kept (wireCodec, installed by ServerOptions), which the
// fleet stores as they are.
func (g *Gateway) UploadTelemetry(stream grpc.BidiStreamingServer[pb.TelemetryBatch, pb.Ack]) error {
	recv := func() (*receivedTelemetry, error) {
		r := newReceivedTelemetry()
		if err := stream.RecvMsg(r); err != nil {
			return nil, err
		}
		return r, nil
	}
	return upload(g, "telemetry", stream, recv, func(b *receivedTelemetry) (string, string) { return b.GetNodeId(), b.GetSessionToken() },
		g.ingestTelemetry, func(b *receivedTelemetry) uint64 { return b.GetBatchSeq() })
}

// UploadEvents is UploadTelemetry for event batches.
func (g *Gateway) UploadEvents(stream grpc.BidiStreamingServer[pb.EventBatch, pb.Ack]) error {
	return upload(g, "events", stream, stream.Recv, func(b *pb.EventBatch) (string, string) { return b.GetNodeId(), b.GetSessionToken() },
		func(ctx context.Context, node string, b *pb.EventBatch) (grains.IngestResult, error) {
			return g.fleet.IngestEvents(ctx, node, b)
		}, func(b *pb.EventBatch) uint64 { return b.GetBatchSeq() })
}

// ackStream is the sending half of an upload stream.
type ackStream interface {
	Context() context.Context
	Send(*pb.Ack) error
}

func upload[B any](g *Gateway, kind string, stream ackStream, recv func() (*B, error), nodeOf func(*B) (node, token string),
	ingest func(context.Context, string, *B) (grains.IngestResult, error), seqOf func(*B) uint64) error {
	if err := g.enter(kind); err != nil {
		return err
	}
	defer g.leave(kind)
	ctx := stream.Context()
	node, err := g.authenticate(ctx, kind)
	if err != nil {
		return err
	}
	w, err := g.watch(ctx, node)
	if err != nil {
		return err
	}
	defer w.stop()
	rd := startReader(g, recv)
	defer close(rd.stop)
	for {
		select {
		case <-w.C():
			if err := w.expired(kind); err != nil {
				return err
			}
		case b := <-rd.frames:
			n, tok := nodeOf(b)
			if n != "" && n != node {
				return g.protocolError(kind, node, codes.PermissionDenied, "batch names node %q but the stream is authenticated as %q", n, node)
			}
			if err := g.refresh(ctx, kind, node, tok); err != nil {
				return err
			}
			seq := seqOf(b)
			ack := &pb.Ack{BatchSeq: seq, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}
			res, err := ingest(ctx, node, b)
			switch {
			case err != nil:
				ack.Code, ack.Message = pb.ResultCode_RESULT_CODE_FAILED, "not applied, send it again: "+err.Error()
			case res.Duplicate:
				ack.Message = "duplicate: applied before"
			case res.Rejected > 0:
				ack.Message = fmt.Sprintf("applied %d, refused %d (unowned, invalid or older than known)", res.Applied, res.Rejected)
			}
			if err := stream.Send(ack); err != nil {
				return err
			}
		case err := <-rd.errc:
			return g.recvError(kind, node, err)
		case <-g.drain:
			return status.Errorf(codes.Unavailable, "%v: server shutting down, resend unacked batches later", ErrDraining)
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// Heartbeat answers every ping with a pong and records the node's last heartbeat on its Node actor.
func (g *Gateway) Heartbeat(stream grpc.BidiStreamingServer[pb.HeartbeatPing, pb.HeartbeatPong]) error {
	const kind = "heartbeat"
	if err := g.enter(kind); err != nil {
		return err
	}
	defer g.leave(kind)
	ctx := stream.Context()
	node, err := g.authenticate(ctx, kind)
	if err != nil {
		return err
	}
	w, err := g.watch(ctx, node)
	if err != nil {
		return err
	}
	defer w.stop()
	nodePID, err := g.fleet.NodePID(ctx, node)
	if err != nil {
		return status.Errorf(codes.Unavailable, "node %s: %v", node, err)
	}
	root := g.fleet.System().Root
	rd := startReader(g, stream.Recv)
	defer close(rd.stop)
	for {
		select {
		case <-w.C():
			if err := w.expired(kind); err != nil {
				return err
			}
		case p := <-rd.frames:
			if n := p.GetNodeId(); n != "" && n != node {
				return g.protocolError(kind, node, codes.PermissionDenied, "ping names node %q but the stream is authenticated as %q", n, node)
			}
			if err := g.refresh(ctx, kind, node, p.GetSessionToken()); err != nil {
				return err
			}
			now := g.clk.Now()
			root.Send(nodePID, &grains.Heartbeat{At: now, Ping: p})
			if err := stream.Send(&pb.HeartbeatPong{ServerTimeUnixMs: now.UnixMilli()}); err != nil {
				return err
			}
		case err := <-rd.errc:
			return g.recvError(kind, node, err)
		case <-g.drain:
			return status.Errorf(codes.Unavailable, "%v: server shutting down", ErrDraining)
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}
