package history

import (
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// benchFleet is a fleet of n miners with realistic ids and readings, 5 s polls.
type benchFleet struct {
	ids []string
}

func newBenchFleet(n int) *benchFleet {
	f := &benchFleet{ids: make([]string, n)}
	for i := range n {
		f.ids[i] = fmt.Sprintf("miner-%05d", i)
	}
	return f
}

func (f *benchFleet) sample(i int, at time.Time) *pb.Telemetry {
	k := int(at.Unix() / 5)
	return &pb.Telemetry{MinerId: f.ids[i], ObservedAtUnixMs: at.UnixMilli(), State: pb.MinerState_MINER_STATE_MINING,
		Hashrate_5SThs: 180 + float64((i+k)%40)*0.37, PowerW: 3400 + float64((i*7+k)%90),
		Boards:  []*pb.Board{{TempC: 60 + float64(k%9), ChipTempC: 70 + float64((i+k)%11)}, {TempC: 61, ChipTempC: 72}, {TempC: 59, ChipTempC: 71}},
		FansRpm: []int32{int32(5200 + k%40), int32(5300 + i%60), 5250, 5310}}
}

// diskBytes is what Badger keeps on disk in dir: tables and value log.
func diskBytes(b testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".sst") || strings.HasSuffix(p, ".vlog") {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkHistoryAppend appends 2,000-sample batches (a node's batch) of a 20,000-miner fleet polled every
// 5 s, in time order, with 20 site and 100 node groups: raw samples, minute closes every 12 ticks, and their
// group contributions. It reports samples/s and, after Close flushes the memtables, the bytes on disk per
// sample (tables + value log; rollups included).
func BenchmarkHistoryAppend(b *testing.B) {
	const miners, batch = 20_000, 2_000
	f := newBenchFleet(miners)
	dir := b.TempDir()
	clk := clock.NewFake(t0)
	cfg := DefaultConfig()
	cfg.Dir, cfg.Clock, cfg.Logger = dir, clk, slog.New(slog.DiscardHandler)
	h, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	groups := map[string][]string{}
	for i, id := range f.ids {
		groups[fmt.Sprintf("site/%d", i%20)] = append(groups[fmt.Sprintf("site/%d", i%20)], id)
		groups[fmt.Sprintf("node/%d", i%100)] = append(groups[fmt.Sprintf("node/%d", i%100)], id)
	}
	if err := h.SetGroups(groups); err != nil {
		b.Fatal(err)
	}
	buf := make([]*pb.Telemetry, batch)
	written := 0
	b.ResetTimer()
	for n := range b.N {
		tick := n / (miners / batch)
		at := t0.Add(time.Duration(tick) * 5 * time.Second)
		first := n % (miners / batch) * batch
		b.StopTimer()
		for j := range batch {
			buf[j] = f.sample(first+j, at.Add(time.Duration(j%1000)*time.Millisecond))
		}
		clk.Set(at.Add(time.Second))
		b.StartTimer()
		r, err := h.Append(buf)
		if err != nil {
			b.Fatal(err)
		}
		written += r.Written
	}
	b.StopTimer()
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "samples/s")
	if err := h.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(diskBytes(b, dir))/float64(written), "disk-B/sample")
}

// BenchmarkFleetTotals20k queries a 20,000-miner fleet (20 sites, 100 nodes) holding an hour of history at
// 1-minute polls plus an open minute: fleet and site totals from the rollups kept at ingest, live totals, and
// for comparison the same fleet total computed by Aggregate over the 20,000 series.
func BenchmarkFleetTotals20k(b *testing.B) {
	const miners = 20_000
	f := newBenchFleet(miners)
	clk := clock.NewFake(t0)
	cfg := DefaultConfig()
	cfg.Dir, cfg.Clock, cfg.Logger = b.TempDir(), clk, slog.New(slog.DiscardHandler)
	cfg.MaxAggregateMiners = miners
	h, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	groups := map[string][]string{}
	for i, id := range f.ids {
		groups[fmt.Sprintf("site/%d", i%20)] = append(groups[fmt.Sprintf("site/%d", i%20)], id)
		groups[fmt.Sprintf("node/%d", i%100)] = append(groups[fmt.Sprintf("node/%d", i%100)], id)
	}
	if err := h.SetGroups(groups); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	batch := make([]*pb.Telemetry, 0, 5_000)
	for m := 0; m <= 60; m++ {
		at := t0.Add(time.Duration(m)*time.Minute + 30*time.Second)
		clk.Set(at)
		for i := range miners {
			batch = append(batch, f.sample(i, at))
			if len(batch) == cap(batch) {
				if _, err := h.Append(batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	b.Logf("setup: %d samples in %s", miners*61, time.Since(began).Round(time.Millisecond))
	now := t0.Add(61 * time.Minute)
	clk.Set(now)
	from := now.Add(-time.Hour)

	b.Run("fleet-1h-by-1m", func(b *testing.B) {
		for range b.N {
			t, err := h.FleetTotals(from, now, time.Minute)
			if err != nil || len(t.Points) != 60 || t.Points[59].Miners != miners {
				b.Fatalf("%v %d points", err, len(t.Points))
			}
		}
	})
	b.Run("fleet-24h-by-5m", func(b *testing.B) {
		for range b.N {
			if _, err := h.FleetTotals(now.Add(-24*time.Hour), now, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fleet-30d-by-1h", func(b *testing.B) {
		for range b.N {
			if _, err := h.FleetTotals(now.Add(-30*24*time.Hour), now, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("site-1h-by-1m", func(b *testing.B) {
		for range b.N {
			if t, err := h.GroupTotals("site/7", from, now, time.Minute); err != nil || t.Points[0].Miners != miners/20 {
				b.Fatal(err)
			}
		}
	})
	b.Run("live-fleet", func(b *testing.B) {
		for range b.N {
			if p, err := h.Live(Fleet); err != nil || p.Miners != miners {
				b.Fatalf("%+v %v", p, err)
			}
		}
	})
	b.Run("aggregate-scan-1h-by-1m", func(b *testing.B) {
		for range b.N {
			if t, err := h.Aggregate(f.ids, from, now, time.Minute, Sum); err != nil || len(t.Points) != 60 {
				b.Fatal(err)
			}
		}
	})
}
