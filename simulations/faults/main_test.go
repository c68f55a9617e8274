package faults

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gateway is a stand-in for the cloud's gateway on the real service definition: Heartbeat answers each
// ping with a pong carrying the ping's sent_at (used as a sequence number), Challenge counts calls.
type gateway struct {
	pb.UnimplementedGatewayServer
	mu         sync.Mutex
	pings      []int64
	challenges int
}

func (g *gateway) Heartbeat(s grpc.BidiStreamingServer[pb.HeartbeatPing, pb.HeartbeatPong]) error {
	for {
		p, err := s.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.pings = append(g.pings, p.GetSentAtUnixMs())
		g.mu.Unlock()
		if err := s.Send(&pb.HeartbeatPong{ServerTimeUnixMs: p.GetSentAtUnixMs()}); err != nil {
			return err
		}
	}
}

func (g *gateway) Challenge(_ context.Context, r *pb.ChallengeRequest) (*pb.ChallengeResponse, error) {
	g.mu.Lock()
	g.challenges++
	g.mu.Unlock()
	return &pb.ChallengeResponse{Nonce: []byte(r.GetNodeId())}, nil
}

func (g *gateway) received() []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int64(nil), g.pings...)
}

func (g *gateway) challengeCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.challenges
}

// startGateway serves a gateway on loopback until the test ends.
func startGateway(t *testing.T, opts ...grpc.ServerOption) (string, *gateway) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{}
	srv := grpc.NewServer(opts...)
	pb.RegisterGatewayServer(srv, g)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String(), g
}

// dial connects a gateway client to addr with a fast reconnect, closed when the test ends.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) pb.GatewayClient {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: 500 * time.Millisecond,
		}),
	}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewGatewayClient(cc)
}

// heartbeat opens a Heartbeat stream that is cancelled when the test ends.
func heartbeat(t *testing.T, c pb.GatewayClient) (grpc.BidiStreamingClient[pb.HeartbeatPing, pb.HeartbeatPong], context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Heartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, cancel
}

func ping(n int64) *pb.HeartbeatPing { return &pb.HeartbeatPing{NodeId: "n1", SentAtUnixMs: n} }

// recvWithin receives one pong, or reports that none came within d (the receive goes on in the background
// and its result is delivered on the returned channel).
func recvAsync(s grpc.BidiStreamingClient[pb.HeartbeatPing, pb.HeartbeatPong]) <-chan result {
	ch := make(chan result, 1)
	go func() {
		p, err := s.Recv()
		ch <- result{p, err}
	}()
	return ch
}

type result struct {
	pong *pb.HeartbeatPong
	err  error
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
