package uplink

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// session is one connection to the cloud: a ClientConn and the four streams, with the goroutines that read and
// write them. It is created and torn down by the Uplink actor, which owns every goroutine through wg; each
// goroutine turns what it sees into a message to the actor, tagged with the session's gen.
type session struct {
	gen    uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	conn   *grpc.ClientConn

	control   grpc.BidiStreamingClient[pb.NodeToCloud, pb.CloudToNode]
	telemetry grpc.BidiStreamingClient[pb.TelemetryBatch, pb.Ack]
	events    grpc.BidiStreamingClient[pb.EventBatch, pb.Ack]
	heartbeat grpc.BidiStreamingClient[pb.HeartbeatPing, pb.HeartbeatPong]

	controlOut   chan *pb.NodeToCloud
	telemetryOut chan *telemetryFrame
	eventsOut    chan *pb.EventBatch
	heartbeatOut chan *pb.HeartbeatPing

	ack  *pb.HelloAck
	cred Credential // the session Authorize obtained (zero without Authorize)
}

func newSession(gen uint64, queue int) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		gen: gen, ctx: ctx, cancel: cancel,
		controlOut:   make(chan *pb.NodeToCloud, queue),
		telemetryOut: make(chan *telemetryFrame, queue),
		eventsOut:    make(chan *pb.EventBatch, queue),
		heartbeatOut: make(chan *pb.HeartbeatPing, queue),
	}
}

// open dials, opens the four streams, sends the hello and waits for the hello_ack. It runs in the connector
// goroutine; on error the caller closes the session.
func (s *session) open(cfg Config, hello *pb.ControlHello) error {
	dctx, cancel := context.WithTimeout(s.ctx, cfg.HandshakeTimeout)
	defer cancel()
	stop := context.AfterFunc(dctx, func() {
		// The streams live on s.ctx, not on the handshake deadline; a handshake timeout must still unblock
		// Recv below.
		if dctx.Err() == context.DeadlineExceeded {
			s.cancel()
		}
	})
	defer stop()

	conn, err := cfg.Dial(dctx)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	s.conn = conn
	md := metadata.Pairs("x-hashfleet-node", cfg.NodeID)
	tok := ""
	switch {
	case cfg.Authorize != nil:
		if s.cred, err = cfg.Authorize(dctx, conn); err != nil {
			return fmt.Errorf("%w: %w", ErrSession, err)
		}
		tok = s.cred.Token
		hello.SessionToken = tok
	case cfg.SessionToken != nil:
		tok = cfg.SessionToken()
	}
	if tok != "" {
		md.Append("authorization", "Bearer "+tok)
	}
	ctx := metadata.NewOutgoingContext(s.ctx, md)
	gw := pb.NewGatewayClient(conn)
	if s.control, err = gw.ControlStream(ctx); err != nil {
		return fmt.Errorf("open control stream: %w", err)
	}
	if err = s.control.Send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	first, err := s.control.Recv()
	if err != nil {
		if dctx.Err() != nil {
			return fmt.Errorf("%w: no hello_ack within %s", ErrHandshake, cfg.HandshakeTimeout)
		}
		return fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	ack := first.GetHelloAck()
	switch {
	case ack == nil:
		return fmt.Errorf("%w: first message is %T, want hello_ack", ErrHandshake, first.GetMsg())
	case ack.GetNodeId() != "" && ack.GetNodeId() != cfg.NodeID:
		return fmt.Errorf("%w: hello_ack for node %q, this is %q", ErrHandshake, ack.GetNodeId(), cfg.NodeID)
	}
	s.ack = ack
	if s.telemetry, err = gw.UploadTelemetry(ctx, grpc.ForceCodecV2(newPassthroughCodec())); err != nil {
		return fmt.Errorf("open telemetry stream: %w", err)
	}
	if s.events, err = gw.UploadEvents(ctx); err != nil {
		return fmt.Errorf("open events stream: %w", err)
	}
	if s.heartbeat, err = gw.Heartbeat(ctx); err != nil {
		return fmt.Errorf("open heartbeat stream: %w", err)
	}
	return nil
}

// sessionEvent is what a session goroutine reports.
type sessionEvent struct {
	gen    uint64
	stream Stream
	// exactly one of these
	control *pb.CloudToNode
	ack     *pb.Ack
	pong    *pb.HeartbeatPong
	err     error
}

// run starts a reader and a writer per stream. post delivers events to the actor.
func (s *session) run(post func(*sessionEvent)) {
	read := func(st Stream, recv func() (*sessionEvent, error)) {
		defer s.wg.Done()
		for {
			ev, err := recv()
			if err != nil {
				post(&sessionEvent{gen: s.gen, stream: st, err: fmt.Errorf("%s stream: %w", st, err)})
				return
			}
			ev.gen, ev.stream = s.gen, st
			post(ev)
		}
	}
	s.wg.Add(8)
	go read(StreamControl, func() (*sessionEvent, error) {
		m, err := s.control.Recv()
		return &sessionEvent{control: m}, err
	})
	go read(StreamTelemetry, func() (*sessionEvent, error) {
		m, err := s.telemetry.Recv()
		return &sessionEvent{ack: m}, err
	})
	go read(StreamEvents, func() (*sessionEvent, error) {
		m, err := s.events.Recv()
		return &sessionEvent{ack: m}, err
	})
	go read(StreamHeartbeat, func() (*sessionEvent, error) {
		m, err := s.heartbeat.Recv()
		return &sessionEvent{pong: m}, err
	})
	go write(s, StreamControl, s.controlOut, s.control.Send, post)
	go write(s, StreamTelemetry, s.telemetryOut, s.sendTelemetry, post)
	go write(s, StreamEvents, s.eventsOut, s.events.Send, post)
	go write(s, StreamHeartbeat, s.heartbeatOut, s.heartbeat.Send, post)
}

func write[T any](s *session, st Stream, ch <-chan *T, send func(*T) error, post func(*sessionEvent)) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case m := <-ch:
			if err := send(m); err != nil {
				post(&sessionEvent{gen: s.gen, stream: st, err: fmt.Errorf("%s stream send: %w", st, err)})
				return
			}
		}
	}
}

// sendTelemetry writes one frame on the telemetry stream: its encoding as it is when it has one.
func (s *session) sendTelemetry(f *telemetryFrame) error {
	if f.wire != nil {
		return s.telemetry.SendMsg(&preEncoded{b: f.wire})
	}
	return s.telemetry.Send(f.batch)
}

// close cancels the streams and closes the connection once every session goroutine has returned. It blocks
// for that long: the actor calls it from a goroutine it owns, or while stopping.
func (s *session) close() {
	s.cancel()
	s.wg.Wait()
	if s.conn != nil {
		_ = s.conn.Close()
	}
}

// sentResult is a result report written on a session, kept to re-send after a drop.
type sentResult struct {
	msg *pb.NodeToCloud
	at  time.Time
}
