package cloudcluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/testsvc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

var quiet = slog.New(slog.DiscardHandler)

// testMember is one in-process member with its own real gateway (gRPC on loopback).
type testMember struct {
	m      *cloudcluster.Member
	gw     *gateway.Gateway
	srv    *grpc.Server
	gwAddr string
	once   sync.Once
}

// startGateway serves m's Fleet through a real gateway on a loopback port.
func startGateway(t testing.TB, m *cloudcluster.Member) (*gateway.Gateway, *grpc.Server, string) {
	t.Helper()
	gcfg := gateway.DefaultConfig()
	gcfg.Authenticator, gcfg.Logger = gateway.TrustNodeMetadata(), quiet
	gw, err := gateway.New(gcfg, m.Fleet())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(gateway.ServerOptions(gcfg)...)
	pb.RegisterGatewayServer(srv, gw)
	go func() { _ = srv.Serve(l) }()
	return gw, srv, l.Addr().String()
}

func (tm *testMember) stop(graceful bool) {
	tm.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if graceful {
			_ = tm.gw.Drain(ctx)
		}
		tm.srv.Stop()
		tm.m.Stop(graceful)
	})
}

// memberConfig returns a config for one member on the shared store.
func memberConfig(t testing.TB, st *pgstore.Store) cloudcluster.Config {
	cfg := cloudcluster.DefaultConfig()
	cfg.Port = testsvc.FreePort(t)
	cfg.Store, cfg.LeaseStore, cfg.Logger = st, st, quiet
	cfg.PairMembers = func(string) ([2]string, error) { return [2]string{"n-a", "n-b"}, nil }
	return cfg
}

// startMembers starts n members with mk's config and a gateway each; stopped at cleanup.
func startMembers(t testing.TB, n int, mk func(i int) cloudcluster.Config) []*testMember {
	t.Helper()
	var out []*testMember
	// Every member first, then the gateways: protoactor's remote.Start swaps grpc's global logger
	// (grpclog.SetLoggerV2), which races with gRPC servers already running in the same process.
	for i := range n {
		m, err := cloudcluster.Start(mk(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &testMember{m: m})
	}
	for _, tm := range out {
		tm.gw, tm.srv, tm.gwAddr = startGateway(t, tm.m)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, tm := range out {
			wg.Add(1)
			go func() { defer wg.Done(); tm.stop(true) }()
		}
		wg.Wait()
	})
	return out
}

// waitMembers waits until every member sees n members.
func waitMembers(t testing.TB, ms []*testMember, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, m := range ms {
			if len(m.m.Members()) != n {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range ms {
		t.Logf("member %s sees %v", m.m.ID(), m.m.Members())
	}
	t.Fatalf("members did not converge on %d", n)
}

// fakeNode is a node's control and telemetry streams, speaking the gateway protocol over real gRPC: it
// acks and reports every command above its seq high-water mark once, refuses (REFUSED_SEQ) anything at or
// below it, and reconnects to the next gateway address with backoff when its stream ends.
type fakeNode struct {
	id    string
	addrs func() []string // gateway addresses to try, in order from the current one

	mu          sync.Mutex
	hwm         uint64
	executed    []*pb.ControlCommand
	refused     int
	connectedTo string
	connects    int
	lostAt      time.Time
	reconnects  []time.Duration

	// pair, when set, makes the node ask for the pair's lease every leaseEvery on its control stream
	// (ACQUIRE, then RENEW while it holds it) and log every grant it sees.
	pair   string
	grants []*pb.LeaseGrant
	holds  uint64 // epoch this node holds (0: none)

	cancel context.CancelFunc
	done   chan struct{}
}

const leaseEvery = 300 * time.Millisecond

func startNode(t testing.TB, id string, addrs func() []string, first int) *fakeNode {
	return startPairNode(t, id, "", addrs, first)
}

func startPairNode(t testing.TB, id, pair string, addrs func() []string, first int) *fakeNode {
	ctx, cancel := context.WithCancel(context.Background())
	n := &fakeNode{id: id, pair: pair, addrs: addrs, cancel: cancel, done: make(chan struct{})}
	go n.run(ctx, first)
	t.Cleanup(n.stop)
	return n
}

func (n *fakeNode) stop() {
	n.cancel()
	<-n.done
}

func (n *fakeNode) run(ctx context.Context, idx int) {
	defer close(n.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		as := n.addrs()
		addr := as[idx%len(as)]
		err := n.session(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		n.mu.Lock()
		if n.lostAt.IsZero() {
			n.lostAt = time.Now()
		}
		n.connectedTo = ""
		n.mu.Unlock()
		if err != nil {
			idx++ // the member may be gone: try the next one
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 400*time.Millisecond)
	}
}

// leaseLoop asks for the pair's lease every leaseEvery until ctx ends.
func (n *fakeNode) leaseLoop(ctx context.Context, send func(*pb.NodeToCloud) error) {
	t := time.NewTicker(leaseEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		n.mu.Lock()
		req := &pb.LeaseRequest{PairId: n.pair, NodeId: n.id, Op: pb.LeaseOp_LEASE_OP_ACQUIRE, RequestId: fmt.Sprintf("%s-%d", n.id, i)}
		if n.holds != 0 {
			req.Op, req.Epoch = pb.LeaseOp_LEASE_OP_RENEW, n.holds
		}
		n.mu.Unlock()
		if send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_LeaseRequest{LeaseRequest: req}}) != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// session runs one control stream until it ends; nil when the cloud said goaway.
func (n *fakeNode) session(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, gateway.MetadataNode, n.id))
	defer cancel()
	cs, err := pb.NewGatewayClient(conn).ControlStream(sctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	hwm := n.hwm
	n.mu.Unlock()
	var sendMu sync.Mutex
	send := func(m *pb.NodeToCloud) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return cs.Send(m)
	}
	if err := send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: n.id, LastSeq: hwm}}}); err != nil {
		return err
	}
	if n.pair != "" {
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.leaseLoop(sctx, send)
		}()
	}
	for {
		f, err := cs.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch m := f.GetMsg().(type) {
		case *pb.CloudToNode_HelloAck:
			n.mu.Lock()
			if !n.lostAt.IsZero() {
				n.reconnects = append(n.reconnects, time.Since(n.lostAt))
				n.lostAt = time.Time{}
			}
			n.connectedTo = addr
			n.connects++
			n.mu.Unlock()
		case *pb.CloudToNode_Command:
			c := m.Command
			n.mu.Lock()
			fresh := c.GetMonotonicSeq() > n.hwm
			if fresh {
				n.hwm = c.GetMonotonicSeq()
				n.executed = append(n.executed, c)
			} else {
				n.refused++
			}
			n.mu.Unlock()
			code := pb.ResultCode_RESULT_CODE_RUNNING
			if !fresh {
				code = pb.ResultCode_RESULT_CODE_REFUSED_SEQ
			}
			if err := send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{CommandId: c.GetCommandId(),
				MonotonicSeq: c.GetMonotonicSeq(), Code: code}}}); err != nil {
				return err
			}
			if fresh {
				if err := send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: &pb.CommandResultReport{CommandId: c.GetCommandId(),
					MonotonicSeq: c.GetMonotonicSeq(), Done: true}}}); err != nil {
					return err
				}
			}
		case *pb.CloudToNode_Goaway:
			return nil
		case *pb.CloudToNode_LeaseGrant:
			n.mu.Lock()
			n.grants = append(n.grants, m.LeaseGrant)
			if m.LeaseGrant.GetHolder() == n.id {
				n.holds = m.LeaseGrant.GetEpoch()
			} else {
				n.holds = 0
			}
			n.mu.Unlock()
		case *pb.CloudToNode_LeaseDenied:
			n.mu.Lock()
			if m.LeaseDenied.GetHolder() != n.id {
				n.holds = 0
			}
			n.mu.Unlock()
		}
	}
}

func (n *fakeNode) snapshot() (executed []*pb.ControlCommand, refused int, connectedTo string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*pb.ControlCommand(nil), n.executed...), n.refused, n.connectedTo
}

func (n *fakeNode) waitConnected(t testing.TB, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, _, to := n.snapshot(); to != "" {
			return to
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s did not connect within %s", n.id, d)
	return ""
}

// uploadTelemetry sends batches [from, to] of one sample each to addr and waits for their acks.
func uploadTelemetry(t testing.TB, addr, node string, from, to uint64) (applied, dup int) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), gateway.MetadataNode, node), 20*time.Second)
	defer cancel()
	us, err := pb.NewGatewayClient(conn).UploadTelemetry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for s := from; s <= to; s++ {
		b := &pb.TelemetryBatch{NodeId: node, BatchSeq: s, Samples: []*pb.Telemetry{{MinerId: fmt.Sprintf("%s-m%d", node, s%3),
			ObservedAtUnixMs: int64(s) * 1000, Hashrate_5SThs: float64(s)}}}
		if err := us.Send(b); err != nil {
			t.Fatal(err)
		}
		ack, err := us.Recv()
		if err != nil {
			t.Fatalf("telemetry ack %d: %v", s, err)
		}
		switch {
		case ack.GetCode() == pb.ResultCode_RESULT_CODE_SUCCEEDED && strings.HasPrefix(ack.GetMessage(), "duplicate"):
			dup++
		case ack.GetCode() == pb.ResultCode_RESULT_CODE_SUCCEEDED:
			applied++
		default:
			t.Fatalf("telemetry batch %d: %v %s", s, ack.GetCode(), ack.GetMessage())
		}
	}
	_ = us.CloseSend()
	return applied, dup
}
