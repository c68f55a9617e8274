// Package gatewaytest is a fake cloud Gateway for node tests: a real grpc.Server on a loopback TCP listener
// implementing pb.GatewayServer per docs/GATEWAY.md, recording everything a node sends and letting the test
// push commands, send goaway, drop every stream, refuse connections, or withhold acks and pongs.
package gatewaytest

import (
	"context"
	"net"
	"slices"
	"sync"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Hello is one ControlStream opening as the server saw it.
type Hello struct {
	Msg *pb.ControlHello
	// NodeMD and Auth are the x-hashfleet-node and authorization metadata.
	NodeMD, Auth string
}

// Server is the fake gateway.
type Server struct {
	pb.UnimplementedGatewayServer
	lis net.Listener
	srv *grpc.Server

	mu           sync.Mutex
	devices      []*pb.Device
	refuse       bool
	withholdAcks bool
	mutePongs    bool
	drop         chan struct{}
	control      chan *pb.CloudToNode // the newest control stream's outbox
	hellos       []Hello
	telemetry    []*pb.TelemetryBatch // every batch received, re-sends included
	events       []*pb.EventBatch
	appliedT     map[uint64]bool
	appliedE     map[uint64]bool
	acks         []*pb.CommandAck
	results      []*pb.CommandResultReport
	pings        int
	streamsOpen  int
	pingEpochs   []uint64
	leases       []*pb.LeaseRequest
	leaseFn      func(*pb.LeaseRequest) []*pb.CloudToNode
	pingFn       func(*pb.HeartbeatPing)
	helloFn      func(*pb.ControlHello, *pb.HelloAck)
}

// OnLease answers every lease request with what fn returns (sent on the requesting stream). Nil: requests
// are recorded and not answered.
func (s *Server) OnLease(fn func(*pb.LeaseRequest) []*pb.CloudToNode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaseFn = fn
}

// OnPing calls fn for every heartbeat, muted or not (a cloud's "heard from the node").
func (s *Server) OnPing(fn func(*pb.HeartbeatPing)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pingFn = fn
}

// OnHello lets fn edit each HelloAck before it is sent (e.g. set HelloAck.pair from the hello's gossip_addr).
func (s *Server) OnHello(fn func(*pb.ControlHello, *pb.HelloAck)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.helloFn = fn
}

// LeaseRequests returns every lease request received.
func (s *Server) LeaseRequests() []*pb.LeaseRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pb.LeaseRequest(nil), s.leases...)
}

// PingEpochs returns the lease_epoch of every heartbeat received.
func (s *Server) PingEpochs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.pingEpochs...)
}

// Start listens on 127.0.0.1:0 and serves.
func Start() (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{lis: lis, srv: grpc.NewServer(), drop: make(chan struct{}), appliedT: map[uint64]bool{}, appliedE: map[uint64]bool{}}
	pb.RegisterGatewayServer(s.srv, s)
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

// Addr is the listen address.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Dial is a node Config.Dial for this server.
func (s *Server) Dial(ctx context.Context) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// Stop stops the server, ending every stream.
func (s *Server) Stop() {
	s.srv.Stop()
}

// SetDevices sets the ownership map sent in HelloAck.
func (s *Server) SetDevices(d []*pb.Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices = d
}

// Refuse makes new ControlStreams fail with Unavailable (a cloud that is down).
func (s *Server) Refuse(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = on
}

// WithholdAcks stops acking telemetry and event batches (they are still recorded).
func (s *Server) WithholdAcks(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.withholdAcks = on
}

// MutePongs stops answering heartbeats.
func (s *Server) MutePongs(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mutePongs = on
}

// DropAll ends every open stream with Unavailable, as a cloud restart or a network cut would.
func (s *Server) DropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drop)
	s.drop = make(chan struct{})
	s.control = nil
}

// Send pushes a message on the newest control stream; false when none is open.
func (s *Server) Send(m *pb.CloudToNode) bool {
	s.mu.Lock()
	ch := s.control
	s.mu.Unlock()
	if ch == nil {
		return false
	}
	ch <- m
	return true
}

// SendCommand pushes a command on the newest control stream.
func (s *Server) SendCommand(c *pb.ControlCommand) bool {
	return s.Send(&pb.CloudToNode{Msg: &pb.CloudToNode_Command{Command: c}})
}

// Goaway sends ControlGoaway and then ends every stream, as a draining server does.
func (s *Server) Goaway(reason string, reconnectAfterMs int64) bool {
	if !s.Send(&pb.CloudToNode{Msg: &pb.CloudToNode_Goaway{Goaway: &pb.ControlGoaway{Reason: reason, ReconnectAfterMs: reconnectAfterMs}}}) {
		return false
	}
	return true
}

// Hellos returns every hello received.
func (s *Server) Hellos() []Hello {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hellos)
}

// TelemetrySeqs returns the batch_seq of every telemetry batch received, in arrival order, re-sends included.
func (s *Server) TelemetrySeqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, 0, len(s.telemetry))
	for _, b := range s.telemetry {
		out = append(out, b.GetBatchSeq())
	}
	return out
}

// Telemetry returns every telemetry batch received.
func (s *Server) Telemetry() []*pb.TelemetryBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.telemetry)
}

// AppliedTelemetry returns the distinct telemetry batch seqs applied (what a dedup-by-seq cloud keeps).
func (s *Server) AppliedTelemetry() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.appliedT)
}

// Events returns every event received, re-sends included.
func (s *Server) Events() []*pb.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pb.Event
	for _, b := range s.events {
		out = append(out, b.GetEvents()...)
	}
	return out
}

// Acks returns every CommandAck received.
func (s *Server) Acks() []*pb.CommandAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// Results returns every CommandResultReport received.
func (s *Server) Results() []*pb.CommandResultReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.results)
}

// Pings counts heartbeats received.
func (s *Server) Pings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings
}

// OpenStreams counts the streams being served now.
func (s *Server) OpenStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streamsOpen
}

var errDropped = status.Error(codes.Unavailable, "gatewaytest: stream dropped")

// enter registers a stream and returns the drop channel it must watch.
func (s *Server) enter() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streamsOpen++
	return s.drop
}

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.streamsOpen--
}

// pump reads a stream into a channel in a goroutine that ends with the stream.
func pump[T any](ctx context.Context, recv func() (*T, error)) <-chan *T {
	ch := make(chan *T)
	go func() {
		defer close(ch)
		for {
			m, err := recv()
			if err != nil {
				return
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// ControlStream implements pb.GatewayServer.
func (s *Server) ControlStream(stream grpc.BidiStreamingServer[pb.NodeToCloud, pb.CloudToNode]) error {
	drop := s.enter()
	defer s.leave()
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	if refuse {
		return status.Error(codes.Unavailable, "gatewaytest: refusing")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "first message must be hello")
	}
	md, _ := metadata.FromIncomingContext(stream.Context())
	h := Hello{Msg: hello}
	if v := md.Get("x-hashfleet-node"); len(v) > 0 {
		h.NodeMD = v[0]
	}
	if v := md.Get("authorization"); len(v) > 0 {
		h.Auth = v[0]
	}
	out := make(chan *pb.CloudToNode, 64)
	s.mu.Lock()
	s.hellos = append(s.hellos, h)
	ack := &pb.HelloAck{NodeId: hello.GetNodeId(), NextSeq: hello.GetLastSeq() + 1, Devices: s.devices}
	s.control = out // newest stream wins
	helloFn := s.helloFn
	s.mu.Unlock()
	if helloFn != nil {
		helloFn(hello, ack)
	}
	if err := stream.Send(&pb.CloudToNode{Msg: &pb.CloudToNode_HelloAck{HelloAck: ack}}); err != nil {
		return err
	}
	in := pump(stream.Context(), stream.Recv)
	for {
		select {
		case <-drop:
			return errDropped
		case <-stream.Context().Done():
			return stream.Context().Err()
		case m := <-out:
			if err := stream.Send(m); err != nil {
				return err
			}
			if m.GetGoaway() != nil {
				s.mu.Lock()
				if s.control == out {
					s.control = nil
				}
				s.mu.Unlock()
				return nil
			}
		case m, ok := <-in:
			if !ok {
				return nil
			}
			s.mu.Lock()
			switch x := m.GetMsg().(type) {
			case *pb.NodeToCloud_Ack:
				s.acks = append(s.acks, x.Ack)
			case *pb.NodeToCloud_Result:
				s.results = append(s.results, x.Result)
			case *pb.NodeToCloud_LeaseRequest:
				s.leases = append(s.leases, x.LeaseRequest)
			}
			leaseFn := s.leaseFn
			s.mu.Unlock()
			if lr := m.GetLeaseRequest(); lr != nil && leaseFn != nil {
				for _, r := range leaseFn(lr) {
					if err := stream.Send(r); err != nil {
						return err
					}
				}
			}
		}
	}
}

func (s *Server) upload(drop <-chan struct{}, ctx context.Context, in <-chan uint64, send func(uint64) error) error {
	for {
		select {
		case <-drop:
			return errDropped
		case <-ctx.Done():
			return ctx.Err()
		case seq, ok := <-in:
			if !ok {
				return nil
			}
			s.mu.Lock()
			withhold := s.withholdAcks
			s.mu.Unlock()
			if withhold {
				continue
			}
			if err := send(seq); err != nil {
				return err
			}
		}
	}
}

// UploadTelemetry implements pb.GatewayServer: records, dedups by batch_seq, acks.
func (s *Server) UploadTelemetry(stream grpc.BidiStreamingServer[pb.TelemetryBatch, pb.Ack]) error {
	drop := s.enter()
	defer s.leave()
	batches := pump(stream.Context(), stream.Recv)
	seqs := make(chan uint64)
	go func() {
		defer close(seqs)
		for b := range batches {
			s.mu.Lock()
			s.telemetry = append(s.telemetry, b)
			s.appliedT[b.GetBatchSeq()] = true
			s.mu.Unlock()
			select {
			case seqs <- b.GetBatchSeq():
			case <-stream.Context().Done():
			}
		}
	}()
	return s.upload(drop, stream.Context(), seqs, func(seq uint64) error {
		return stream.Send(&pb.Ack{BatchSeq: seq, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED})
	})
}

// UploadEvents implements pb.GatewayServer.
func (s *Server) UploadEvents(stream grpc.BidiStreamingServer[pb.EventBatch, pb.Ack]) error {
	drop := s.enter()
	defer s.leave()
	batches := pump(stream.Context(), stream.Recv)
	seqs := make(chan uint64)
	go func() {
		defer close(seqs)
		for b := range batches {
			s.mu.Lock()
			s.events = append(s.events, b)
			s.appliedE[b.GetBatchSeq()] = true
			s.mu.Unlock()
			select {
			case seqs <- b.GetBatchSeq():
			case <-stream.Context().Done():
			}
		}
	}()
	return s.upload(drop, stream.Context(), seqs, func(seq uint64) error {
		return stream.Send(&pb.Ack{BatchSeq: seq, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED})
	})
}

// Heartbeat implements pb.GatewayServer.
func (s *Server) Heartbeat(stream grpc.BidiStreamingServer[pb.HeartbeatPing, pb.HeartbeatPong]) error {
	drop := s.enter()
	defer s.leave()
	in := pump(stream.Context(), stream.Recv)
	for {
		select {
		case <-drop:
			return errDropped
		case <-stream.Context().Done():
			return stream.Context().Err()
		case p, ok := <-in:
			if !ok {
				return nil
			}
			s.mu.Lock()
			s.pings++
			s.pingEpochs = append(s.pingEpochs, p.GetLeaseEpoch())
			mute, pingFn := s.mutePongs, s.pingFn
			s.mu.Unlock()
			if pingFn != nil {
				pingFn(p)
			}
			if mute {
				continue
			}
			if err := stream.Send(&pb.HeartbeatPong{ServerTimeUnixMs: p.GetSentAtUnixMs()}); err != nil {
				return err
			}
		}
	}
}
