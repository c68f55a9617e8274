package telemetry

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/uplink"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func TestMemoryOutbox(t *testing.T) {
	o := NewMemoryOutbox(10, 10)
	tb := func(seq uint64, n int) Batch {
		return Batch{Kind: KindTelemetry, Seq: seq, Telemetry: &pb.TelemetryBatch{BatchSeq: seq, Samples: make([]*pb.Telemetry, n)}}
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if d, err := o.Append(tb(seq, 3)); err != nil || len(d) != 0 {
			t.Fatalf("append %d: %v %v", seq, d, err)
		}
	}
	if _, err := o.Append(tb(3, 1)); err == nil {
		t.Fatal("seq 3 twice accepted")
	}
	d, err := o.Append(tb(4, 3)) // 12 samples > 10: the oldest batch goes
	if err != nil || !slices.Equal(d, []uint64{1}) {
		t.Fatalf("dropped %v, %v; want [1]", d, err)
	}
	if b, items := o.Len(KindTelemetry); b != 3 || items != 9 {
		t.Fatalf("len %d batches %d items", b, items)
	}
	if b, ok, _ := o.Next(KindTelemetry, 0); !ok || b.Seq != 2 {
		t.Fatalf("next after 0: %v %v", b.Seq, ok)
	}
	if b, ok, _ := o.Next(KindTelemetry, 2); !ok || b.Seq != 3 {
		t.Fatalf("next after 2: %v %v", b.Seq, ok)
	}
	if ok, _ := o.Ack(KindTelemetry, 3); !ok {
		t.Fatal("ack 3")
	}
	if ok, _ := o.Ack(KindTelemetry, 3); ok {
		t.Fatal("ack 3 twice")
	}
	if b, ok, _ := o.Next(KindTelemetry, 2); !ok || b.Seq != 4 {
		t.Fatalf("next after 2 once 3 is acked: %v %v", b.Seq, ok)
	}
	if b, _ := o.Len(KindEvents); b != 0 {
		t.Fatal("kinds are separate")
	}
	// A single batch larger than the bound is kept: dropping it would lose it before it was ever sent.
	if d, _ := o.Append(tb(9, 50)); !slices.Equal(d, []uint64{2, 4}) {
		t.Fatalf("dropped %v", d)
	}
	if b, items := o.Len(KindTelemetry); b != 1 || items != 50 {
		t.Fatalf("len %d %d", b, items)
	}
}

// fakeUplink records the batches the batcher sends it.
type fakeUplink struct {
	mu        sync.Mutex
	telemetry []*pb.TelemetryBatch
	events    []*pb.EventBatch
}

func (f *fakeUplink) Receive(ctx actor.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m := ctx.Message().(type) {
	case *pb.TelemetryBatch:
		f.telemetry = append(f.telemetry, m)
	case *uplink.EncodedTelemetryBatch:
		f.telemetry = append(f.telemetry, m.Batch)
	case *pb.EventBatch:
		f.events = append(f.events, m)
	}
}

func (f *fakeUplink) sent() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint64
	for _, b := range f.telemetry {
		out = append(out, b.GetBatchSeq())
	}
	return out
}

func (f *fakeUplink) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, b := range f.telemetry {
		out = append(out, len(b.GetSamples()))
	}
	return out
}

type harness struct {
	t       *testing.T
	sys     *actor.ActorSystem
	clk     *clock.Fake
	pid     *actor.PID
	up      *fakeUplink
	upPID   *actor.PID
	outbox  *MemoryOutbox
	session uint64
}

func newHarness(t *testing.T, cfg Config) *harness {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	h := &harness{t: t, sys: actors.NewSystem(log), clk: clock.NewFake(time.Unix(0, 0)), up: &fakeUplink{},
		outbox: NewMemoryOutbox(cfg.MaxBacklogSamples, cfg.MaxBacklogEvents)}
	h.upPID = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return h.up }))
	h.pid = h.sys.Root.Spawn(Props(cfg, Env{NodeID: "n1", Clock: h.clk, Outbox: h.outbox, Logger: log}))
	t.Cleanup(func() {
		_ = h.sys.Root.StopFuture(h.pid).Wait()
		_ = h.sys.Root.StopFuture(h.upPID).Wait()
		h.sys.Shutdown()
	})
	return h
}

func (h *harness) samples(n int) {
	for i := range n {
		h.sys.Root.Send(h.pid, &pb.Telemetry{MinerId: fmt.Sprintf("m-%d", i)})
	}
}

func (h *harness) status() Status {
	h.t.Helper()
	s, err := actors.Request[Status](h.sys.Root, h.pid, &StatusRequest{}, time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func (h *harness) linkUp(newSession bool) {
	if newSession {
		h.session++
	}
	h.sys.Root.Send(h.pid, &uplink.LinkChanged{Up: true, Uplink: h.upPID, Session: h.session})
}

func (h *harness) ack(seqs ...uint64) {
	for _, s := range seqs {
		h.sys.Root.Send(h.pid, &uplink.Acked{Stream: uplink.StreamTelemetry, Seq: s, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED})
	}
}

func TestBatchesCloseAtSize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize = 3
	h := newHarness(t, cfg)
	h.linkUp(true)
	h.samples(7)
	testutil.Eventually(t, "two full batches", func() bool { return len(h.up.sent()) == 2 })
	if st := h.status(); st.PendingSamples != 1 {
		t.Fatalf("pending %d, want 1", st.PendingSamples)
	}
	if got := h.up.sizes(); !slices.Equal(got, []int{3, 3}) {
		t.Fatalf("batch sizes %v", got)
	}
	// The time bound closes the rest: nothing waits longer than FlushInterval.
	h.clk.Advance(cfg.FlushInterval - time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if len(h.up.sent()) != 2 {
		t.Fatal("closed before the flush interval")
	}
	h.clk.Advance(time.Millisecond)
	testutil.Eventually(t, "time-bound batch", func() bool { return len(h.up.sent()) == 3 })
	if got := h.up.sizes(); !slices.Equal(got, []int{3, 3, 1}) {
		t.Fatalf("batch sizes %v", got)
	}
	if got := h.up.sent(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("batch seqs %v", got)
	}
	h.up.mu.Lock()
	nodeID := h.up.telemetry[0].GetNodeId()
	h.up.mu.Unlock()
	if nodeID != "n1" {
		t.Fatalf("node id %q", nodeID)
	}
}

func TestTimeBoundStartsWithTheFirstSample(t *testing.T) {
	cfg := DefaultConfig()
	h := newHarness(t, cfg)
	h.linkUp(true)
	h.clk.Advance(10 * time.Second) // idle: no timer, no empty batches
	h.samples(1)
	testutil.Eventually(t, "timer armed", func() bool { return h.clk.Pending() == 1 })
	h.clk.Advance(cfg.FlushInterval)
	testutil.Eventually(t, "batch", func() bool { return len(h.up.sent()) == 1 })
	if h.clk.Pending() != 0 {
		t.Fatal("timer left armed with nothing pending")
	}
}

func TestBacklogWhileDownWindowAndResendOnNewSession(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize, cfg.MaxInFlight = 2, 3
	h := newHarness(t, cfg)
	h.samples(20) // link down: 10 batches into the outbox, nothing sent
	testutil.Eventually(t, "backlog", func() bool { return h.status().BacklogTelemetryBatches == 10 })
	if len(h.up.sent()) != 0 {
		t.Fatal("sent while the link was down")
	}

	h.linkUp(true)
	testutil.Eventually(t, "window", func() bool { return len(h.up.sent()) == 3 })
	time.Sleep(10 * time.Millisecond)
	if got := h.up.sent(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("sent %v, want the window [1 2 3]", got)
	}
	h.ack(1, 2)
	testutil.Eventually(t, "window slides", func() bool { return len(h.up.sent()) == 5 })
	if got := h.up.sent(); !slices.Equal(got[3:], []uint64{4, 5}) {
		t.Fatalf("sent %v", got)
	}
	// The same session announced again (heartbeat beacon): nothing is re-sent.
	h.linkUp(false)
	time.Sleep(10 * time.Millisecond)
	if n := len(h.up.sent()); n != 5 {
		t.Fatalf("re-announce of the same session re-sent batches: %d", n)
	}

	// The link drops with 3, 4, 5 unacked; the next session re-sends them from the oldest.
	h.sys.Root.Send(h.pid, &uplink.LinkChanged{Up: false})
	h.linkUp(true)
	testutil.Eventually(t, "resend", func() bool { return len(h.up.sent()) == 8 })
	if got := h.up.sent(); !slices.Equal(got[5:], []uint64{3, 4, 5}) {
		t.Fatalf("after reconnect sent %v, want 3 4 5 again", got[5:])
	}
	h.ack(3, 4, 5, 6, 7, 8, 9, 10)
	testutil.Eventually(t, "all acked", func() bool { return h.status().BacklogTelemetryBatches == 0 && len(h.up.sent()) == 13 })
	if got := h.up.sent(); !slices.Equal(got[8:], []uint64{6, 7, 8, 9, 10}) {
		t.Fatalf("tail %v", got[8:])
	}
}

func TestBacklogIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize, cfg.MaxBacklogSamples = 10, 50
	h := newHarness(t, cfg)
	h.samples(200)
	testutil.Eventually(t, "all batched", func() bool { st := h.status(); return st.PendingSamples == 0 && st.BacklogSamples == 50 })
	h.linkUp(true)
	testutil.Eventually(t, "everything kept is sent", func() bool { return len(h.up.sent()) == 5 })
	if got := h.up.sent(); got[0] != 16 {
		t.Fatalf("oldest kept batch is %d, want 16 (1..15 dropped)", got[0])
	}
}

func TestEventsHaveTheirOwnLane(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EventBatchSize = 2
	h := newHarness(t, cfg)
	h.linkUp(true)
	for i := range 4 {
		h.sys.Root.Send(h.pid, &pb.Event{EventId: fmt.Sprint(i)})
	}
	testutil.Eventually(t, "event batches", func() bool {
		h.up.mu.Lock()
		defer h.up.mu.Unlock()
		return len(h.up.events) == 2
	})
	h.up.mu.Lock()
	seqs := []uint64{h.up.events[0].GetBatchSeq(), h.up.events[1].GetBatchSeq()}
	h.up.mu.Unlock()
	if !slices.Equal(seqs, []uint64{1, 2}) || len(h.up.sent()) != 0 {
		t.Fatalf("event seqs %v, telemetry %v", seqs, h.up.sent())
	}
	h.sys.Root.Send(h.pid, &uplink.Acked{Stream: uplink.StreamEvents, Seq: 1, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED})
	testutil.Eventually(t, "event acked", func() bool { return h.status().BacklogEventBatches == 1 })
}

type seqs struct{ next uint64 }

func (s *seqs) ReserveBatchSeqs(kind string, n uint64) (uint64, error) {
	first := s.next
	s.next += n
	return first, nil
}

func TestSeqsComeFromTheReserver(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize, cfg.SeqBlock = 1, 2
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	sys := actors.NewSystem(log)
	defer sys.Shutdown()
	up := &fakeUplink{}
	upPID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return up }))
	pid := sys.Root.Spawn(Props(cfg, Env{NodeID: "n1", Clock: clock.NewFake(time.Unix(0, 0)), Seqs: &seqs{next: 5001}, Logger: log}))
	sys.Root.Send(pid, &uplink.LinkChanged{Up: true, Uplink: upPID, Session: 1})
	for range 5 {
		sys.Root.Send(pid, &pb.Telemetry{})
	}
	testutil.Eventually(t, "batches", func() bool { return len(up.sent()) == 5 })
	if got := up.sent(); !slices.Equal(got, []uint64{5001, 5002, 5003, 5004, 5005}) {
		t.Fatalf("seqs %v", got)
	}
	_ = sys.Root.StopFuture(pid).Wait()
	_ = sys.Root.StopFuture(upPID).Wait()
}

func TestReplayIsPaced(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BatchSize, cfg.MaxInFlight, cfg.ReplayRate = 5, 8, 10
	cfg.FlushInterval = time.Hour // the idle flush timer stays armed and never fires in this test
	h := newHarness(t, cfg)
	h.samples(40) // link down: 8 batches of 5
	testutil.Eventually(t, "backlog", func() bool { return h.status().BacklogTelemetryBatches == 8 })
	timers := h.clk.Pending() // the idle flush timer
	h.linkUp(true)
	// A burst of one second's worth (10 samples) goes at once; the rest waits for the clock.
	testutil.Eventually(t, "burst", func() bool { return len(h.up.sent()) == 2 })
	testutil.Eventually(t, "pace timer", func() bool { return h.clk.Pending() == timers+1 })
	time.Sleep(20 * time.Millisecond)
	if n := len(h.up.sent()); n != 2 {
		t.Fatalf("%d batches sent before the clock moved, want 2", n)
	}
	h.clk.Advance(500 * time.Millisecond)
	testutil.Eventually(t, "one more batch after 0.5s", func() bool { return len(h.up.sent()) == 3 })
	// The batcher arms its next pace timer just after that send: advancing before would move a clock no
	// timer waits on.
	testutil.Eventually(t, "pace timer again", func() bool { return h.clk.Pending() == timers+1 })
	// One step of 3 s: the timer fires, the bucket refills. The batcher reads the clock when its tick arrives,
	// which may be while Advance is still at the timer's deadline (one more batch, then a timer Advance may
	// or may not still fire) or after it (the whole burst): at least one more batch either way. The refill
	// to exactly one second's worth is pacer_test's.
	h.clk.Advance(3 * time.Second)
	testutil.Eventually(t, "paced again after the pause", func() bool { return len(h.up.sent()) >= 4 })
	for i := 0; len(h.up.sent()) < 8 && i < 100; i++ {
		h.clk.Advance(500 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
	if got := h.up.sent(); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("sent %v, want every batch once, in order", got)
	}
}
