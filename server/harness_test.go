package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle sleeps one interval (1s) in a goroutine of its own that Shutdown does
		// not stop; it ends by itself. Its name depends on inlining.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	)
}

const testToken = "test-admin-token-0123456789"

// harness is a server with a real gRPC listener on loopback, a real HTTP server, and a fake clock.
type harness struct {
	t     *testing.T
	clk   *clock.Fake
	srv   *Server
	reg   *prometheus.Registry
	gs    *grpc.Server
	conn  *grpc.ClientConn
	gw    pb.GatewayClient
	web   *httptest.Server
	grpcD chan struct{}
	once  sync.Once
}

func newHarness(t *testing.T, mod ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(time.Unix(1_700_000_000, 0)), reg: prometheus.NewRegistry()}
	cfg := DefaultConfig()
	cfg.AdminToken, cfg.Clock, cfg.Registerer, cfg.Combined = testToken, h.clk, h.reg, true
	cfg.Logger = testLogger()
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.gs = grpc.NewServer(srv.GRPCServerOptions()...)
	pb.RegisterGatewayServer(h.gs, srv.Gateway())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.grpcD = make(chan struct{})
	go func() {
		defer close(h.grpcD)
		_ = h.gs.Serve(lis)
	}()
	h.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	h.gw = pb.NewGatewayClient(h.conn)
	h.web = httptest.NewServer(srv.Handler())
	t.Cleanup(h.close)
	return h
}

func testLogger() *slog.Logger {
	if os.Getenv("HASHFLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (h *harness) close() { h.once.Do(h.shutdown) }

func (h *harness) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Stop(ctx); err != nil {
		h.t.Errorf("stop: %v", err)
	}
	_ = h.conn.Close()
	h.gs.Stop()
	<-h.grpcD
	h.web.Close()
}

func (h *harness) nodeCtx(ctx context.Context, node string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, gateway.MetadataNode, node)
}

// control is a fake node's control stream.
type control struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[pb.NodeToCloud, pb.CloudToNode]
	cancel context.CancelFunc
	frames chan *pb.CloudToNode
	errc   chan error
}

func (h *harness) openControl(node string, lastSeq uint64) (*control, *pb.HelloAck) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.nodeCtx(context.Background(), node))
	st, err := h.gw.ControlStream(ctx)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	c := &control{t: h.t, stream: st, cancel: cancel, frames: make(chan *pb.CloudToNode, 64), errc: make(chan error, 1)}
	go func() {
		for {
			f, err := st.Recv()
			if err != nil {
				c.errc <- err
				close(c.frames)
				return
			}
			c.frames <- f
		}
	}()
	h.t.Cleanup(c.close)
	if err := st.Send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{Hello: &pb.ControlHello{NodeId: node, LastSeq: lastSeq, SoftwareVersion: "test"}}}); err != nil {
		h.t.Fatal(err)
	}
	f := c.next()
	ack := f.GetHelloAck()
	if ack == nil {
		h.t.Fatalf("first frame %v, want hello_ack", f)
	}
	return c, ack
}

func (c *control) close() {
	c.cancel()
	for range c.frames { // wait for the reader to end
	}
}

func (c *control) next() *pb.CloudToNode {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("stream ended: %v", <-c.errc)
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame within 5s")
	}
	return nil
}

func (c *control) nextCommand() *pb.ControlCommand {
	c.t.Helper()
	f := c.next()
	cmd := f.GetCommand()
	if cmd == nil {
		c.t.Fatalf("frame %v, want a command", f)
	}
	return cmd
}

// quiet asserts nothing arrives for d.
func (c *control) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame %v", f)
		}
	case <-time.After(d):
	}
}

// ended waits for the stream to end and returns the error (io.EOF for a clean end).
func (c *control) ended() error {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("frame %v, want the stream to end", f)
		}
		return <-c.errc
	case <-time.After(5 * time.Second):
		c.t.Fatal("stream did not end within 5s")
	}
	return nil
}

func (c *control) send(m *pb.NodeToCloud) {
	c.t.Helper()
	if err := c.stream.Send(m); err != nil {
		c.t.Fatal(err)
	}
}

func (c *control) ack(cmd *pb.ControlCommand, code pb.ResultCode) {
	c.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{CommandId: cmd.GetCommandId(), MonotonicSeq: cmd.GetMonotonicSeq(), Code: code}}})
}

func (c *control) result(cmd *pb.ControlCommand, code pb.ResultCode, done bool, miners ...string) {
	rep := &pb.CommandResultReport{CommandId: cmd.GetCommandId(), MonotonicSeq: cmd.GetMonotonicSeq(), Done: done}
	for _, m := range miners {
		rep.Results = append(rep.Results, &pb.MinerResult{MinerId: m, Code: code, Message: "ok"})
	}
	c.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: rep}})
}

func payloadOf(t *testing.T, cmd *pb.ControlCommand) *pb.CommandPayload {
	t.Helper()
	var p pb.CommandPayload
	if err := proto.Unmarshal(cmd.GetPayload(), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// telemetry opens an upload stream for node, sends one batch and returns the ack.
func (h *harness) upload(node string, seq uint64, samples ...*pb.Telemetry) *pb.Ack {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.nodeCtx(context.Background(), node), 10*time.Second)
	defer cancel()
	st, err := h.gw.UploadTelemetry(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := st.Send(&pb.TelemetryBatch{NodeId: node, BatchSeq: seq, Samples: samples}); err != nil {
		h.t.Fatal(err)
	}
	ack, err := st.Recv()
	if err != nil {
		h.t.Fatal(err)
	}
	_ = st.CloseSend()
	return ack
}

func (h *harness) sample(miner string, hashrate float64) *pb.Telemetry {
	return &pb.Telemetry{MinerId: miner, ObservedAtUnixMs: h.clk.Now().UnixMilli(), State: pb.MinerState_MINER_STATE_MINING,
		Hashrate_5SThs: hashrate, PowerW: 3250, Model: "S19",
		Boards: []*pb.Board{{Index: 0, TempC: 65, ChipTempC: 80}, {Index: 1, TempC: 70, ChipTempC: 82}},
		Pools:  []*pb.Pool{{Url: "stratum+tcp://pool.example:3333", User: "acct.w1", Password: "secret", Active: true}}}
}

// do sends an HTTP request with the admin token and decodes a JSON reply into out (when non-nil).
func (h *harness) do(method, path, body string, out any) (int, []byte) {
	h.t.Helper()
	return h.doAuth(method, path, body, "Bearer "+testToken, out)
}

func (h *harness) doAuth(method, path, body, auth string, out any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, h.web.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := h.web.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("decode %s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode, b
}

type minerList struct {
	Total  int            `json:"total"`
	Counts map[string]int `json:"counts"`
	Items  []struct {
		ID          string    `json:"id"`
		Node        string    `json:"node"`
		State       string    `json:"state"`
		Stale       bool      `json:"stale"`
		HashrateThs float64   `json:"hashrate_ths"`
		TempMaxC    float64   `json:"temp_max_c"`
		Pool        string    `json:"pool"`
		AgeS        *float64  `json:"last_seen_age_s"`
		BoardTemps  []float64 `json:"board_temps_c"`
	} `json:"items"`
}

type commandView struct {
	CommandID string            `json:"command_id"`
	Status    string            `json:"status"`
	NodeSeqs  map[string]uint64 `json:"node_seqs"`
	Summary   map[string]int    `json:"summary"`
	Results   []struct {
		MinerID string `json:"miner_id"`
		Status  string `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"results"`
}

type nodeList struct {
	Nodes []struct {
		Node           string   `json:"node"`
		Connected      bool     `json:"connected"`
		LastHeartbeat  *string  `json:"last_heartbeat"`
		HeartbeatAge   *float64 `json:"last_heartbeat_age_s"`
		QueuedCommands int      `json:"queued_commands"`
		LastSeq        uint64   `json:"last_seq"`
		Devices        int      `json:"devices"`
	} `json:"nodes"`
}

func (h *harness) miners(query string) minerList {
	h.t.Helper()
	var out minerList
	if code, body := h.do("GET", "/api/v1/miners"+query, "", &out); code != 200 {
		h.t.Fatalf("GET miners: %d %s", code, body)
	}
	return out
}

func (h *harness) issue(body string) string {
	h.t.Helper()
	var out struct {
		CommandID string `json:"command_id"`
	}
	if code, b := h.do("POST", "/api/v1/commands", body, &out); code != http.StatusAccepted {
		h.t.Fatalf("POST command: %d %s", code, b)
	}
	return out.CommandID
}

func (h *harness) command(id string) commandView {
	h.t.Helper()
	var out commandView
	if code, b := h.do("GET", "/api/v1/commands/"+id, "", &out); code != 200 {
		h.t.Fatalf("GET command: %d %s", code, b)
	}
	return out
}

func (h *harness) nodes() nodeList {
	h.t.Helper()
	var out nodeList
	if code, b := h.do("GET", "/api/v1/nodes", "", &out); code != 200 {
		h.t.Fatalf("GET nodes: %d %s", code, b)
	}
	return out
}

func (h *harness) waitCommand(id, status string) commandView {
	h.t.Helper()
	var last commandView
	waitFor(h.t, func() bool {
		last = h.command(id)
		return last.Status == status
	}, "command "+id+" "+status)
	return last
}

func (h *harness) waitConnected(node string, want bool) {
	h.t.Helper()
	waitFor(h.t, func() bool {
		for _, n := range h.nodes().Nodes {
			if n.Node == node {
				return n.Connected == want
			}
		}
		return !want
	}, "node connected")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
