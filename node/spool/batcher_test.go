package spool

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/hashfleet/hashfleet/node/uplink"
	"google.golang.org/protobuf/proto"
)

// wire records the batches the batcher sends, as the Uplink would put them on the stream.
type wire struct {
	mu   sync.Mutex
	sent []*pb.TelemetryBatch
	// encoded counts batches sent with their spooled bytes, bad those whose bytes were not their encoding.
	encoded, bad int
}

func (w *wire) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pb.TelemetryBatch:
		w.mu.Lock()
		w.sent = append(w.sent, m)
		w.mu.Unlock()
	case *uplink.EncodedTelemetryBatch:
		// The spool's bytes go on the stream as they are: they must be exactly the batch's encoding.
		want, err := proto.Marshal(m.Batch)
		if err != nil || !bytes.Equal(want, m.Wire) {
			w.mu.Lock()
			w.bad++
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.sent = append(w.sent, m.Batch)
		w.encoded++
		w.mu.Unlock()
	}
}

func (w *wire) seqs() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []uint64
	for _, b := range w.sent {
		out = append(out, b.GetBatchSeq())
	}
	return out
}

type reserver struct{ next uint64 }

func (r *reserver) ReserveBatchSeqs(_ string, n uint64) (uint64, error) {
	first := r.next + 1
	r.next += n
	return first, nil
}

// The real TelemetryBatcher over the spool: batches made while the cloud is down survive the node's restart
// and are replayed in order on the next session, then deleted as the cloud acks them.
func TestBatcherReplaysTheSpoolAfterRestart(t *testing.T) {
	h := newHarness(t, nil)
	cfg := telemetry.DefaultConfig()
	cfg.BatchSize, cfg.MaxInFlight = 10, 4
	seqs := &reserver{} // the node store's role: seqs keep rising across restarts
	sys := actors.NewSystem(quiet())
	t.Cleanup(sys.Shutdown)
	w := &wire{}
	wirePID := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return w }))
	spawn := func() *actor.PID {
		return sys.Root.Spawn(telemetry.Props(cfg, telemetry.Env{NodeID: "n1", Clock: h.clk, Outbox: h.s, Seqs: seqs, Logger: quiet()}))
	}
	status := func(pid *actor.PID) telemetry.Status {
		st, err := actors.Request[telemetry.Status](sys.Root, pid, &telemetry.StatusRequest{}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Cloud down: 60 samples become 6 batches in the spool.
	b := spawn()
	for i := range 60 {
		sys.Root.Send(b, sample(i%20, t0.Add(time.Duration(i/20)*5*time.Second)))
	}
	testutil.Eventually(t, "6 batches spooled", func() bool { return status(b).BacklogTelemetryBatches == 6 })
	if err := sys.Root.StopFuture(b).Wait(); err != nil {
		t.Fatal(err)
	}
	h.reopen() // the node restarts

	b = spawn()
	defer func() { _ = sys.Root.StopFuture(b).Wait() }()
	if st := status(b); st.BacklogTelemetryBatches != 6 || st.BacklogSamples != 60 {
		t.Fatalf("after restart the batcher sees %d batches / %d samples", st.BacklogTelemetryBatches, st.BacklogSamples)
	}
	sys.Root.Send(b, &uplink.LinkChanged{Up: true, Uplink: wirePID, Session: 1})
	testutil.Eventually(t, "window of 4", func() bool { return len(w.seqs()) == 4 })
	for _, s := range []uint64{1, 2, 3, 4, 5, 6} {
		sys.Root.Send(b, &uplink.Acked{Stream: uplink.StreamTelemetry, Seq: s, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED})
		if s == 4 {
			testutil.Eventually(t, "the rest", func() bool { return len(w.seqs()) == 6 })
		}
	}
	testutil.Eventually(t, "all acked", func() bool { return status(b).BacklogTelemetryBatches == 0 })
	if got := w.seqs(); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("replayed %v", got)
	}
	w.mu.Lock()
	encoded, bad := w.encoded, w.bad
	w.mu.Unlock()
	if encoded != 6 || bad != 0 {
		t.Fatalf("%d of 6 batches sent with their spooled bytes, %d of them not their encoding", encoded, bad)
	}
	if p := h.s.Progress(); !p.Done() {
		t.Fatalf("progress after the replay: %s", p)
	}
}
