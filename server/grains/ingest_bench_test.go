package grains

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/history"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// signalSink is the real history with a signal after each Append, so a benchmark can wait for the
// recorder to finish a batch.
type signalSink struct {
	*history.History
	appended chan int
}

func (s *signalSink) Append(samples []*pb.Telemetry) (history.AppendResult, error) {
	res, err := s.History.Append(samples)
	s.appended <- len(samples)
	return res, err
}

// ingestRig is one cloud's ingest path on real Badger directories: the store (synced writes, as in
// production), the history (its own Badger) and the fleet's actors, with miners of one node registered.
type ingestRig struct {
	f      *Fleet
	clk    *clock.Fake
	sink   *signalSink
	node   string
	ids    []string
	wire   [][]byte // per batch slot, a 500-sample TelemetryBatch as a node sends it
	times  [][]int  // per slot, where each sample's observed_at varint is in wire
	seq    uint64
	cursor int
}

// benchTimeMs is the observed time the templates are encoded with: a varint as long as every time the
// benchmark writes over it (6 bytes until 2109).
const benchTimeMs = int64(1) << 41

// observedAtOffsets finds each sample's observed_at varint in a batch's encoding.
func observedAtOffsets(b *testing.B, wire []byte, n int) []int {
	samples := splitSamples(wire, n)
	if samples == nil {
		b.Fatal("template batch does not split")
	}
	offs := make([]int, n)
	for i, s := range samples {
		base := int(uintptr(unsafe.Pointer(&s[0])) - uintptr(unsafe.Pointer(&wire[0]))) // s aliases wire
		for rest := s; len(rest) > 0; {
			num, typ, l := protowire.ConsumeTag(rest)
			if num == 2 && typ == protowire.VarintType {
				offs[i] = base + (len(s) - len(rest)) + l
				break
			}
			rest = rest[l:]
			rest = rest[protowire.ConsumeFieldValue(num, typ, rest):]
		}
		if offs[i] == 0 {
			b.Fatal("no observed_at in template sample")
		}
	}
	return offs
}

func newIngestRig(b *testing.B, miners, batch int) *ingestRig {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	clk := clock.NewFake(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	st, err := store.Open(store.Options{Dir: b.TempDir(), Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	hc := history.DefaultConfig()
	hc.Dir, hc.Clock, hc.Logger = b.TempDir(), clk, log
	h, err := history.Open(hc)
	if err != nil {
		b.Fatal(err)
	}
	sink := &signalSink{History: h, appended: make(chan int, 16)}
	sys := actors.NewSystem(log)
	cfg := DefaultConfig()
	cfg.Store, cfg.Clock, cfg.Logger, cfg.History = st, clk, log, sink
	cfg.Metrics = NewMetrics(nil, clk)
	f, err := New(cfg, sys)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			b.Error(err)
		}
		sys.Shutdown()
		if err := h.Close(); err != nil {
			b.Error(err)
		}
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	})
	r := &ingestRig{f: f, clk: clk, sink: sink, node: "node-01", ids: make([]string, miners)}
	devs := make([]*pb.Device, miners)
	for i := range miners {
		r.ids[i] = fmt.Sprintf("node-01-miner-%05d", i)
		devs[i] = &pb.Device{MinerId: r.ids[i], NodeId: r.node, Model: "Antminer S19 Pro", Address: fmt.Sprintf("10.1.%d.%d:4028", i/250, i%250),
			Serial: fmt.Sprintf("SN%08d", i), Mac: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)}
	}
	if err := f.RegisterDevices(context.Background(), devs); err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < miners; lo += batch {
		tb := &pb.TelemetryBatch{NodeId: r.node, SessionToken: "0123456789abcdef0123456789abcdef"}
		for i := lo; i < min(lo+batch, miners); i++ {
			tb.Samples = append(tb.Samples, benchSample(r.ids[i], i))
		}
		raw, err := proto.Marshal(tb)
		if err != nil {
			b.Fatal(err)
		}
		r.wire = append(r.wire, raw)
		r.times = append(r.times, observedAtOffsets(b, raw, len(tb.Samples)))
	}
	return r
}

// benchSample is a sample shaped like a simulated Antminer's (about 470 bytes as protobuf).
func benchSample(id string, i int) *pb.Telemetry {
	return &pb.Telemetry{MinerId: id, ObservedAtUnixMs: benchTimeMs, State: pb.MinerState_MINER_STATE_MINING,
		Hashrate_5SThs: 110 + float64(i%17)*0.31, HashrateAvgThs: 110.2,
		Boards: []*pb.Board{{Index: 0, TempC: 64, ChipTempC: 79, HashrateThs: 36.7, Chips: 76},
			{Index: 1, TempC: 65, ChipTempC: 80, HashrateThs: 36.6, Chips: 76},
			{Index: 2, TempC: 63, ChipTempC: 78, HashrateThs: 36.9, Chips: 76}},
		FansRpm: []int32{5400, 5460, 5520, 5380}, PowerW: 3250 + float64(i%50), EfficiencyJth: 29.5,
		Pools: []*pb.Pool{
			{Url: "stratum+tcp://btc.pool.example.com:3333", User: "fleet.worker" + id[len(id)-5:], Priority: 0, Status: "Alive", Accepted: 18_250 + int64(i), Rejected: 12, Active: true},
			{Url: "stratum+tcp://btc-backup.pool.example.com:3333", User: "fleet.worker", Priority: 1, Status: "Alive"},
			{Url: "stratum+tcp://solo.example.org:3333", User: "fleet", Priority: 2, Status: "Dead"}},
		UptimeS: 86_400 + int64(i), Firmware: "Antminer-S19-Pro-20230510", Model: "Antminer S19 Pro",
		Serial: fmt.Sprintf("SN%08d", i), Mac: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256), WorkMode: "normal",
		PollLatencyUs: 4_200}
}

// next ingests the next batch as the gateway does (the frame's bytes copied out of gRPC's buffers, decoded
// with each sample's encoding kept, Fleet.IngestEncodedTelemetry), then waits until the history has
// appended it and the fleet view answers with its last sample. The clock moves so that every miner reports
// every 5 s.
func (r *ingestRig) next(b *testing.B) int {
	r.clk.Advance(5 * time.Second / time.Duration(len(r.wire)))
	slot := r.cursor
	r.cursor = (r.cursor + 1) % len(r.wire)
	r.seq++
	at := r.clk.Now().Add(-150 * time.Millisecond).UnixMilli()
	frame := make([]byte, len(r.wire[slot]), len(r.wire[slot])+12)
	copy(frame, r.wire[slot])
	for _, off := range r.times[slot] {
		protowire.AppendVarint(frame[off:off], uint64(at))
	}
	frame = protowire.AppendTag(frame, 2, protowire.VarintType) // batch_seq
	frame = protowire.AppendVarint(frame, r.seq)
	var tb pb.TelemetryBatch
	encoded, err := DecodeTelemetryBatch(frame, &tb)
	if err != nil || encoded == nil {
		b.Fatalf("decode: %v (encodings %d)", err, len(encoded))
	}
	ctx := context.Background()
	res, err := r.f.IngestEncodedTelemetry(ctx, r.node, &tb, encoded)
	if err != nil {
		b.Fatal(err)
	}
	if res.Applied != len(tb.Samples) {
		b.Fatalf("applied %d of %d", res.Applied, len(tb.Samples))
	}
	if n := <-r.sink.appended; n != len(tb.Samples) {
		b.Fatalf("history appended %d of %d", n, len(tb.Samples))
	}
	last := tb.Samples[len(tb.Samples)-1]
	row, err := r.f.Miner(ctx, last.GetMinerId())
	if err != nil {
		b.Fatal(err)
	}
	if row.Telemetry.GetObservedAtUnixMs() != at {
		b.Fatalf("view has %d, want %d", row.Telemetry.GetObservedAtUnixMs(), at)
	}
	return len(tb.Samples)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestSteady is the cloud's ingest path for one node's batch in steady state (every miner
// registered and reporting, 5,000 miners on the node, each every 5 s): protobuf decode, the Org's plan and
// store write (one synced WriteBatch with the dedup mark), the miners' actors, the fleet view and the history
// (raw samples, minute and hour closes, group rollups). It reports per sample the wall time, the process's
// CPU time (every goroutine: actors, Badger, GC) and the allocations. batch=500 is a full batch (a
// 5,000-miner site); batch=100 what a 1,000-miner site sends with the node's 500 ms flush.
func BenchmarkIngestSteady(b *testing.B) {
	for _, batch := range []int{500, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchIngestSteady(b, 5_000, batch) })
	}
}

// BenchmarkIngestPaced is BenchmarkIngestSteady with the batches arriving at a node's pace rather than back
// to back: one batch of 100 every 50 ms (2,000 samples/s, the ingest suite's 10,000 miners at 5 s), with
// the process idle in between, as a cloud is between batches. Its CPU per sample is what the real run pays:
// each batch wakes the idle process (threads woken and put back to sleep, the runtime's sysmon woken), a
// cost per batch that back-to-back batches share. It reports the same figures as BenchmarkIngestSteady
// (wall time per sample is mostly the pause).
func BenchmarkIngestPaced(b *testing.B) {
	b.Run("batch=100/every=50ms", func(b *testing.B) { benchIngest(b, 5_000, 100, 50*time.Millisecond) })
}

func benchIngestSteady(b *testing.B, miners, batch int) { benchIngest(b, miners, batch, 0) }

// benchIngest ingests batches of batch samples from a node of miners miners, every pace (0: back to back).
func benchIngest(b *testing.B, miners, batch int, pace time.Duration) {
	r := newIngestRig(b, miners, batch)
	for range 2 * len(r.wire) { // every miner seen twice: history state restored, rows filled
		r.next(b)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := cpuTime()
	b.ResetTimer()
	samples := 0
	due := time.Now()
	for b.Loop() {
		if pace > 0 {
			due = due.Add(pace)
			time.Sleep(time.Until(due))
		}
		samples += r.next(b)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&m1)
	n := float64(samples)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/n, "µs/sample")
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/sample")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n, "allocs/sample")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/n, "B/sample")
}
