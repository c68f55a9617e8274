package store

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// benchTelemetry is a sample shaped like a simulated Antminer's (about 470 bytes as protobuf).
func benchTelemetry(i int, at int64) *pb.Telemetry {
	id := fmt.Sprintf("node-01-miner-%05d", i)
	return &pb.Telemetry{MinerId: id, ObservedAtUnixMs: at, State: pb.MinerState_MINER_STATE_MINING,
		Hashrate_5SThs: 110 + float64(i%17)*0.31, HashrateAvgThs: 110.2,
		Boards: []*pb.Board{{Index: 0, TempC: 64, ChipTempC: 79, HashrateThs: 36.7, Chips: 76},
			{Index: 1, TempC: 65, ChipTempC: 80, HashrateThs: 36.6, Chips: 76},
			{Index: 2, TempC: 63, ChipTempC: 78, HashrateThs: 36.9, Chips: 76}},
		FansRpm: []int32{5400, 5460, 5520, 5380}, PowerW: 3250 + float64(i%50), EfficiencyJth: 29.5,
		Pools: []*pb.Pool{
			{Url: "stratum+tcp://btc.pool.example.com:3333", User: "fleet.worker" + id[len(id)-5:], Status: "Alive", Accepted: 18_250 + int64(i), Rejected: 12, Active: true},
			{Url: "stratum+tcp://btc-backup.pool.example.com:3333", User: "fleet.worker", Priority: 1, Status: "Alive"},
			{Url: "stratum+tcp://solo.example.org:3333", User: "fleet", Priority: 2, Status: "Dead"}},
		UptimeS: 86_400 + int64(i), Firmware: "Antminer-S19-Pro-20230510", Model: "Antminer S19 Pro",
		Serial: fmt.Sprintf("SN%08d", i), Mac: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256), WorkMode: "normal",
		PollLatencyUs: 4_200}
}

// BenchmarkApplyTelemetry is the store's share of a telemetry batch: 500 latest samples of a 5,000-miner
// node and the dedup mark, one synced write on a real directory; "encode" encodes each sample, "encoded"
// stores the encodings the node sent (Batch.TelemetryEncoded).
func BenchmarkApplyTelemetry(b *testing.B) {
	for _, encoded := range []bool{false, true} {
		name := "encode"
		if encoded {
			name = "encoded"
		}
		b.Run(name, func(b *testing.B) { benchApplyTelemetry(b, encoded) })
	}
}

func benchApplyTelemetry(b *testing.B, encoded bool) {
	const miners, batch = 5_000, 500
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	samples := make([]*pb.Telemetry, miners)
	wire := make([][]byte, miners)
	for i := range samples {
		samples[i] = benchTelemetry(i, 1)
	}
	var seq uint64
	var notStore time.Duration // CPU spent making the node's encodings
	apply := func() {
		lo := int(seq%(miners/batch)) * batch
		seq++
		bt := Batch{Telemetry: samples[lo : lo+batch], Mark: &Mark{Node: "node-01", Kind: KindTelemetry, Seq: seq}}
		for _, t := range bt.Telemetry {
			t.ObservedAtUnixMs = int64(seq)
		}
		if encoded { // as a node sent them: the bytes exist before the store sees the batch
			b.StopTimer()
			c := cpuTime()
			for i, t := range bt.Telemetry {
				wire[lo+i], _ = proto.Marshal(t)
			}
			bt.TelemetryEncoded = wire[lo : lo+batch]
			notStore += cpuTime() - c
			b.StartTimer()
		}
		if err := s.Apply(bt); err != nil {
			b.Fatal(err)
		}
	}
	for range 2 * miners / batch {
		apply()
	}
	b.ReportAllocs()
	cpu0, notStore0 := cpuTime(), notStore
	for b.Loop() {
		apply()
	}
	n := float64(b.N * batch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n/1e3, "µs/sample")
	b.ReportMetric(float64((cpuTime()-cpu0-(notStore-notStore0)).Nanoseconds())/n/1e3, "cpu-µs/sample")
}

// cpuTime is the process's CPU time so far (every goroutine: Badger's writer, flushes and compactions too).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Apply stores the encodings it is given as they are, encodes samples without one, and refuses encodings
// that do not pair with the samples one to one (nothing written).
func TestApplyTelemetryEncoded(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t1, t2 := benchTelemetry(1, 10), benchTelemetry(2, 20)
	enc, _ := proto.Marshal(t1)
	enc = protowire.AppendVarint(protowire.AppendTag(enc, 999, protowire.VarintType), 5) // a newer node's field
	if err := s.Apply(Batch{Telemetry: []*pb.Telemetry{t1, t2}, TelemetryEncoded: [][]byte{enc, nil}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestTelemetry()
	if err != nil || len(got) != 2 {
		t.Fatalf("latest: %d %v", len(got), err)
	}
	if !proto.Equal(got[1], t2) || got[0].GetMinerId() != t1.GetMinerId() || len(got[0].ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("stored %v / %v", got[0], got[1])
	}
	err = s.Apply(Batch{Telemetry: []*pb.Telemetry{benchTelemetry(3, 1)}, TelemetryEncoded: [][]byte{enc, enc},
		Mark: &Mark{Node: "n1", Kind: KindTelemetry, Seq: 1}})
	if err == nil {
		t.Fatal("mismatched encodings applied")
	}
	if got, _ := s.LatestTelemetry(); len(got) != 2 {
		t.Fatalf("refused batch wrote samples: %d", len(got))
	}
	if marks, _ := s.Marks(); len(marks) != 0 {
		t.Fatalf("refused batch wrote its mark: %v", marks)
	}
}
