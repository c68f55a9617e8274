package grains

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/history"
	"github.com/hashfleet/hashfleet/server/store"
)

// TestIngestWritesHistory: a trusted node's telemetry batches reach the history (every owned sample, an
// older one of the same batch too), the node, site and org groups follow the devices, and an unowned
// sample does not.
func TestIngestWritesHistory(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	hc := history.DefaultConfig()
	hc.Dir, hc.Clock = t.TempDir(), clk
	h, err := history.Open(hc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actors.NewSystem(quiet)
	cfg := DefaultConfig()
	cfg.Store, cfg.Clock, cfg.Logger, cfg.History, cfg.TrustNodeDevices = st, clk, quiet, h, true
	f, err := New(cfg, sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		sys.Shutdown()
	})
	// A device with a site, registered by the operator; the rest register from telemetry (trusted node).
	if err := f.RegisterDevices(context.Background(), []*pb.Device{{MinerId: "m1", NodeId: "n1", Site: "barn"}}); err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	send := func(node string, samples ...*pb.Telemetry) {
		t.Helper()
		seq++
		if _, err := f.IngestTelemetry(context.Background(), node, &pb.TelemetryBatch{BatchSeq: seq, Samples: samples}); err != nil {
			t.Fatal(err)
		}
	}
	tel := func(id string, at time.Time, ths float64) *pb.Telemetry {
		return &pb.Telemetry{MinerId: id, ObservedAtUnixMs: at.UnixMilli(), Hashrate_5SThs: ths, PowerW: 3000, State: pb.MinerState_MINER_STATE_MINING}
	}
	for k := 0; k < 24; k++ { // two minutes, two samples per batch per miner (the older one too)
		at := t0.Add(time.Duration(k) * 5 * time.Second)
		clk.Set(at.Add(time.Second))
		send("n1", tel("m1", at, 100), tel("m1", at.Add(-2*time.Second), 100), tel("m2", at, 50))
	}
	send("n2", tel("m1", t0.Add(3*time.Minute), 999)) // another node's claim: refused
	actortest.WaitFor(t, 5*time.Second, "history to hold the samples", func() bool {
		s, err := h.Series("m1", t0.Add(-time.Minute), t0.Add(3*time.Minute), 0)
		n := 0
		if err != nil {
			return false
		}
		for _, p := range s.Points {
			n += p.Samples
		}
		return err == nil && n == 48 // both samples of every batch
	})
	s, err := h.Series("m1", t0, t0.Add(5*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Points {
		if p.HashrateTHs != 100 {
			t.Fatalf("m1 point %+v: an unowned sample reached the history", p)
		}
	}
	// Groups are written after a short coalescing delay on the business clock.
	clk.Advance(2 * time.Second)
	actortest.WaitFor(t, 5*time.Second, "node, site and org groups", func() bool {
		for _, g := range []string{"node:n1", "site:barn", "org:default"} {
			if _, err := h.Live(g); err != nil {
				return false
			}
		}
		return true
	})
	if live, _ := h.Live("site:barn"); live.Miners+live.Stale != 1 {
		t.Fatalf("site barn live %+v, want m1 only", live)
	}
	if live, _ := h.Live("node:n1"); live.Miners+live.Stale != 2 {
		t.Fatalf("node n1 live %+v, want m1 and m2", live)
	}
}

func TestHistoryGroupsOf(t *testing.T) {
	devs := map[string]*orgDevice{
		"b": {device: &pb.Device{MinerId: "b", NodeId: "n1", Site: "s"}},
		"a": {device: &pb.Device{MinerId: "a", NodeId: "n1"}},
		"c": {device: &pb.Device{MinerId: "c", NodeId: "n2", Site: "s"}},
	}
	g := historyGroupsOf("acme", devs)
	want := map[string][]string{"node:n1": {"a", "b"}, "node:n2": {"c"}, "site:s": {"b", "c"}, "org:acme": {"a", "b", "c"}}
	if len(g) != len(want) {
		t.Fatalf("groups %v", g)
	}
	for k, v := range want {
		if !slices.Equal(g[k], v) {
			t.Errorf("%s = %v, want %v", k, g[k], v)
		}
	}
}

// TestPlanTelemetryHistoryKeepsEveryOwnedSample: the history gets every owned sample (older ones and
// several per miner too); unowned and invalid ones are not.
func TestPlanTelemetryHistoryKeepsEveryOwnedSample(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	registry := map[string]known{
		"mine":   {device: &pb.Device{MinerId: "mine", NodeId: "n1"}, observedMs: now.UnixMilli()},
		"theirs": {device: &pb.Device{MinerId: "theirs", NodeId: "n2"}},
	}
	lookup := func(id string) (known, bool) { k, ok := registry[id]; return k, ok }
	at := func(id string, d time.Duration) *pb.Telemetry {
		return &pb.Telemetry{MinerId: id, ObservedAtUnixMs: now.Add(d).UnixMilli()}
	}
	in := []*pb.Telemetry{at("mine", -time.Minute), at("mine", time.Second), at("mine", 2*time.Second), at("theirs", 0), at("", 0), at("new", 0)}
	p := planTelemetry("n1", in, lookup, false, now)
	var got []string
	for _, s := range p.history {
		got = append(got, s.GetMinerId())
	}
	if !slices.Equal(got, []string{"mine", "mine", "mine"}) || len(p.apply) != 1 {
		t.Fatalf("history %v, apply %d", got, len(p.apply))
	}
	if p = planTelemetry("n1", in, lookup, true, now); len(p.history) != 4 { // a trusted node's new miner too
		t.Fatalf("trusted: history %d", len(p.history))
	}
}
