package uplink_test

import (
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/gatewaytest"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/hashfleet/hashfleet/node/uplink"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// inbox is an actor that records what it gets; as the gate stand-in it answers each command with an ack and a
// final result, the way the CommandGate does.
type inbox struct {
	mu        sync.Mutex
	msgs      []any
	answerCmd bool
}

func (b *inbox) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped:
		return
	case *pb.ControlCommand:
		if b.answerCmd && ctx.Sender() != nil {
			ctx.Send(ctx.Sender(), &pb.CommandAck{CommandId: m.GetCommandId(), MonotonicSeq: m.GetMonotonicSeq(), Code: pb.ResultCode_RESULT_CODE_RUNNING})
			ctx.Send(ctx.Sender(), &pb.CommandResultReport{CommandId: m.GetCommandId(), MonotonicSeq: m.GetMonotonicSeq(), Done: true,
				Results: []*pb.MinerResult{{MinerId: "m-1", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}}})
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = append(b.msgs, ctx.Message())
}

func all[T any](b *inbox) []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []T
	for _, m := range b.msgs {
		if x, ok := m.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

type harness struct {
	t       testing.TB
	sys     *actor.ActorSystem
	clk     *clock.Fake
	gw      *gatewaytest.Server
	gate    *inbox
	acks    *inbox // HelloAck receiver
	subs    *inbox
	batcher *actor.PID
	pid     *actor.PID
	cfg     uplink.Config
}

func newHarness(t testing.TB, mutate func(*uplink.Config)) *harness {
	t.Helper()
	gw, err := gatewaytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	gw.SetDevices([]*pb.Device{{MinerId: "m-1", Address: "10.0.0.1:4028"}})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError + 4}))
	h := &harness{t: t, sys: actors.NewSystem(log), clk: clock.NewFake(time.Unix(1_700_000_000, 0)), gw: gw,
		gate: &inbox{answerCmd: true}, acks: &inbox{}, subs: &inbox{}}
	spawn := func(b *inbox) *actor.PID {
		return h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return b }))
	}
	gatePID, ackPID, subPID := spawn(h.gate), spawn(h.acks), spawn(h.subs)
	tcfg := telemetry.DefaultConfig()
	tcfg.BatchSize = 2
	h.batcher = h.sys.Root.Spawn(telemetry.Props(tcfg, telemetry.Env{NodeID: "n1", Clock: h.clk, Logger: log}))

	h.cfg = uplink.DefaultConfig()
	h.cfg.NodeID, h.cfg.Dial, h.cfg.SoftwareVersion = "n1", gw.Dial, "test-1.0"
	h.cfg.HandshakeTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&h.cfg)
	}
	h.pid = h.sys.Root.Spawn(uplink.Props(h.cfg, uplink.Env{
		LastSeq: func() (uint64, error) { return 41, nil }, Gate: gatePID, HelloAckTo: []*actor.PID{ackPID},
		Subscribers: []*actor.PID{subPID, h.batcher}, Clock: h.clk, Logger: log, Seed: 1,
	}))
	t.Cleanup(func() {
		for _, p := range []*actor.PID{h.pid, h.batcher, gatePID, ackPID, subPID} {
			_ = h.sys.Root.StopFuture(p).Wait()
		}
		h.sys.Shutdown()
		gw.Stop()
	})
	return h
}

func (h *harness) status() uplink.Status {
	h.t.Helper()
	s, err := actors.Request[uplink.Status](h.sys.Root, h.pid, &uplink.StatusRequest{}, 2*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) waitUp(connects uint64) {
	h.t.Helper()
	testutil.Eventually(h.t, "link up", func() bool { s := h.status(); return s.Up && s.Connects == connects })
}

func (h *harness) waitDown() uplink.Status {
	h.t.Helper()
	var s uplink.Status
	testutil.Eventually(h.t, "link down", func() bool { s = h.status(); return !s.Up && !s.NextAttemptAt.IsZero() })
	return s
}

// retryIn is how long from now the next connection attempt is armed on the fake clock.
func (h *harness) retryIn(s uplink.Status) time.Duration { return s.NextAttemptAt.Sub(h.clk.Now()) }

func TestHelloAndHelloAck(t *testing.T) {
	h := newHarness(t, func(c *uplink.Config) { c.SessionToken = func() string { return "tok-1" } })
	h.waitUp(1)
	hellos := h.gw.Hellos()
	if len(hellos) != 1 {
		t.Fatalf("%d hellos", len(hellos))
	}
	hl := hellos[0]
	if hl.NodeMD != "n1" || hl.Auth != "Bearer tok-1" || hl.Msg.GetNodeId() != "n1" || hl.Msg.GetLastSeq() != 41 ||
		hl.Msg.GetSoftwareVersion() != "test-1.0" || hl.Msg.GetSessionToken() != "tok-1" {
		t.Fatalf("hello %+v %v", hl, hl.Msg)
	}
	testutil.Eventually(t, "hello_ack forwarded", func() bool { return len(all[*pb.HelloAck](h.acks)) == 1 })
	if d := all[*pb.HelloAck](h.acks)[0].GetDevices(); len(d) != 1 || d[0].GetMinerId() != "m-1" {
		t.Fatalf("ownership map %v", d)
	}
	testutil.Eventually(t, "link up announced", func() bool { return len(all[*uplink.LinkChanged](h.subs)) == 1 })
	lc := all[*uplink.LinkChanged](h.subs)[0]
	if !lc.Up || lc.Uplink == nil || !lc.Since.Equal(h.clk.Now()) {
		t.Fatalf("link changed %+v", lc)
	}
	// Heartbeats go out on the clock, and the link announcement is repeated with them.
	h.clk.Advance(h.cfg.HeartbeatInterval)
	testutil.Eventually(t, "ping", func() bool { return h.gw.Pings() == 1 })
	testutil.Eventually(t, "re-announced", func() bool { return len(all[*uplink.LinkChanged](h.subs)) == 2 })
}

func TestTelemetryIsSentAndAcked(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)
	for range 6 {
		h.sys.Root.Send(h.batcher, &pb.Telemetry{MinerId: "m-1"})
	}
	testutil.Eventually(t, "3 batches at the gateway", func() bool { return len(h.gw.TelemetrySeqs()) == 3 })
	testutil.Eventually(t, "acked: outbox empty", func() bool {
		st, err := actors.Request[telemetry.Status](h.sys.Root, h.batcher, &telemetry.StatusRequest{}, time.Second)
		return err == nil && st.BacklogTelemetryBatches == 0 && st.InFlightTelemetry == 0
	})
	if got := h.gw.TelemetrySeqs(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("seqs %v", got)
	}
	if b := h.gw.Telemetry()[0]; b.GetNodeId() != "n1" || len(b.GetSamples()) != 2 {
		t.Fatalf("batch %v", b)
	}
	acked := all[*uplink.Acked](h.subs)
	if len(acked) != 3 || acked[0].Stream != uplink.StreamTelemetry || acked[0].Code != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("acks relayed %+v", acked)
	}
}

func TestCommandAckAndResult(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)
	cmd := &pb.ControlCommand{CommandId: "c-1", NodeId: "n1", MonotonicSeq: 42}
	if !h.gw.SendCommand(cmd) {
		t.Fatal("no control stream")
	}
	testutil.Eventually(t, "command at the gate", func() bool { return len(all[*pb.ControlCommand](h.gate)) == 1 })
	if got := all[*pb.ControlCommand](h.gate)[0]; !proto.Equal(got, cmd) {
		t.Fatalf("gate got %v", got)
	}
	testutil.Eventually(t, "ack and result at the cloud", func() bool { return len(h.gw.Acks()) == 1 && len(h.gw.Results()) == 1 })
	if a := h.gw.Acks()[0]; a.GetCommandId() != "c-1" || a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("ack %v", a)
	}
	if r := h.gw.Results()[0]; !r.GetDone() || r.GetMonotonicSeq() != 42 {
		t.Fatalf("result %v", r)
	}
}

func TestStreamDropReconnectsWithBackoff(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)

	h.gw.DropAll()
	s := h.waitDown()
	if !strings.Contains(s.LastError, "stream") {
		t.Fatalf("last error %q", s.LastError)
	}
	if d := h.retryIn(s); d < 800*time.Millisecond || d > 1200*time.Millisecond {
		t.Fatalf("first retry in %s, want 1s ± 20%%", d)
	}
	testutil.Eventually(t, "down announced", func() bool {
		l := all[*uplink.LinkChanged](h.subs)
		return len(l) == 2 && !l[1].Up && l[1].Reason != ""
	})
	time.Sleep(50 * time.Millisecond)
	if len(h.gw.Hellos()) != 1 {
		t.Fatal("reconnected before the backoff elapsed on the clock")
	}
	h.clk.Advance(h.retryIn(s))
	h.waitUp(2)
	if len(h.gw.Hellos()) != 2 {
		t.Fatalf("%d hellos", len(h.gw.Hellos()))
	}

	// A cloud that stays down: every failed attempt doubles the wait (the link was up < StableAfter).
	h.gw.Refuse(true)
	h.gw.DropAll()
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		s = h.waitDown()
		if d := h.retryIn(s); d < w*8/10 || d > min(w*12/10, 30*time.Second) {
			t.Fatalf("retry %d in %s, want %s ± 20%% (attempts %d)", i, d, w, s.Attempts)
		}
		before := len(h.gw.Hellos())
		h.clk.Advance(h.retryIn(s))
		testutil.Eventually(t, "attempt made", func() bool { return len(h.gw.Hellos()) == before+1 || h.status().Attempts > s.Attempts })
		testutil.Eventually(t, "attempt failed", func() bool { s2 := h.status(); return !s2.Up && s2.Attempts == s.Attempts+1 })
	}
	h.gw.Refuse(false)
	s = h.waitDown()
	h.clk.Advance(h.retryIn(s))
	h.waitUp(3)
	if st := h.status(); st.LastError != "" {
		t.Fatalf("last error kept after reconnect: %q", st.LastError)
	}
}

func TestGoawayReconnectsAfterTheGivenDelay(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)
	if !h.gw.Goaway("draining", 3000) {
		t.Fatal("no control stream")
	}
	s := h.waitDown()
	if !strings.Contains(s.LastError, "goaway") || s.Goaways != 1 {
		t.Fatalf("status %+v", s)
	}
	if d := h.retryIn(s); d < 3*time.Second || d > 3400*time.Millisecond {
		t.Fatalf("reconnect in %s, want 3s plus jitter", d)
	}
	h.clk.Advance(h.retryIn(s))
	h.waitUp(2)
}

func TestUnackedBatchesAreResentAfterReconnect(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)
	h.gw.WithholdAcks(true)
	for range 6 {
		h.sys.Root.Send(h.batcher, &pb.Telemetry{MinerId: "m-1"})
	}
	testutil.Eventually(t, "3 batches at the gateway", func() bool { return len(h.gw.TelemetrySeqs()) == 3 })

	h.gw.WithholdAcks(false)
	h.gw.DropAll()
	s := h.waitDown()
	h.clk.Advance(h.retryIn(s))
	h.waitUp(2)
	testutil.Eventually(t, "re-sent", func() bool { return len(h.gw.TelemetrySeqs()) == 6 })
	if got := h.gw.TelemetrySeqs(); !slices.Equal(got, []uint64{1, 2, 3, 1, 2, 3}) {
		t.Fatalf("seqs at the gateway %v", got)
	}
	testutil.Eventually(t, "acked", func() bool {
		st, err := actors.Request[telemetry.Status](h.sys.Root, h.batcher, &telemetry.StatusRequest{}, time.Second)
		return err == nil && st.BacklogTelemetryBatches == 0
	})
	if n := h.gw.AppliedTelemetry(); n != 3 {
		t.Fatalf("cloud applied %d distinct batches, want 3", n)
	}
}

func TestResultsAreNeverDropped(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)
	// A result written just before a goaway is written again on the next session.
	h.sys.Root.Send(h.pid, &pb.CommandResultReport{CommandId: "c-1", MonotonicSeq: 1, Done: true})
	testutil.Eventually(t, "result", func() bool { return len(h.gw.Results()) == 1 })
	h.gw.Goaway("restart", 0)
	s := h.waitDown()
	// Acks and results produced while the link is down wait for it.
	h.sys.Root.Send(h.pid, &pb.CommandAck{CommandId: "c-2", MonotonicSeq: 2, Code: pb.ResultCode_RESULT_CODE_RUNNING})
	h.sys.Root.Send(h.pid, &pb.CommandResultReport{CommandId: "c-2", MonotonicSeq: 2, Done: true})
	testutil.Eventually(t, "pending", func() bool { return h.status().PendingResults == 3 })
	h.clk.Advance(h.retryIn(s))
	h.waitUp(2)
	testutil.Eventually(t, "sent after reconnect", func() bool { return len(h.gw.Results()) == 3 && len(h.gw.Acks()) == 1 })
	var ids []string
	for _, r := range h.gw.Results() {
		ids = append(ids, r.GetCommandId())
	}
	if !slices.Equal(ids, []string{"c-1", "c-1", "c-2"}) {
		t.Fatalf("results at the cloud %v", ids)
	}
	if st := h.status(); st.PendingResults != 0 {
		t.Fatalf("pending %d", st.PendingResults)
	}
}

func TestLostHeartbeatDropsTheLink(t *testing.T) {
	h := newHarness(t, nil)
	h.waitUp(1)
	h.gw.MutePongs(true)
	for i := 1; i <= h.cfg.HeartbeatMisses; i++ {
		h.clk.Advance(h.cfg.HeartbeatInterval)
		if i < h.cfg.HeartbeatMisses {
			testutil.Eventually(t, "ping", func() bool { return h.gw.Pings() == i })
		}
	}
	s := h.waitDown()
	if !strings.Contains(s.LastError, "heartbeat") {
		t.Fatalf("last error %q", s.LastError)
	}
	h.gw.MutePongs(false)
	h.clk.Advance(h.retryIn(s))
	h.waitUp(2)
}

func TestHandshakeFailureIsRetried(t *testing.T) {
	h := newHarness(t, func(c *uplink.Config) { c.NodeID = "n1" })
	h.waitUp(1)
	h.gw.Stop() // the cloud is gone entirely: dials fail
	s := h.waitDown()
	for range 2 {
		h.clk.Advance(h.retryIn(s))
		testutil.Eventually(t, "next attempt failed", func() bool {
			s2 := h.status()
			if !s2.Up && s2.Attempts > s.Attempts && !s2.NextAttemptAt.IsZero() {
				s = s2
				return true
			}
			return false
		})
	}
	if s.Attempts < 2 || s.LastError == "" {
		t.Fatalf("status %+v", s)
	}
}
