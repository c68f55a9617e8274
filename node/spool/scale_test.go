package spool

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/telemetry"
)

// scenario is the scale case at the spool level: miners polled every 5 s while the cloud is down,
// batched as the batcher would (batch of 500), then replayed through a window of in-flight batches into a
// cloud that deduplicates by batch_seq.
type scenario struct {
	miners  int
	outage  time.Duration
	batch   int
	window  int
	crashAt float64 // fraction of the replay after which the node is killed (-9) and restarted; 0: none
}

type scenarioResult struct {
	samples       int
	bytes         int64 // logical bytes held at the end of the outage
	disk          int64 // bytes on disk at the end of the outage (after a restart)
	write, replay time.Duration
	resent        int // batches the cloud saw twice (after the crash)
	crashCopy     time.Duration
	cloud         *cloud
}

func (r scenarioResult) bytesPerMinerHour(sc scenario) float64 {
	return float64(r.bytes) / (float64(sc.miners) * sc.outage.Hours())
}

func run(t testing.TB, h *harness, sc scenario) scenarioResult {
	t.Helper()
	st := newSite(sc.miners, sc.batch)
	st.at, st.seq = h.clk.Now(), h.s.lanes[telemetry.KindTelemetry].lastSeq // a later run continues the seqs
	end := st.at.Add(sc.outage)
	res := scenarioResult{cloud: newCloud()}
	for st.at.Before(end) {
		b := st.batch() // generating samples is the harness's cost, not timed
		start := time.Now()
		h.append(b)
		res.write += time.Since(start)
		res.samples += len(b.Telemetry.GetSamples())
		h.clk.Set(st.at) // the spool's clock follows the site
	}
	res.bytes = h.s.Stats().Bytes
	if d := h.dropped(ReasonDownsampled) + h.dropped(ReasonFull) + h.dropped(ReasonRefused); d != 0 {
		t.Fatalf("the spool let %v samples go during a %s outage of %d miners", d, sc.outage, sc.miners)
	}
	h.reopen()
	res.disk = diskUsage(t, h.dir)

	// Replay: keep window batches in flight; the cloud acks the oldest in order.
	start := time.Now()
	s := h.s
	var inflight []uint64
	var after uint64
	total := res.samples
	acked, crashed := 0, false
	for {
		for len(inflight) < sc.window {
			b, ok, err := s.Next(telemetry.KindTelemetry, after)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			dup := res.cloud.dupBatch
			res.cloud.ingest(b)
			res.resent += res.cloud.dupBatch - dup
			inflight = append(inflight, b.Seq)
			after = b.Seq
		}
		if len(inflight) == 0 {
			break
		}
		if _, err := s.Ack(telemetry.KindTelemetry, inflight[0]); err != nil {
			t.Fatal(err)
		}
		acked++
		inflight = inflight[1:]
		if !crashed && sc.crashAt > 0 && float64(acked*sc.batch) >= sc.crashAt*float64(total) {
			// kill -9 and restart: the node comes back from what is on disk, the window starts over at the
			// oldest unacked batch, a new session.
			crashed = true
			c := time.Now()
			image := h.crashImage() // copying the files is the harness's cost, not timed; reopening is
			res.crashCopy = time.Since(c)
			s = h.openAt(image)
			inflight, after = nil, 0
		}
	}
	res.replay = time.Since(start) - res.crashCopy
	if b, _ := s.Len(telemetry.KindTelemetry); b != 0 {
		t.Fatalf("%d batches left after the replay", b)
	}
	return res
}

// checkExactlyOnceInOrder: the cloud applied every sample of every miner once, in time order.
func checkExactlyOnceInOrder(t testing.TB, sc scenario, c *cloud) {
	t.Helper()
	rounds := int(sc.outage / (5 * time.Second))
	if len(c.samples) != sc.miners {
		t.Fatalf("the cloud has samples of %d miners, want %d", len(c.samples), sc.miners)
	}
	for m := range sc.miners {
		got := c.samples[minerID(m)]
		if len(got) != rounds {
			t.Fatalf("miner %d: %d samples at the cloud, want %d", m, len(got), rounds)
		}
		for i, s := range got {
			if want := t0.Add(time.Duration(i) * 5 * time.Second).UnixMilli(); s.GetObservedAtUnixMs() != want {
				t.Fatalf("miner %d sample %d observed at %d, want %d (each once, in order)", m, i, s.GetObservedAtUnixMs(), want)
			}
		}
	}
}

// 1,000 miners, cloud down for a simulated hour: 720,000 samples spooled, replayed with a kill -9 halfway,
// every sample reaches the cloud exactly once and in order per miner.
func TestOutageHourThousandMiners(t *testing.T) {
	sc := scenario{miners: 1000, outage: time.Hour, batch: 500, window: 8, crashAt: 0.5}
	if testing.Short() || raceEnabled {
		sc.outage = 6 * time.Minute // 72,000 samples: the same paths, a tenth of the volume
	}
	h := newHarness(t, nil)
	res := run(t, h, sc)
	checkExactlyOnceInOrder(t, sc, res.cloud)
	if res.resent > sc.window+h.cfg.AckFlushEvery {
		t.Fatalf("%d batches re-sent after the crash; at most the window and an unflushed ack group", res.resent)
	}
	t.Logf("%d miners × %s: %d samples in %d batches; spool %.1f MB logical (%.0f KB per miner-hour), %.1f MB on disk; "+
		"write %s (%.0f samples/s), replay %s (%.0f samples/s), %d batches re-sent after the kill -9",
		sc.miners, sc.outage, res.samples, res.samples/sc.batch, float64(res.bytes)/1e6, res.bytesPerMinerHour(sc)/1e3,
		float64(res.disk)/1e6, res.write.Round(time.Millisecond), float64(res.samples)/res.write.Seconds(),
		res.replay.Round(time.Millisecond), float64(res.samples)/res.replay.Seconds(), res.resent)
}

// diskUsage is the bytes dir's files occupy (allocated blocks: Badger preallocates sparse logs).
func diskUsage(t testing.TB, dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		i, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := i.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += i.Size()
		}
		return nil
	})
	return n
}

// BenchmarkSpoolWriteReplay spools 10 simulated minutes of a 1,000-miner site (120,000 samples in batches of
// 500, one fsync per batch), then replays and acks it all through a window of 8. write-samples/s times the
// Append calls only (not the harness making samples); replay-samples/s times Next, decode and Ack.
func BenchmarkSpoolWriteReplay(b *testing.B) {
	sc := scenario{miners: 1000, outage: 10 * time.Minute, batch: 500, window: 8}
	h := newHarness(b, nil)
	var write, replay time.Duration
	var samples int
	var bytesPerMH float64
	for b.Loop() {
		res := run(b, h, sc)
		write += res.write
		replay += res.replay
		samples += res.samples
		bytesPerMH = res.bytesPerMinerHour(sc)
	}
	b.ReportMetric(bytesPerMH, "spool-bytes/miner-hour")
	b.ReportMetric(float64(samples)/replay.Seconds(), "replay-samples/s")
	b.ReportMetric(float64(samples)/write.Seconds(), "write-samples/s")
}

// The same hour into a spool a third of its size: the oldest minutes are downsampled to per-miner minute
// aggregates, nothing is dropped, and after the replay every miner has every minute at the cloud (one
// aggregate, or its 12 raw samples), each once and in time order.
func TestOutageHourIntoASmallSpool(t *testing.T) {
	sc := scenario{miners: 1000, outage: time.Hour, batch: 500, window: 8}
	maxBytes := int64(100 << 20)
	if testing.Short() || raceEnabled {
		sc.outage, maxBytes = 6*time.Minute, 10<<20
	}
	h := newHarness(t, func(c *Config) { c.MaxBytes, c.DownsampleStep = maxBytes, maxBytes/32 })
	st := newSite(sc.miners, sc.batch)
	var worst time.Duration
	for end := t0.Add(sc.outage); st.at.Before(end); h.clk.Set(st.at) {
		b := st.batch()
		start := time.Now()
		h.append(b)
		worst = max(worst, time.Since(start))
	}
	stats := h.s.Stats()
	if h.dropped(ReasonFull) != 0 || h.dropped(ReasonDownsampled) == 0 || stats.Telemetry.Aggregated == 0 {
		t.Fatalf("dropped %v, downsampled %v, %d aggregated batches", h.dropped(ReasonFull), h.dropped(ReasonDownsampled), stats.Telemetry.Aggregated)
	}
	c := newCloud()
	for _, b := range drain(t, h.s, telemetry.KindTelemetry) {
		c.ingest(b)
	}
	minutes := int(sc.outage / time.Minute)
	aggregated := 0
	for m := range sc.miners {
		perMinute := make([]int, minutes)
		last := int64(0)
		for _, s := range c.samples[minerID(m)] {
			at := s.GetObservedAtUnixMs()
			if at < last {
				t.Fatalf("miner %d goes back in time", m)
			}
			last = at
			perMinute[int((at-t0.UnixMilli())/60_000)]++
		}
		for i, n := range perMinute {
			if n != 1 && n != 12 {
				t.Fatalf("miner %d minute %d: %d samples at the cloud, want 1 aggregate or 12 raw", m, i, n)
			}
			if n == 1 {
				aggregated++
			}
		}
	}
	t.Logf("%d miners × %s into %d MiB: held %d batches (%d of minute aggregates), %.1f MB; %d of %d miner-minutes aggregated; "+
		"slowest append (a downsample step) %s", sc.miners, sc.outage, maxBytes>>20, stats.Telemetry.Batches, stats.Telemetry.Aggregated,
		float64(stats.Bytes)/1e6, aggregated, sc.miners*minutes, worst.Round(time.Millisecond))
}
