package history

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// BenchmarkHistoryFirstSight appends the first samples of miners the history has never seen (a site being
// paired) into a history that already holds an hour of 5 s samples of 5,000 other miners, 2,000 new miners a
// batch. It reports the cost per new miner: the first sample of a miner is where its state is restored.
func BenchmarkHistoryFirstSight(b *testing.B) {
	const old, batch = 5_000, 2_000
	clk := clock.NewFake(t0)
	cfg := DefaultConfig()
	cfg.Dir, cfg.Clock, cfg.Logger = b.TempDir(), clk, slog.New(slog.DiscardHandler)
	h, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	f := newBenchFleet(old)
	buf := make([]*pb.Telemetry, 0, batch)
	var at time.Time
	for tick := range 720 {
		at = t0.Add(time.Duration(tick) * 5 * time.Second)
		clk.Set(at)
		for i := range old {
			buf = append(buf, f.sample(i, at))
			if len(buf) == cap(buf) {
				if _, err := h.Append(buf); err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
			}
		}
	}
	at = at.Add(5 * time.Second)
	clk.Set(at)
	next := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		buf = buf[:0]
		for range batch {
			s := f.sample(next%old, at)
			s.MinerId = fmt.Sprintf("new-%08d", next)
			buf = append(buf, s)
			next++
		}
		b.StartTimer()
		if r, err := h.Append(buf); err != nil || r.Written != batch {
			b.Fatalf("%+v %v", r, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next), "ns/miner")
}
