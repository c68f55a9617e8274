package cloudcluster_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/gateway"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// minerNode is a node with miners behind it, speaking the gateway protocol over real gRPC like fakeNode:
// it executes every command above its seq high-water mark once (acks RUNNING, then reports a SUCCEEDED
// result for each miner the payload names, done), refuses (REFUSED_SEQ) anything at or below it, and
// reconnects to the next gateway with backoff. While held, its result reports wait (the miners are "still
// working") and go out on release, on whatever stream is current then.
type minerNode struct {
	id     string
	miners []string
	addrs  func() []string

	mu          sync.Mutex
	hwm         uint64
	executed    map[string]int // command id → times executed
	refused     int
	connectedTo string
	hold        bool
	pending     []*pb.CommandResultReport
	flush       chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

func startMinerNode(t testing.TB, id string, miners []string, hold bool, addrs func() []string, first int) *minerNode {
	ctx, cancel := context.WithCancel(context.Background())
	n := &minerNode{id: id, miners: miners, addrs: addrs, hold: hold, executed: map[string]int{}, flush: make(chan struct{}, 1),
		cancel: cancel, done: make(chan struct{})}
	go n.run(ctx, first)
	t.Cleanup(n.stop)
	return n
}

func (n *minerNode) stop() {
	n.cancel()
	<-n.done
}

func (n *minerNode) run(ctx context.Context, idx int) {
	defer close(n.done)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		as := n.addrs()
		err := n.session(ctx, as[idx%len(as)])
		if ctx.Err() != nil {
			return
		}
		n.mu.Lock()
		n.connectedTo = ""
		n.mu.Unlock()
		if err != nil {
			idx++
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 400*time.Millisecond)
	}
}

// release lets held results go out.
func (n *minerNode) release() {
	n.mu.Lock()
	n.hold = false
	n.mu.Unlock()
	n.kick()
}

func (n *minerNode) kick() {
	select {
	case n.flush <- struct{}{}:
	default:
	}
}

func (n *minerNode) session(ctx context.Context, addr string) error {
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
	var sendMu sync.Mutex
	send := func(m *pb.NodeToCloud) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return cs.Send(m)
	}
	n.mu.Lock()
	hwm := n.hwm
	n.mu.Unlock()
	if err := send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: n.id, LastSeq: hwm}}}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { // sends held reports once released, on this stream
		defer wg.Done()
		for {
			select {
			case <-sctx.Done():
				return
			case <-n.flush:
			}
			n.mu.Lock()
			if n.hold || n.connectedTo != addr {
				n.mu.Unlock()
				continue
			}
			out := n.pending
			n.pending = nil
			n.mu.Unlock()
			for i, r := range out {
				if send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: r}}) != nil {
					n.mu.Lock()
					n.pending = append(out[i:], n.pending...)
					n.mu.Unlock()
					return
				}
			}
		}
	}()
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
			n.connectedTo = addr
			n.mu.Unlock()
			n.kick()
		case *pb.CloudToNode_Command:
			if err := n.onCommand(m.Command, send); err != nil {
				return err
			}
		case *pb.CloudToNode_Goaway:
			return nil
		}
	}
}

func (n *minerNode) onCommand(c *pb.ControlCommand, send func(*pb.NodeToCloud) error) error {
	var p pb.CommandPayload
	_ = proto.Unmarshal(c.GetPayload(), &p)
	n.mu.Lock()
	fresh := c.GetMonotonicSeq() > n.hwm
	var report *pb.CommandResultReport
	if fresh {
		n.hwm = c.GetMonotonicSeq()
		n.executed[c.GetCommandId()]++
		now := time.Now().UnixMilli()
		report = &pb.CommandResultReport{CommandId: c.GetCommandId(), MonotonicSeq: c.GetMonotonicSeq(), Done: true}
		for _, m := range p.GetMinerIds() {
			report.Results = append(report.Results, &pb.MinerResult{MinerId: m, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED,
				StartedAtUnixMs: now, FinishedAtUnixMs: now})
		}
		if n.hold {
			n.pending = append(n.pending, report)
			report = nil
		}
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
	if report != nil {
		return send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: report}})
	}
	return nil
}

func (n *minerNode) snapshot() (executed map[string]int, refused int, connectedTo string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]int, len(n.executed))
	for k, v := range n.executed {
		out[k] = v
	}
	return out, n.refused, n.connectedTo
}

func (n *minerNode) waitConnected(t testing.TB, d time.Duration) string {
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
