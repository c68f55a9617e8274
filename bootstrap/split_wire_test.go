package bootstrap

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec sends bytes as they are, to put malformed protobuf on an authenticated stream.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	return nil, fmt.Errorf("rawCodec: %T", v)
}
func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	return fmt.Errorf("rawCodec: %T", v)
}
func (rawCodec) Name() string { return "proto" }

// Garbage, malformed frames and oversized messages on the TLS gateway port get clear errors, and the server
// keeps serving the node that behaves.
func TestSplitGatewayRejectsGarbageAndKeepsServing(t *testing.T) {
	s := startSplit(t, splitOpts{})
	before := s.link()

	// Plain garbage on the TLS port: the handshake fails, the connection is closed.
	c, err := net.Dial("tcp", s.srv.GatewayAddr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage garbage"))
	b, _ := io.ReadAll(c)
	_ = c.Close()
	if strings.Contains(string(b), "HTTP/1.1 200") {
		t.Fatalf("garbage answered: %q", b)
	}
	// A TLS session, then bytes that are not HTTP/2.
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}} //nolint:gosec // garbage sender, verifies nothing
	tl, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.srv.GatewayAddr, tc)
	if err != nil {
		t.Fatal(err)
	}
	_ = tl.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = tl.Write([]byte(strings.Repeat("\x16not an http2 preface\x00", 100)))
	_, _ = io.ReadAll(tl)
	_ = tl.Close()

	token, _, err := s.sessionNow()
	if err != nil {
		t.Fatal(err)
	}
	conn := s.gatewayConn()
	authed := metadata.AppendToOutgoingContext(context.Background(), "x-hashfleet-node", s.nodeID, "authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(authed, 5*time.Second)
	defer cancel()

	// Bytes that are not a protobuf message, on an authenticated stream.
	desc := &grpc.StreamDesc{StreamName: "UploadTelemetry", ServerStreams: true, ClientStreams: true}
	cs, err := conn.NewStream(ctx, desc, "/hashfleet.v1.Gateway/UploadTelemetry", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}
	_ = cs.SendMsg(&junk)
	var reply []byte
	// gRPC itself answers the decode failure (Internal, "failed to unmarshal"); the gateway counts and logs it
	// as malformed.
	if err := cs.RecvMsg(&reply); (status.Code(err) != codes.Internal && status.Code(err) != codes.InvalidArgument) ||
		!(strings.Contains(err.Error(), "unmarshal") || strings.Contains(err.Error(), "malformed")) {
		t.Fatalf("malformed frame: %v, want an error naming the undecodable message", err)
	}
	// A frame over the 4 MiB bound.
	up, err := pb.NewGatewayClient(conn).UploadTelemetry(ctx, grpc.MaxCallSendMsgSize(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	_ = up.Send(&pb.TelemetryBatch{NodeId: s.nodeID, BatchSeq: 1 << 40, Samples: []*pb.Telemetry{{MinerId: "sim-0", Firmware: strings.Repeat("x", 5<<20)}}})
	if _, err := up.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized frame: %v, want ResourceExhausted", err)
	}
	// A control stream whose first frame is not a hello.
	ctl, err := pb.NewGatewayClient(conn).ControlStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = ctl.Send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{}}})
	if _, err := ctl.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("ack before hello: %v", err)
	}

	// The real node never noticed: same session, and commands still run.
	if st := s.link(); !st.Up || st.Connects != before.Connects {
		t.Fatalf("node link disturbed: %+v (before %+v)", st, before)
	}
	s.waitCommand(s.command("reboot", "sim-0"), "succeeded")
}

// The cloud routes a device command only to the node that owns the device: a second node, enrolled and
// connected, never sees a command for the first node's miner.
func TestSplitCommandsRouteOnlyToTheOwningNode(t *testing.T) {
	s := startSplit(t, splitOpts{})
	conn := s.gatewayConn()
	// A second node's control stream, opened with a real session of a second enrolled node.
	other := s.enrollSecondNode()
	token, err := other.session(conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "x-hashfleet-node", other.nodeID,
		"authorization", "Bearer "+token))
	defer cancel()
	ctl, err := pb.NewGatewayClient(conn).ControlStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: other.nodeID}}}); err != nil {
		t.Fatal(err)
	}
	first, err := ctl.Recv()
	if err != nil || first.GetHelloAck() == nil || len(first.GetHelloAck().GetDevices()) != 0 {
		t.Fatalf("second node's hello_ack: %v %v", first, err)
	}
	got := make(chan *pb.CloudToNode, 8)
	go func() {
		for {
			m, err := ctl.Recv()
			if err != nil {
				close(got)
				return
			}
			got <- m
		}
	}()
	s.waitCommand(s.command("reboot", "sim-1"), "succeeded")
	select {
	case m, ok := <-got:
		if ok {
			t.Fatalf("the node that does not own sim-1 was sent %v", m)
		}
	case <-time.After(300 * time.Millisecond):
	}
}
