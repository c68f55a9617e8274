package spool

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/store"
	"github.com/hashfleet/hashfleet/node/telemetry"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
)

func seqs(bs []telemetry.Batch) []uint64 {
	out := make([]uint64, len(bs))
	for i, b := range bs {
		out[i] = b.Seq
	}
	return out
}

func TestOrderAndRestartSurvival(t *testing.T) {
	h := newHarness(t, nil)
	st := newSite(10, 7)
	var want []telemetry.Batch
	for range 6 {
		b := st.batch()
		want = append(want, b)
		h.append(b)
	}
	for range 3 {
		h.append(st.events(2))
	}
	if _, err := h.s.Append(telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: 6, Telemetry: &pb.TelemetryBatch{BatchSeq: 6}}); !errors.Is(err, telemetry.ErrSeqOrder) {
		t.Fatalf("seq 6 again: %v, want ErrSeqOrder", err)
	}
	if _, err := h.s.Append(telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: 9, Telemetry: &pb.TelemetryBatch{BatchSeq: 8}}); !errors.Is(err, ErrBadBatch) {
		t.Fatalf("payload seq differs: %v, want ErrBadBatch", err)
	}

	h.reopen() // a restart: everything comes back from disk, in order
	if b, items := h.s.Len(telemetry.KindTelemetry); b != 6 || items != 42 {
		t.Fatalf("after reopen: %d batches %d samples, want 6 and 42", b, items)
	}
	if b, items := h.s.Len(telemetry.KindEvents); b != 3 || items != 12 {
		t.Fatalf("after reopen: %d event batches %d events, want 3 and 12", b, items)
	}
	var after uint64
	for i := range want {
		b, ok, err := h.s.Next(telemetry.KindTelemetry, after)
		if err != nil || !ok {
			t.Fatalf("next after %d: %v %v", after, ok, err)
		}
		if !proto.Equal(b.Telemetry, want[i].Telemetry) {
			t.Fatalf("batch %d after reopen differs from what was appended", b.Seq)
		}
		after = b.Seq
	}
	if _, ok, _ := h.s.Next(telemetry.KindTelemetry, after); ok {
		t.Fatal("a batch past the last")
	}
	if _, err := h.s.Append(telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: 3, Telemetry: &pb.TelemetryBatch{BatchSeq: 3}}); !errors.Is(err, telemetry.ErrSeqOrder) {
		t.Fatalf("after reopen, seq 3 accepted below the spool's last seq: %v", err)
	}

	// Acks delete; after a clean restart Next returns the unacked only.
	for _, s := range []uint64{1, 2, 4} {
		if ok, err := h.s.Ack(telemetry.KindTelemetry, s); !ok || err != nil {
			t.Fatalf("ack %d: %v %v", s, ok, err)
		}
	}
	if ok, _ := h.s.Ack(telemetry.KindTelemetry, 2); ok {
		t.Fatal("second ack of 2 found it")
	}
	h.reopen()
	if got := seqs(drain(t, h.s, telemetry.KindTelemetry)); !slices.Equal(got, []uint64{3, 5, 6}) {
		t.Fatalf("after acks of 1 2 4 and a restart: %v, want [3 5 6]", got)
	}
	if got := seqs(drain(t, h.s, telemetry.KindEvents)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("events: %v", got)
	}
	h.reopen()
	if b, _ := h.s.Len(telemetry.KindTelemetry); b != 0 {
		t.Fatalf("%d batches left after everything was acked", b)
	}
	// Nothing of the acked batches is left on disk.
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := badgerkv.Open(badgerkv.Options{Dir: h.dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	_ = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			left = append(left, string(it.Item().Key()))
		}
		return nil
	})
	_ = db.Close()
	if !slices.Equal(left, []string{keyInfo}) {
		t.Fatalf("keys left on disk after every ack: %q", left)
	}
	h.open()
}

// A crash forgets at most the acks not yet flushed: those batches come back and a cloud deduplicating by
// batch_seq applies every batch exactly once.
func TestReplayAfterCrashIsDedupeSafe(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AckFlushEvery = 2 })
	st := newSite(5, 10)
	c := newCloud()
	for range 10 {
		h.append(st.batch())
	}
	// The cloud gets and acks 1..5; the spool flushed the acks of 1..4 (groups of 2) but not 5's.
	var after uint64
	for range 5 {
		b, _, _ := h.s.Next(telemetry.KindTelemetry, after)
		c.ingest(b)
		after = b.Seq
		if _, err := h.s.Ack(telemetry.KindTelemetry, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	image := h.crashImage()
	s2 := h.openAt(image)
	var replay []uint64
	for after = 0; ; {
		b, ok, err := s2.Next(telemetry.KindTelemetry, after)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		replay = append(replay, b.Seq)
		c.ingest(b)
		after = b.Seq
		if _, err := s2.Ack(telemetry.KindTelemetry, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(replay, []uint64{5, 6, 7, 8, 9, 10}) {
		t.Fatalf("replayed %v after the crash, want 5 (acked, not yet flushed) then 6..10", replay)
	}
	if c.dupBatch != 1 || c.applied != 100 {
		t.Fatalf("cloud applied %d samples with %d duplicate batches, want 100 and 1", c.applied, c.dupBatch)
	}
	for m := range 5 {
		if n := len(c.samples[minerID(m)]); n != 20 {
			t.Fatalf("miner %d: %d samples at the cloud, want 20", m, n)
		}
	}
}

func TestGaugesAndProgress(t *testing.T) {
	h := newHarness(t, nil)
	st := newSite(10, 10)
	for range 4 {
		h.append(st.batch())
	}
	h.append(st.events(1))
	h.clk.Advance(90e9)
	if got := promtest.ToFloat64(h.s.m.depth.WithLabelValues("telemetry")); got != 4 {
		t.Fatalf("depth gauge %v", got)
	}
	if got := promtest.ToFloat64(h.s.m.items.WithLabelValues("events")); got != 3 {
		t.Fatalf("events items gauge %v", got)
	}
	if got := promtest.ToFloat64(h.s.m.bytes); got != float64(h.s.Stats().Bytes) || got <= 0 {
		t.Fatalf("bytes gauge %v, stats %d", got, h.s.Stats().Bytes)
	}
	if age, _ := h.s.oldestAge(); age != 90 {
		t.Fatalf("oldest age %v, want 90s", age)
	}
	if n, err := promtest.GatherAndCount(h.reg, "hashfleet_node_spool_oldest_age_seconds"); err != nil || n != 1 {
		t.Fatalf("age series: %d, %v", n, err)
	}
	if p := h.s.Progress(); p.Acked != 0 || p.Total != 43 || p.TotalBatches != 5 || p.Done() {
		t.Fatalf("progress before replay %+v", p)
	}
	b, _, _ := h.s.Next(telemetry.KindTelemetry, 0)
	_, _ = h.s.Ack(telemetry.KindTelemetry, b.Seq)
	h.clk.Advance(1e9)
	b, _, _ = h.s.Next(telemetry.KindTelemetry, 0)
	_, _ = h.s.Ack(telemetry.KindTelemetry, b.Seq)
	p := h.s.Progress()
	if p.Acked != 20 || p.Total != 43 || p.AckedBatches != 2 || p.Rate != 10 {
		t.Fatalf("progress mid replay %+v (%s)", p, p)
	}
	drain(t, h.s, telemetry.KindTelemetry)
	drain(t, h.s, telemetry.KindEvents)
	if p := h.s.Progress(); !p.Done() || p.Fraction() != 1 {
		t.Fatalf("progress after the drain %+v", p)
	}
	if age, ok := h.s.oldestAge(); ok || age != 0 {
		t.Fatalf("an empty spool has an oldest entry: %v", age)
	}
}

func TestProtected(t *testing.T) {
	for _, c := range []struct {
		e    *pb.Event
		want bool
	}{
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_COMMAND_AUDIT}, true},
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND}, true},
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_UNSPECIFIED, Audit: &pb.AuditRecord{}}, true},
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE, LocalCommand: &pb.LocalCommand{}}, true},
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE}, false},
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_POLL_ERROR}, false},
		{&pb.Event{Kind: pb.EventKind_EVENT_KIND_NODE_METRICS}, false},
	} {
		if got := Protected(c.e); got != c.want {
			t.Errorf("Protected(%v) = %v", c.e, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.MaxBytes, bad.ShedToBytes, bad.AckFlushEvery, bad.AggregateWindow, bad.CacheBytes = 1000, 5000, 0, 0, -1
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"max bytes", "shed-to", "ack flush", "aggregate window", "cache bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := Open(bad); err == nil {
		t.Fatal("Open accepted a bad config")
	}
}

func TestKeysAndMetaRoundTrip(t *testing.T) {
	m := meta{variant: variantAggregated, items: 500, protected: 3, valueLen: 123456, at: -5, maxObs: 1_790_000_000_000}
	got, err := decodeMeta(encodeMeta(m))
	if err != nil || got != m {
		t.Fatalf("meta round trip: %+v, %v", got, err)
	}
	for _, b := range [][]byte{nil, {2, 'r'}, {1, 'x', 1, 1, 1, 1, 1}, {1, 'r', 0x80}} {
		if _, err := decodeMeta(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decodeMeta(%v) = %v, want ErrCorrupt", b, err)
		}
	}
	k, s, err := parseMetaKey(metaKey(telemetry.KindEvents, 77))
	if err != nil || k != telemetry.KindEvents || s != 77 {
		t.Fatalf("meta key: %v %v %v", k, s, err)
	}
	in := intent{kind: telemetry.KindTelemetry, targets: []uint64{5, 9, 1 << 40}}
	gotIn, err := decodeIntent(encodeIntent(in))
	if err != nil || gotIn.kind != in.kind || !slices.Equal(gotIn.targets, in.targets) {
		t.Fatalf("intent round trip: %+v, %v", gotIn, err)
	}
}

func TestClosedSpool(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := h.s.Append(newSite(1, 1).batch()); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, _, err := h.s.Next(telemetry.KindTelemetry, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("next after close: %v", err)
	}
	h.open()
}

// The node keeps its spool in <data-dir>/spool, inside the node store's own Badger directory: each store
// ignores the other's files.
func TestSpoolBesideTheNodeStore(t *testing.T) {
	dataDir := t.TempDir()
	ns, err := store.Open(store.Options{DataDir: dataDir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir, cfg.Logger = filepath.Join(dataDir, DirName), quiet()
	sp, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.CommitCommand(&pb.AuditRecord{MonotonicSeq: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Append(newSite(3, 3).batch()); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(sp.Close(), ns.Close()); err != nil {
		t.Fatal(err)
	}
	ns, err = store.Open(store.Options{DataDir: dataDir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	sp, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if m, _ := ns.SeqMark(); m != 9 {
		t.Fatalf("node store mark %d after reopening both", m)
	}
	if b, _ := sp.Len(telemetry.KindTelemetry); b != 1 {
		t.Fatalf("spool holds %d batches after reopening both", b)
	}
}
