package spool

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// t0 is the simulated start of every scenario.
var t0 = time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)

func quiet() *slog.Logger {
	if os.Getenv("HASHFLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// harness is one spool directory, reopened as a scenario needs, with a fake clock and its own registry.
type harness struct {
	t   testing.TB
	dir string
	cfg Config
	clk *clock.Fake
	reg *prometheus.Registry
	s   *Spool
}

func newHarness(t testing.TB, mutate func(*Config)) *harness {
	h := &harness{t: t, dir: t.TempDir(), clk: clock.NewFake(t0)}
	h.cfg = DefaultConfig()
	h.cfg.Dir, h.cfg.Clock, h.cfg.Logger = h.dir, h.clk, quiet()
	if mutate != nil {
		mutate(&h.cfg)
	}
	h.open()
	t.Cleanup(func() { _ = h.s.Close() })
	return h
}

func (h *harness) open() {
	h.t.Helper()
	h.reg = prometheus.NewRegistry()
	cfg := h.cfg
	cfg.Registerer = h.reg
	s, err := Open(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.s = s
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// crashImage copies the spool's files as they are on disk right now: what a kill -9 at this instant leaves.
func (h *harness) crashImage() string {
	h.t.Helper()
	dst := h.t.TempDir()
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		if err := copySparse(filepath.Join(h.dir, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			h.t.Fatal(err)
		}
	}
	return dst
}

// openAt opens another spool on dir with h's configuration.
func (h *harness) openAt(dir string) *Spool {
	h.t.Helper()
	cfg := h.cfg
	cfg.Dir, cfg.Registerer = dir, prometheus.NewRegistry()
	s, err := Open(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (h *harness) append(b telemetry.Batch) []uint64 {
	h.t.Helper()
	d, err := h.s.Append(b)
	if err != nil {
		h.t.Fatalf("append %s %d: %v", b.Kind, b.Seq, err)
	}
	return d
}

func (h *harness) dropped(reason string) float64 {
	return promtest.ToFloat64(h.s.m.droppedSamples.WithLabelValues(reason))
}

func (h *harness) droppedEvents(reason string) float64 {
	return promtest.ToFloat64(h.s.m.droppedEvents.WithLabelValues(reason))
}

// drain walks every batch of kind from the oldest and acks it, returning them in order.
func drain(t testing.TB, s *Spool, kind telemetry.Kind) []telemetry.Batch {
	t.Helper()
	var out []telemetry.Batch
	for {
		b, ok, err := s.Next(kind, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, b)
		if ok, err := s.Ack(kind, b.Seq); err != nil || !ok {
			t.Fatalf("ack %s %d: %v %v", kind, b.Seq, ok, err)
		}
	}
}

// sample is a realistic, deterministic sample: every reading is a function of (miner, observed_at), so a test
// can recompute any average.
func sample(miner int, at time.Time) *pb.Telemetry {
	ms := at.UnixMilli()
	h := hashrate(miner, ms)
	return &pb.Telemetry{
		MinerId: minerID(miner), ObservedAtUnixMs: ms, State: pb.MinerState_MINER_STATE_MINING,
		Hashrate_5SThs: h, HashrateAvgThs: h - 0.5,
		Boards: []*pb.Board{
			{Index: 0, TempC: temp(miner, ms, 0), ChipTempC: temp(miner, ms, 0) + 15, HashrateThs: h / 3, Chips: 76},
			{Index: 1, TempC: temp(miner, ms, 1), ChipTempC: temp(miner, ms, 1) + 15, HashrateThs: h / 3, Chips: 76},
			{Index: 2, TempC: temp(miner, ms, 2), ChipTempC: temp(miner, ms, 2) + 15, HashrateThs: h / 3, Chips: 76},
		},
		FansRpm: []int32{5400, 5460, 5520, 5580},
		PowerW:  power(miner, ms), EfficiencyJth: power(miner, ms) / h,
		Pools: []*pb.Pool{
			{Url: "stratum+tcp://btc.pool.example.com:3333", User: fmt.Sprintf("acme.w%04d", miner), Status: "Alive", Priority: 0, Accepted: ms / 1000, Rejected: ms / 100000, Active: true},
			{Url: "stratum+tcp://backup.pool.example.com:443", User: fmt.Sprintf("acme.w%04d", miner), Status: "Alive", Priority: 1},
		},
		UptimeS: ms/1000 - t0.Unix(), Firmware: "Antminer S19 Pro Tue Jan 9 2024", Model: "Antminer S19 Pro",
		Serial: fmt.Sprintf("JYZZ%08d", miner), Mac: fmt.Sprintf("02:00:00:00:%02x:%02x", miner>>8, miner&0xff),
		WorkMode: "normal", PowerTargetW: 3300, PollLatencyUs: 2000 + int64(miner%500),
	}
}

func minerID(i int) string { return fmt.Sprintf("sim-%04d", i) }

func hashrate(miner int, ms int64) float64 { return 100 + float64(miner%7) + float64((ms/5000)%13)/10 }
func temp(miner int, ms int64, board int) float64 {
	return 60 + float64(board) + float64(miner%5) + float64((ms/5000)%11)/4
}
func power(miner int, ms int64) float64 { return 3200 + float64(miner%9)*10 + float64((ms/5000)%17) }

// site simulates the batcher's input: miners polled every interval, samples cut into batches of size with
// consecutive seqs, batch by batch.
type site struct {
	miners   int
	interval time.Duration
	size     int
	at       time.Time
	next     int // next miner to poll at at
	seq      uint64
	eventSeq uint64
}

func newSite(miners, size int) *site {
	return &site{miners: miners, interval: 5 * time.Second, size: size, at: t0, seq: 0}
}

// batch returns the next telemetry batch. Within one poll round miners are polled in order, all at the
// round's instant.
func (s *site) batch() telemetry.Batch {
	s.seq++
	tb := &pb.TelemetryBatch{NodeId: "n1", BatchSeq: s.seq}
	for len(tb.Samples) < s.size {
		tb.Samples = append(tb.Samples, sample(s.next, s.at))
		if s.next++; s.next == s.miners {
			s.next, s.at = 0, s.at.Add(s.interval)
		}
	}
	return telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: s.seq, Telemetry: tb}
}

// events returns an event batch: one audit record, one local command and droppable state changes.
func (s *site) events(stateChanges int) telemetry.Batch {
	s.eventSeq++
	n := s.eventSeq
	eb := &pb.EventBatch{NodeId: "n1", BatchSeq: n, Events: []*pb.Event{
		{EventId: fmt.Sprintf("audit-%d", n), Kind: pb.EventKind_EVENT_KIND_COMMAND_AUDIT, AtUnixMs: s.at.UnixMilli(),
			Audit: &pb.AuditRecord{CommandId: fmt.Sprintf("c%d", n), MonotonicSeq: n, Code: pb.ResultCode_RESULT_CODE_RUNNING}},
		{EventId: fmt.Sprintf("local-%d", n), Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND, AtUnixMs: s.at.UnixMilli(),
			LocalCommand: &pb.LocalCommand{CommandId: fmt.Sprintf("l%d", n), LocalOrigin: true, MinerIds: []string{minerID(1)}}},
	}}
	for i := range stateChanges {
		eb.Events = append(eb.Events, &pb.Event{EventId: fmt.Sprintf("state-%d-%d", n, i), Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE,
			MinerId: minerID(i), FromState: pb.MinerState_MINER_STATE_MINING, ToState: pb.MinerState_MINER_STATE_UNREACHABLE,
			AtUnixMs: s.at.UnixMilli(), Message: "two polls in a row failed: dial tcp: connection refused"})
	}
	return telemetry.Batch{Kind: telemetry.KindEvents, Seq: n, Events: eb}
}

// cloud is the fake cloud's ingest: a high-water mark per kind (as server/grains Org does) and every applied
// sample by miner.
type cloud struct {
	mark     [2]uint64
	samples  map[string][]*pb.Telemetry
	events   map[string]int
	applied  int
	dupBatch int
}

func newCloud() *cloud {
	return &cloud{samples: map[string][]*pb.Telemetry{}, events: map[string]int{}}
}

// ingest applies b unless its seq is at or below the mark (a duplicate), as the cloud does.
func (c *cloud) ingest(b telemetry.Batch) {
	if b.Seq <= c.mark[b.Kind] {
		c.dupBatch++
		return
	}
	c.mark[b.Kind] = b.Seq
	for _, s := range b.Telemetry.GetSamples() {
		c.samples[s.GetMinerId()] = append(c.samples[s.GetMinerId()], s)
		c.applied++
	}
	for _, e := range b.Events.GetEvents() {
		c.events[e.GetEventId()]++
	}
}

// copySparse copies a file, leaving runs of zeros as holes (Badger preallocates its logs).
func copySparse(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	const chunk = 64 << 10
	zero := make([]byte, chunk)
	for off := 0; off < len(b); off += chunk {
		c := b[off:min(off+chunk, len(b))]
		if !bytes.Equal(c, zero[:len(c)]) {
			if _, err := f.WriteAt(c, int64(off)); err != nil {
				f.Close()
				return err
			}
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
